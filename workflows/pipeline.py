"""The pipeline's steps as plain functions over a session; the actors wrap them."""

from __future__ import annotations

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import Employer
from app.audit.service import record_errand_event
from app.core.agents import Agent
from app.db import utcnow
from app.notifications import notices
from app.registers.changes import resolve_review
from app.registrations.codes import Finding
from app.registrations.data import PersonDetails, RegistrationData
from app.registrations.models import Errand, ErrandKind
from app.registrations.service import registered_replacement, would_leave_no_orderer
from workflows.state_machine import transition
from workflows.states import Action, ErrandState, IllegalTransition
from workflows.verification import Verifiers, recheck_conflicts, run_checks

log = structlog.get_logger(__name__)


def lock_errand(session: Session, errand_id: int) -> Errand | None:
    return session.scalars(
        select(Errand).where(Errand.id == errand_id).with_for_update()
    ).one_or_none()


def verify(session: Session, errand_id: int, agent: Agent, verifiers: Verifiers) -> bool:
    """received → verifying → in_review, recording every check against ``verifiers``.
    False if nothing to do."""
    errand = lock_errand(session, errand_id)
    if errand is None or errand.state not in (
        ErrandState.RECEIVED,
        ErrandState.VERIFYING,
    ):
        return False
    if errand.state is ErrandState.RECEIVED:
        transition(session, errand, Action.START_VERIFICATION, agent)
    run_checks(session, errand, verifiers)
    transition(session, errand, Action.FINISH_VERIFICATION, agent)
    return True


def apply(session: Session, errand_id: int, agent: Agent, *, base_url: str) -> bool:
    """Put an approved decision into the permission store and email the people it
    concerns (their links start with ``base_url``). False if nothing to do.

    Role changes at one employer are applied one at a time, under the employer's lock.
    A removal that would now leave no orderer (another removal went first) is applied
    only if two caseworkers decided so (rule 8); otherwise it goes back to its
    caseworker, the finding recorded."""
    errand = lock_errand(session, errand_id)
    if errand is None or errand.state is not ErrandState.APPROVED:
        return False
    assert errand.employer_id is not None  # guaranteed by the received-state constraint
    employer = access.lock_employer(session, errand.employer_id)
    if errand.kind is ErrandKind.SIGNATORY_CHANGE:
        # SPV's own review: the role stands, its flag is resolved; the store is unchanged.
        resolve_review(session, agent, errand)
        transition(session, errand, Action.APPLY, agent)
        return True
    data = errand.data
    if isinstance(data, RegistrationData):
        _register(session, agent, errand, employer, data.person, data.employer_codes, base_url)
    elif would_leave_no_orderer(session, errand) and not errand.approved_by_two:
        _return_to_review(session, errand, agent, Finding.ORDERER_REMOVED_SINCE_APPROVAL)
        return True
    else:
        for grant in access.orderer_grants(session, employer.id, data.orderer.personnummer):
            access.end_grant(session, agent.audit_label, grant, errand_id=errand.id)
            notices.notify_role_ended(session, grant, base_url=base_url)
        replacement = registered_replacement(session, data)
        if replacement is not None:
            _register(session, agent, errand, employer, replacement, (), base_url)
        elif data.replacement is not None:
            record_errand_event(session, agent.audit_label, errand.id, "replacement_not_registered")
    transition(session, errand, Action.APPLY, agent)
    return True


def _return_to_review(session: Session, errand: Errand, agent: Agent, finding: Finding) -> None:
    """approved → in_review: the change cannot be made as decided; its caseworker sees
    why among the checks and in the errand's history."""
    recheck_conflicts(session, errand, finding)
    transition(session, errand, Action.RETURN_TO_REVIEW, agent, reason=finding.value)


def archive(session: Session, errand_id: int, agent: Agent) -> bool:
    """File the decision letter with the errand's documents; an applied errand then closes.

    The archive is the errand's documents kept together: the signed form and its BankID
    evidence, or the scanned pages, and the decision letter. False if nothing to do.
    """
    from app.registrations.documents import issue_decision_letter

    errand = lock_errand(session, errand_id)
    if errand is None or errand.state not in (
        ErrandState.APPLIED,
        ErrandState.REJECTED,
    ):
        return False
    # SPV's own review sends no decision letter (nobody applied for anything).
    issued = errand.kind is ErrandKind.SIGNATORY_CHANGE or issue_decision_letter(session, errand)
    if errand.state is ErrandState.APPLIED:
        transition(session, errand, Action.CLOSE, agent)
        return True
    return issued


def issue_receipt(session: Session, errand_id: int) -> bool:
    """The receipt PDF for a received errand, once. Rendered before the errand is locked,
    so that its other steps (verification) go on meanwhile."""
    from app.registrations.documents import has_receipt, receipt_pdf
    from app.registrations.documents import issue_receipt as attach_receipt

    errand = session.get(Errand, errand_id)
    if errand is None or errand.received_dt is None or has_receipt(errand):
        return False
    pdf = receipt_pdf(errand)
    session.refresh(errand, with_for_update=True)
    return attach_receipt(session, errand, pdf)


def _register(
    session: Session,
    agent: Agent,
    errand: Errand,
    employer: Employer,
    person: PersonDetails,
    codes: tuple[str, ...],
    base_url: str,
) -> None:
    found = access.find_or_create_person(
        session, person.personnummer, person.given_name, person.family_name, person.email or None
    )
    grant = access.register_orderer(
        session,
        agent,
        employer=employer,
        person=found,
        role=person.role,
        code_values=list(codes),
        errand_id=errand.id,
        contact_email=person.email or None,
        ends_on=person.end_date,
    )
    notices.notify_role_granted(session, grant, base_url=base_url)


def record_failed_attempt(
    session: Session,
    errand_id: int,
    step: str,
    *,
    attempt: int,
    max_attempts: int,
    error: str,
    agent: Agent,
) -> None:
    """One attempt of ``step`` failed and it will be tried again (or, on the last attempt,
    the errand goes to ``failed``): shown on the errand at once and in its history.

    A plain UPDATE in the caller's own short transaction (not the failed one, which was
    rolled back); the errand's version is left alone so that nobody's open page goes stale."""
    found = session.execute(
        update(Errand)
        .where(Errand.id == errand_id)
        .values(
            retrying_step=step,
            step_attempt=attempt,
            step_max_attempts=max_attempts,
            step_error=error,
            step_error_dt=utcnow(),
        )
        .returning(Errand.id)
    ).first()
    if found is None:
        return
    record_errand_event(
        session,
        agent.audit_label,
        errand_id,
        "attempt_failed",
        step=step,
        attempt=attempt,
        max_attempts=max_attempts,
        error=error,
    )


def clear_failed_attempts(session: Session, errand_id: int, step: str) -> None:
    """``step`` succeeded: the errand no longer shows it as failing."""
    session.execute(
        update(Errand)
        .where(Errand.id == errand_id, Errand.retrying_step == step)
        .values(
            retrying_step=None,
            step_attempt=None,
            step_max_attempts=None,
            step_error=None,
            step_error_dt=None,
        )
    )


def record_step_failure(
    session: Session, errand_id: int, step: str, reason: str, agent: Agent
) -> None:
    errand = lock_errand(session, errand_id)
    if errand is None:
        return
    try:
        transition(session, errand, Action.FAIL, agent, failed_step=step, reason=reason)
    except IllegalTransition:
        log.warning(
            "pipeline.failure_after_state_moved_on",
            errand_id=errand_id,
            step=step,
            state=errand.state.value,
        )
