"""The caseworker queue and decisions. Plain functions over a session and the acting agent.

A caseworker claims an errand before deciding it; two caseworkers cannot hold the
same errand (the claim is one conditional UPDATE). Removing an employer's last
orderer needs the approval of two different caseworkers.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from app.access import service as access
from app.access.models import Employer, EmployerCode, Person
from app.audit.models import AuditEvent
from app.audit.service import record_submission_event
from app.core.agents import Agent
from app.db import utcnow
from app.notifications import notices
from app.registrations.models import (
    Channel,
    CheckOutcome,
    CompletionRequest,
    RejectionReason,
    Submission,
    SubmissionComment,
    SubmissionDocument,
    SubmissionKind,
    VerificationCheck,
)
from app.registrations.service import would_leave_no_orderer
from app.staff.models import StaffMember
from workflows.state_machine import check_four_eyes, transition
from workflows.states import Action, IllegalTransition, Refusal, SubmissionState

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
    FAILED = "fel"


OPEN_STATES = (SubmissionState.IN_REVIEW, SubmissionState.AWAITING_COMPLETION)


@dataclass(frozen=True)
class QueueFilter:
    list: QueueList = QueueList.UNASSIGNED
    kind: SubmissionKind | None = None
    channel: Channel | None = None
    employer: str = ""
    """Part of the employer's name, or its organisation number."""
    checks: str = ""
    """``flagged`` (some check needs attention), ``passed`` (all passed), or any."""
    sort: str = "due"
    """``due`` (earliest due first) or ``age`` (oldest received first)."""
    page: int = 1


@dataclass(frozen=True)
class QueuePage:
    rows: list[Submission]
    total: int
    page: int
    pages: int


def _list_condition(
    query: Select[Any], which: QueueList, agent: Agent, now: datetime
) -> Select[Any]:
    if which is QueueList.MINE:
        return query.where(
            Submission.assigned_staff_id == agent.id, Submission.state.in_(OPEN_STATES)
        )
    if which is QueueList.UNASSIGNED:
        return query.where(
            Submission.assigned_staff_id.is_(None), Submission.state == SubmissionState.IN_REVIEW
        )
    if which is QueueList.OVERDUE:
        return query.where(Submission.state == SubmissionState.IN_REVIEW, Submission.due_dt < now)
    if which is QueueList.COMPLETION:
        return query.where(Submission.state == SubmissionState.AWAITING_COMPLETION)
    return query.where(Submission.state == SubmissionState.FAILED)


def queue(session: Session, agent: Agent, f: QueueFilter) -> QueuePage:
    query = _list_condition(select(Submission), f.list, agent, utcnow())
    if f.kind:
        query = query.where(Submission.kind == f.kind)
    if f.channel:
        query = query.where(Submission.channel == f.channel)
    if f.employer.strip():
        text = f.employer.strip()
        digits = "".join(ch for ch in text if ch.isdigit())
        match: ColumnElement[bool] = Employer.name.ilike(f"%{text}%")
        if len(digits) == 10:
            match = or_(match, Employer.orgnr == digits)
        query = query.join(Employer, Employer.id == Submission.employer_id).where(match)
    attention = exists().where(
        VerificationCheck.submission_id == Submission.id,
        VerificationCheck.outcome != CheckOutcome.PASSED,
    )
    if f.checks == "flagged":
        query = query.where(attention)
    elif f.checks == "passed":
        query = query.where(~attention)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        (Submission.due_dt, Submission.id)
        if f.sort == "due"
        else (Submission.received_dt, Submission.id)
    )
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    rows = session.scalars(
        query.options(
            selectinload(Submission.employer),
            selectinload(Submission.checks),
            selectinload(Submission.assigned_staff),
        )
        .order_by(*order)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return QueuePage(list(rows), total, page, pages)


def counts(session: Session, agent: Agent) -> dict[QueueList, int]:
    now = utcnow()
    return {
        which: session.scalar(
            select(func.count()).select_from(
                _list_condition(select(Submission.id), which, agent, now).subquery()
            )
        )
        or 0
        for which in QueueList
    }


def errand(session: Session, reference: str) -> Submission:
    submission = session.scalar(
        select(Submission)
        .where(Submission.reference == reference)
        .options(
            selectinload(Submission.employer),
            selectinload(Submission.checks),
            selectinload(Submission.submitted_by),
            selectinload(Submission.documents),
            selectinload(Submission.assigned_staff),
        )
    )
    if submission is None:
        raise NotFound(reference)
    return submission


def claim(session: Session, agent: Agent, submission: Submission) -> bool:
    """Take an unassigned errand. False when someone else got it first."""
    result = session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.assigned_staff_id.is_(None),
            Submission.state.in_(OPEN_STATES),
        )
        .values(assigned_staff_id=agent.id, claimed_dt=utcnow(), version=Submission.version + 1)
        .execution_options(synchronize_session=False)
    )
    taken = cast(CursorResult[Any], result).rowcount
    session.refresh(submission)
    if taken:
        record_submission_event(session, agent.audit_label, submission.id, "claimed")
    return bool(taken)


