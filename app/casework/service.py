"""The caseworker queue and decisions. Plain functions over a session and the acting agent.

A caseworker claims an errand before deciding it; two caseworkers cannot hold the
same errand (the claim is one conditional UPDATE). Removing an employer's last
orderer needs the approval of two different caseworkers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, joinedload, selectinload, with_expression
from sqlalchemy.sql.elements import ColumnElement

from app.access import service as access
from app.access.models import Employer
from app.audit.service import record_errand_event
from app.core.agents import Agent
from app.core.paging import Order, Page, keyset_page
from app.core.text import (
    LIKE_ESCAPE,
    contains_pattern,
    has_unsafe_characters,
    without_unsafe_characters,
)
from app.db import utcnow
from app.notifications import notices
from app.registrations.codes import Finding
from app.registrations.models import (
    CASEWORK_OPEN_STATES,
    Channel,
    CheckOutcome,
    CompletionRequest,
    DocumentKind,
    Errand,
    ErrandComment,
    ErrandDocument,
    ErrandKind,
    RejectionReason,
    VerificationCheck,
)
from app.registrations.service import would_leave_no_orderer
from app.staff.models import StaffMember
from workflows.state_machine import check_four_eyes, transition
from workflows.states import Action, ErrandState, IllegalTransition, Refusal

PAGE_SIZE = 25


class NotFound(Exception):
    pass


class NotYourErrand(Exception):
    """Deciding needs the errand to be claimed by you."""


class QueueList(enum.StrEnum):
    MINE = "mina"
    UNASSIGNED = "otilldelade"
    OVERDUE = "forsenade"
    COMPLETION = "komplettering"
    WAITING = "vantetid"
    """Approved posted registrations waiting out the paper waiting period."""
    SUSPECTED_FRAUD = "bedrageri"
    """Posted registrations the employer stopped in the waiting period."""
    FAILED = "fel"


OPEN_STATES = CASEWORK_OPEN_STATES


@dataclass(frozen=True)
class QueueFilter:
    list: QueueList = QueueList.UNASSIGNED
    kind: ErrandKind | None = None
    channel: Channel | None = None
    employer: str = ""
    """Part of the employer's name, or its organisation number."""
    checks: str = ""
    """``flagged`` (some check needs attention), ``passed`` (all passed), or any."""
    sort: str = "due"
    """``due`` (earliest due first) or ``age`` (oldest received first)."""
    page: int = 1
    after: str = ""
    """Keyset: the page begins after this errand (``app.core.paging.Cursor`` as text)."""
    before: str = ""
    """Keyset: the page ends before this errand (going back)."""


QueuePage = Page[Errand]


def _list_condition(
    query: Select[Any], which: QueueList, agent: Agent, now: datetime
) -> Select[Any]:
    return query.where(_list_predicate(which, agent, now))


def _list_predicate(which: QueueList, agent: Agent, now: datetime) -> ColumnElement[bool]:
    if which is QueueList.MINE:
        return and_(Errand.assigned_staff_id == agent.id, Errand.state.in_(OPEN_STATES))
    if which is QueueList.UNASSIGNED:
        return and_(Errand.assigned_staff_id.is_(None), Errand.state == ErrandState.IN_REVIEW)
    if which is QueueList.OVERDUE:
        return and_(Errand.state == ErrandState.IN_REVIEW, Errand.due_dt < now)
    if which is QueueList.COMPLETION:
        return Errand.state == ErrandState.AWAITING_COMPLETION
    if which is QueueList.WAITING:
        return Errand.state == ErrandState.AWAITING_EFFECT
    if which is QueueList.SUSPECTED_FRAUD:
        return Errand.state == ErrandState.SUSPECTED_FRAUD
    # Tekniskt fel: a step gave up, or is failing and being tried again.
    return or_(Errand.state == ErrandState.FAILED, Errand.retrying_step.is_not(None))


