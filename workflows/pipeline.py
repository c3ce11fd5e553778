"""The pipeline's steps as plain functions over a session; the actors wrap them."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import ORDERER_ROLES, Employer, Person, Role, RoleGrant
from app.core.agents import Agent
from app.notifications import notices
from app.registrations.models import Submission, SubmissionKind
from workflows.state_machine import transition
from workflows.states import Action, IllegalTransition, SubmissionState
from workflows.verification import Verifiers, run_checks

log = structlog.get_logger(__name__)


def lock_submission(session: Session, submission_id: int) -> Submission | None:
    return session.scalars(
        select(Submission).where(Submission.id == submission_id).with_for_update()
    ).one_or_none()


def verify(session: Session, submission_id: int, agent: Agent, verifiers: Verifiers) -> bool:
    """received → verifying → in_review, recording every check against ``verifiers``.
    False if nothing to do."""
    submission = lock_submission(session, submission_id)
    if submission is None or submission.state not in (
        SubmissionState.RECEIVED,
        SubmissionState.VERIFYING,
    ):
        return False
    if submission.state is SubmissionState.RECEIVED:
        transition(session, submission, Action.START_VERIFICATION, agent)
    run_checks(session, submission, verifiers)
    transition(session, submission, Action.FINISH_VERIFICATION, agent)
    return True


def apply(session: Session, submission_id: int, agent: Agent, *, base_url: str) -> bool:
    """Put an approved decision into the permission store and email the people it
    concerns (their links start with ``base_url``). False if nothing to do."""
    submission = lock_submission(session, submission_id)
    if submission is None or submission.state is not SubmissionState.APPROVED:
        return False
    assert submission.employer_id is not None  # guaranteed by the received-state constraint
    employer = access.lock_employer(session, submission.employer_id)
    data = submission.form_data
    if submission.kind is SubmissionKind.REGISTRATION:
        _register(session, agent, submission, employer, data, base_url)
    else:
        grants = session.scalars(
            select(RoleGrant)
            .join(RoleGrant.person)
            .where(
                RoleGrant.employer_id == employer.id,
                RoleGrant.role.in_(ORDERER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
                Person.personnummer == submission.subject_personnummer,
            )
        ).all()
        for grant in grants:
            access.end_grant(session, agent, grant, submission.id)
            notices.notify_role_ended(session, grant, base_url=base_url)
        if data.get("replacement"):
            _register(session, agent, submission, employer, data["replacement"], base_url)
    transition(session, submission, Action.APPLY, agent)
    return True


def archive(session: Session, submission_id: int, agent: Agent) -> bool:
    """File the decision letter with the errand's documents; an applied errand then closes.

    The archive is the errand's documents kept together: the signed form and its BankID
    evidence, or the scanned pages, and the decision letter. False if nothing to do.
    """
    from app.registrations.documents import issue_decision_letter

    submission = lock_submission(session, submission_id)
    if submission is None or submission.state not in (
        SubmissionState.APPLIED,
        SubmissionState.REJECTED,
    ):
        return False
    issued = issue_decision_letter(session, submission)
    if submission.state is SubmissionState.APPLIED:
        transition(session, submission, Action.CLOSE, agent)
        return True
    return issued


def issue_receipt(session: Session, submission_id: int) -> bool:
    """The receipt PDF for a received submission, once."""
    from app.registrations.documents import issue_receipt as attach_receipt

    submission = lock_submission(session, submission_id)
    if submission is None or submission.received_dt is None:
        return False
    return attach_receipt(session, submission)


def _register(
    session: Session,
    agent: Agent,
    submission: Submission,
    employer: Employer,
    person_data: dict[str, Any],
    base_url: str,
) -> None:
    person = access.find_or_create_person(
        session,
        person_data["personnummer"],
        person_data["given_name"],
        person_data["family_name"],
        person_data.get("email"),
    )
    grant = access.register_orderer(
        session,
        agent,
        employer=employer,
        person=person,
        role=Role(person_data["role"]),
        code_values=list(submission.form_data.get("employer_codes") or []),
        submission_id=submission.id,
        contact_email=person_data.get("email"),
    )
    notices.notify_role_granted(session, grant, base_url=base_url)


def record_step_failure(
    session: Session, submission_id: int, step: str, reason: str, agent: Agent
) -> None:
    submission = lock_submission(session, submission_id)
    if submission is None:
        return
    try:
        transition(session, submission, Action.FAIL, agent, failed_step=step, reason=reason)
    except IllegalTransition:
        log.warning(
            "pipeline.failure_after_state_moved_on",
            submission_id=submission_id,
            step=step,
            state=submission.state.value,
        )