def release(session: Session, agent: Agent, submission: Submission) -> None:
    if submission.assigned_staff_id != agent.id:
        raise NotYourErrand(submission.reference)
    submission.assigned_staff_id = None
    submission.claimed_dt = None
    session.flush()
    record_submission_event(session, agent.audit_label, submission.id, "released")


def reassign(session: Session, agent: Agent, submission: Submission, staff_id: int) -> None:
    staff = session.get(StaffMember, staff_id)
    if staff is None or not (staff.is_active and staff.is_caseworker):
        raise NotFound(str(staff_id))
    if submission.state not in OPEN_STATES:
        raise IllegalTransition(submission.state, Action.APPROVE, "the errand is not open")
    previous = submission.assigned_staff_id
    submission.assigned_staff_id = staff.id
    submission.claimed_dt = utcnow()
    session.flush()
    record_submission_event(
        session,
        agent.audit_label,
        submission.id,
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


def comment(session: Session, agent: Agent, submission: Submission, body: str) -> None:
    assert agent.id is not None
    session.add(
        SubmissionComment(submission_id=submission.id, staff_id=agent.id, body=body.strip())
    )
    session.flush()
    record_submission_event(session, agent.audit_label, submission.id, "commented")


def comments(session: Session, submission: Submission) -> list[SubmissionComment]:
    return list(
        session.scalars(
            select(SubmissionComment)
            .where(SubmissionComment.submission_id == submission.id)
            .options(selectinload(SubmissionComment.staff))
            .order_by(SubmissionComment.id)
        )
    )


def history(session: Session, submission: Submission) -> list[AuditEvent]:
    """Every recorded change of the errand, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.object_type == "submission", AuditEvent.object_id == str(submission.id)
            )
            .order_by(AuditEvent.seq)
        )
    )


def errand_document(
    session: Session, submission: Submission, document_id: int
) -> SubmissionDocument | None:
    """A document of this errand (never another errand's, whatever the id says)."""
    return session.scalar(
        select(SubmissionDocument).where(
            SubmissionDocument.id == document_id,
            SubmissionDocument.submission_id == submission.id,
        )
    )


_ACTOR = re.compile(r"^(staff|person):(\d+)(?: for (staff|person):(\d+))?$")


def actor_names(session: Session, events: list[AuditEvent]) -> dict[str, str]:
    """Who each event's actor label names: staff and persons by name, the system's parts
    as such (``staff:3 for person:7``, a clerk who typed in a person's paper form, is the
    clerk's name with the person's in brackets)."""
    names: dict[str, str] = {}
    for actor in {event.actor for event in events}:
        match = _ACTOR.match(actor)
        if match is None:
            names[actor] = actor.replace("system:", "system: ")
            continue
        parts = [_name(session, match.group(1), int(match.group(2)))]
        if match.group(3):
            parts.append(_name(session, match.group(3), int(match.group(4) or 0)))
        names[actor] = parts[0] + (f" ({parts[1]})" if len(parts) > 1 else "")
    return names


def _name(session: Session, kind: str, id_: int) -> str:
    if kind == "staff":
        staff = session.get(StaffMember, id_)
        return staff.name if staff else f"staff:{id_}"
    person = session.get(Person, id_)
    return person.full_name if person else f"person:{id_}"


def _require_holder(agent: Agent, submission: Submission) -> None:
    if submission.assigned_staff_id != agent.id:
        raise NotYourErrand(submission.reference)


def needs_second_approval(session: Session, submission: Submission) -> bool:
    """Rule 8: removing an employer's last orderer needs two caseworkers (the roster says
    whether it is the last)."""
    return would_leave_no_orderer(session, submission)


def _check_approvable(submission: Submission) -> None:
    """No approval over a failed automated check (reject or ask for completion instead)."""
    if any(check.outcome is CheckOutcome.FAILED for check in submission.checks):
        raise IllegalTransition(
            submission.state, Action.APPROVE, "an automated check failed", Refusal.CHECKS_FAILED
        )


def approve_submission(session: Session, agent: Agent, submission: Submission) -> bool:
    """Approve; True when the decision is made, False when it awaits a second caseworker."""
    _require_holder(agent, submission)
    _check_approvable(submission)
    if needs_second_approval(session, submission):
        first = submission.first_approved_by_staff_id
        if first is None:
            # The state machine's four-eyes guard, before recording anything.
            if submission.state is not SubmissionState.IN_REVIEW:
                raise IllegalTransition(submission.state, Action.APPROVE, "not in review")
            check_four_eyes(submission, agent, Action.APPROVE)
            submission.first_approved_by_staff_id = agent.id
            submission.assigned_staff_id = None  # to the queue, for another caseworker
            session.flush()
            record_submission_event(session, agent.audit_label, submission.id, "first_approval")
            return False
        if first == agent.id:
            raise IllegalTransition(
                submission.state,
                Action.APPROVE,
                "the second approval must come from another caseworker",
                Refusal.FOUR_EYES,
            )
    transition(session, submission, Action.APPROVE, agent)
    return True


def reject_submission(
    session: Session,
    agent: Agent,
    submission: Submission,
    reason: RejectionReason,
    text: str,
    *,
    base_url: str,
) -> None:
    """Reject with a coded reason and the caseworker's words, which the submitter is sent
    (the email's links start with ``base_url``)."""
    _require_holder(agent, submission)
    transition(session, submission, Action.REJECT, agent, reason=reason.value)
    submission.decision_code = reason.value
    submission.decision_text = text.strip()
    notices.notify_rejected(session, submission, text, base_url=base_url)


def request_completion(
    session: Session, agent: Agent, submission: Submission, message: str, *, base_url: str
) -> CompletionRequest:
    """Ask the submitter for more (komplettering): the due date stands still until they
    answer, and they are emailed what is needed and by when (links from ``base_url``)."""
    _require_holder(agent, submission)
    transition(session, submission, Action.REQUEST_COMPLETION, agent)
    assert agent.id is not None
    request = CompletionRequest(
        submission_id=submission.id, requested_by_staff_id=agent.id, message=message.strip()
    )
    session.add(request)
    session.flush()
    session.expire(submission, ["completion_requests"])
    notices.notify_completion_requested(session, submission, message, base_url=base_url)
    return request


def retry_failed(session: Session, agent: Agent, submission: Submission) -> None:
    transition(session, submission, Action.RETRY, agent)


def employer_contacts(
    session: Session, query: str
) -> tuple[Employer | None, list[access.EmployerContact]]:
    """'Vilka är behöriga beställare och administratörer hos arbetsgivare X?' (rule 10):
    by organisation number or employer code."""
    text = query.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    employer = None
    if len(digits) in (10, 12):
        employer = session.scalar(select(Employer).where(Employer.orgnr == digits[-10:]))
    if employer is None and text:
        employer = session.scalar(
            select(Employer)
            .join(EmployerCode, EmployerCode.employer_id == Employer.id)
            .where(func.upper(EmployerCode.code) == text.upper())
        )
    if employer is None:
        return None, []
    return employer, access.orderers_and_administrators(session, employer.id)