def queue(
    session: Session,
    agent: Agent,
    f: QueueFilter,
    counts: Mapping[QueueList, int] | None = None,
) -> QueuePage:
    """A page of a list: at most ``PAGE_SIZE`` errands in order, found by keyset after or
    before a cursor (the page links') or by offset for a page asked by number alone.

    ``counts`` (``counts()``'s, read just before) gives the total of a list not narrowed
    by a filter, instead of a second COUNT of it."""
    listed = query = _list_condition(select(Errand), f.list, agent, utcnow())
    if f.kind:
        query = query.where(Errand.kind == f.kind)
    if f.channel:
        query = query.where(Errand.channel == f.channel)
    if without_unsafe_characters(f.employer).strip():
        text = without_unsafe_characters(f.employer).strip()
        digits = "".join(ch for ch in text if ch.isdigit())
        match: ColumnElement[bool] = Employer.name.ilike(f"%{text}%")
        if len(digits) == 10:
            match = or_(match, Employer.orgnr == digits)
        query = query.where(Errand.employer_id.in_(select(Employer.id).where(match)))
    not_passed = and_(
        VerificationCheck.errand_id == Errand.id,
        VerificationCheck.outcome != CheckOutcome.PASSED,
    )
    attention = exists().where(not_passed)
    if f.checks == "flagged":
        query = query.where(attention)
    elif f.checks == "passed":
        query = query.where(~attention)
    # A filter that narrows the list added a condition: the counts do not tell its total.
    total = counts[f.list] if counts is not None and query is listed else None
    by_due = f.sort == "due"
    # Only an errand that failed before it was received lacks the dates.
    order = Order(
        Errand.due_dt if by_due else Errand.received_dt,
        Errand.id,
        nullable=f.list is QueueList.FAILED,
    )
    return keyset_page(
        session,
        query,
        order,
        (lambda e: e.due_dt) if by_due else (lambda e: e.received_dt),
        page=f.page,
        after=f.after,
        before=f.before,
        size=PAGE_SIZE,
        total=total,
        options=(  # the two many-to-ones in the page's own query: two round trips fewer
            joinedload(Errand.employer),
            joinedload(Errand.assigned_staff),
            with_expression(
                Errand.checks_made, _count_checks(VerificationCheck.errand_id == Errand.id)
            ),
            with_expression(Errand.checks_to_review, _count_checks(not_passed)),
            selectinload(Errand.completion_requests),
        ),
    )


def _count_checks(condition: ColumnElement[bool]) -> Any:
    """How many of a listed errand's checks meet ``condition`` (a column of its row)."""
    return select(func.count(VerificationCheck.id)).where(condition).scalar_subquery()


def counts(session: Session, agent: Agent) -> dict[QueueList, int]:
    """How many errands each list holds: one statement, each list counted from an index
    (PostgreSQL: index-only scans, no table rows read)."""
    now = utcnow()
    lists = list(QueueList)
    row = session.execute(
        select(
            *(
                select(func.count())
                .select_from(Errand)
                .where(_list_predicate(which, agent, now))
                .scalar_subquery()
                for which in lists
            )
        )
    ).one()
    return {which: int(n or 0) for which, n in zip(lists, row, strict=True)}


def errand(session: Session, reference: str) -> Errand:
    errand = session.scalar(
        select(Errand)
        .where(Errand.reference == reference)
        .options(
            selectinload(Errand.employer),
            selectinload(Errand.checks),
            selectinload(Errand.submitted_by),
            selectinload(Errand.documents),
            selectinload(Errand.assigned_staff),
        )
    )
    if errand is None or errand.received_dt is None:
        raise NotFound(reference)  # never received: the submitter's own, not SPV's yet
    return errand


def claim(session: Session, agent: Agent, errand: Errand) -> bool:
    """Take an unassigned errand. False when someone else got it first."""
    result = session.execute(
        update(Errand)
        .where(
            Errand.id == errand.id,
            Errand.assigned_staff_id.is_(None),
            Errand.state.in_(OPEN_STATES),
        )
        .values(assigned_staff_id=agent.id, claimed_dt=utcnow(), version=Errand.version + 1)
        .execution_options(synchronize_session=False)
    )
    taken = cast(CursorResult[Any], result).rowcount
    session.refresh(errand)
    if taken:
        record_errand_event(session, agent.audit_label, errand.id, "claimed")
    return bool(taken)


def take_next(session: Session, agent: Agent) -> Errand | None:
    """ "Ta nästa": claim the unassigned errand in review that is due first (the oldest
    received when due the same), skipping those the caseworker may not decide (four eyes)
    and those another caseworker is taking at this moment. None when there is none."""
    candidates = (
        select(Errand)
        .where(Errand.assigned_staff_id.is_(None), Errand.state == ErrandState.IN_REVIEW)
        .order_by(Errand.due_dt, Errand.received_dt, Errand.id)
        .limit(20)
        .with_for_update(skip_locked=True)
        .options(selectinload(Errand.submitted_by))
    )
    for candidate in session.scalars(candidates):
        if candidate.first_approved_by_staff_id == agent.id:
            continue
        try:
            check_four_eyes(candidate, agent, Action.APPROVE)
        except IllegalTransition:
            continue
        if claim(session, agent, candidate):
            return candidate
    return None


def release(session: Session, agent: Agent, errand: Errand) -> None:
    if errand.assigned_staff_id != agent.id:
        raise NotYourErrand(errand.reference)
    errand.assigned_staff_id = None
    errand.claimed_dt = None
    session.flush()
    record_errand_event(session, agent.audit_label, errand.id, "released")


def reassign(session: Session, agent: Agent, errand: Errand, staff_id: int) -> None:
    """Give the errand to a caseworker: an errand someone holds only by its holder or a
    team lead."""
    if errand.assigned_staff_id not in (None, agent.id):
        me = session.get(StaffMember, agent.id)
        if me is None or not me.is_team_lead:
            raise NotYourErrand(errand.reference)
    staff = session.get(StaffMember, staff_id)
    if staff is None or not (staff.is_active and staff.is_caseworker):
        raise NotFound(str(staff_id))
    if errand.state not in OPEN_STATES:
        raise IllegalTransition(errand.state, Action.APPROVE, "the errand is not open")
    previous = errand.assigned_staff_id
    errand.assigned_staff_id = staff.id
    errand.claimed_dt = utcnow()
    session.flush()
    record_errand_event(
        session,
        agent.audit_label,
        errand.id,
        "reassigned",
        from_staff_id=previous,
        to_staff_id=staff.id,
    )


def caseworkers(session: Session) -> list[StaffMember]:
    return list(
        session.scalars(
            select(StaffMember)
            .where(StaffMember.is_caseworker, StaffMember.is_active)
            .order_by(StaffMember.name)
        )
    )


def comment(session: Session, agent: Agent, errand: Errand, body: str) -> None:
    assert agent.id is not None
    session.add(ErrandComment(errand_id=errand.id, staff_id=agent.id, body=body.strip()))
    session.flush()
    record_errand_event(session, agent.audit_label, errand.id, "commented")


def comments(session: Session, errand: Errand) -> list[ErrandComment]:
    return list(
        session.scalars(
            select(ErrandComment)
            .where(ErrandComment.errand_id == errand.id)
            .options(selectinload(ErrandComment.staff))
            .order_by(ErrandComment.id)
        )
    )


FORM_DOCUMENTS = (DocumentKind.SIGNED, DocumentKind.SCAN, DocumentKind.PRINTED)
"""Which of an errand's documents is the form the caseworker reads, best first."""


def form_document(errand: Errand) -> ErrandDocument | None:
    """The form as signed (or as scanned, or as printed), shown beside the decision."""
    for kind in FORM_DOCUMENTS:
        found = [d for d in errand.documents if d.kind is kind]
        if found:
            return found[-1]
    return None


def errand_document(session: Session, errand: Errand, document_id: int) -> ErrandDocument | None:
    """A document of this errand (never another errand's, whatever the id says)."""
    return session.scalar(
        select(ErrandDocument).where(
            ErrandDocument.id == document_id,
            ErrandDocument.errand_id == errand.id,
        )
    )


def _require_holder(agent: Agent, errand: Errand) -> None:
    if errand.assigned_staff_id != agent.id:
        raise NotYourErrand(errand.reference)


def needs_second_approval(session: Session, errand: Errand) -> bool:
    """Rule 8: removing an employer's last orderer needs two caseworkers (the roster says
    whether it is the last)."""
    return would_leave_no_orderer(session, errand)


def _findings(errand: Errand) -> list[Finding]:
    """Every finding of the errand's checks, each once, in the order of the checks."""
    found: list[Finding] = []
    for check in errand.checks:
        for code in check.findings:
            if Finding(code) not in found:
                found.append(Finding(code))
    return found


def blocking_findings(errand: Errand) -> list[Finding]:
    """Findings that make approval impossible (``Finding.severity``)."""
    return [f for f in _findings(errand) if f.blocks_approval]


def findings_to_acknowledge(errand: Errand) -> list[Finding]:
    """ "Behöver granskas": findings the caseworker approves over only with a note on each."""
    return [f for f in _findings(errand) if f.needs_review]


def _check_approvable(errand: Errand, notes: Mapping[str, str]) -> dict[str, str]:
    """No approval over a failed automated check or a blocking finding (reject or ask for
    completion instead), and none over a finding that needs review unless the caseworker
    wrote a note on it. The notes on the findings, by finding code."""
    if blocking_findings(errand) or any(
        check.outcome is CheckOutcome.FAILED for check in errand.checks
    ):
        raise IllegalTransition(
            errand.state, Action.APPROVE, "an automated check failed", Refusal.CHECKS_FAILED
        )
    acknowledged = {
        f.value: (notes.get(f.value) or "").strip() for f in findings_to_acknowledge(errand)
    }
    if not all(acknowledged.values()):
        raise IllegalTransition(
            errand.state,
            Action.APPROVE,
            "a finding that needs review was not acknowledged",
            Refusal.UNACKNOWLEDGED_FINDINGS,
        )
    return acknowledged


def approve_errand(
    session: Session, agent: Agent, errand: Errand, notes: Mapping[str, str] | None = None
) -> bool:
    """Approve; True when the decision is made, False when it awaits a second caseworker.

    ``notes`` acknowledge each finding that needs review (by finding code); they are
    recorded in the errand's history with the approval."""
    _require_holder(agent, errand)
    acknowledged = _check_approvable(errand, notes or {})
    if acknowledged and errand.state is ErrandState.IN_REVIEW:
        record_errand_event(
            session, agent.audit_label, errand.id, "findings_acknowledged", notes=acknowledged
        )
    if needs_second_approval(session, errand):
        first = errand.first_approved_by_staff_id
        if first is None:
            # The state machine's four-eyes guard, before recording anything.
            if errand.state is not ErrandState.IN_REVIEW:
                raise IllegalTransition(errand.state, Action.APPROVE, "not in review")
            check_four_eyes(errand, agent, Action.APPROVE)
            errand.first_approved_by_staff_id = agent.id
            errand.assigned_staff_id = None  # to the queue, for another caseworker
            session.flush()
            record_errand_event(session, agent.audit_label, errand.id, "first_approval")
            return False
        if first == agent.id:
            raise IllegalTransition(
                errand.state,
                Action.APPROVE,
                "the second approval must come from another caseworker",
                Refusal.FOUR_EYES,
            )
    transition(session, errand, Action.APPROVE, agent)
    return True


def reject_errand(
    session: Session,
    agent: Agent,
    errand: Errand,
    reason: RejectionReason,
    text: str,
    *,
    base_url: str,
) -> None:
    """Reject with a coded reason and the caseworker's words, which the submitter is sent
    (the email's links start with ``base_url``)."""
    _require_holder(agent, errand)
    transition(session, errand, Action.REJECT, agent, reason=reason.value)
    errand.decision_code = reason.value
    errand.decision_text = text.strip()
    notices.notify_rejected(session, errand, text, base_url=base_url)


def request_completion(
    session: Session, agent: Agent, errand: Errand, message: str, *, base_url: str
) -> CompletionRequest:
    """Ask the submitter for more (komplettering): the due date stands still until they
    answer, and they are emailed what is needed and by when (links from ``base_url``)."""
    _require_holder(agent, errand)
    transition(session, errand, Action.REQUEST_COMPLETION, agent)
    assert agent.id is not None
    request = CompletionRequest(
        errand_id=errand.id, requested_by_staff_id=agent.id, message=message.strip()
    )
    session.add(request)
    session.flush()
    session.expire(errand, ["completion_requests"])
    notices.notify_completion_requested(session, errand, message, base_url=base_url)
    return request


def retry_failed(session: Session, agent: Agent, errand: Errand) -> None:
    transition(session, errand, Action.RETRY, agent)


def find_employers(session: Session, query: str, limit: int = 20) -> list[Employer]:
    """Employers by organisation number, employer code, or part of the name."""
    text = " ".join(query.split())
    if not text or has_unsafe_characters(text):
        return []
    exact = access.find_employer_by_orgnr_or_code(session, text)
    if exact is not None:
        return [exact]
    pattern = contains_pattern(text)
    return list(
        session.scalars(
            select(Employer)
            .where(Employer.name.ilike(pattern, escape=LIKE_ESCAPE))
            .order_by(Employer.name, Employer.id)
            .limit(limit)
        )
    )


def employer_contacts(
    session: Session, query: str
) -> tuple[Employer | None, list[access.EmployerContact]]:
    """'Vilka är behöriga beställare och administratörer hos arbetsgivare X?' (rule 10):
    by organisation number, employer code or name (when the name fits one employer only)."""
    found = find_employers(session, query)
    if len(found) != 1:
        return None, []
    return found[0], access.orderers_and_administrators(session, found[0].id)
