"""Due dates (SLA): a reminder before an errand's due date, an escalation after it.

``DECISION_TIME`` sets the due date when an errand is received; it stands still while
the errand waits for the submitter's completion. ``DUE_REMINDER_BEFORE`` the due date,
the caseworker holding the errand (or, with nobody holding it, the team leads) is
reminded; once it has passed, the team leads are told (escalation). Each happens once
per due date, in one digest per person and day (Swedish time): an errand whose people
had theirs today already waits for tomorrow's. ``watch_deadlines`` runs from a scheduled
actor in any number of workers, one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.audit.service import record_errand_event
from app.core.agents import Agent
from app.core.i18n import swedish_time
from app.db import utcnow
from app.notifications import notices
from app.registrations.models import Errand
from app.staff.models import StaffMember
from workflows.states import DUE_REMINDER_BEFORE, ErrandState

BATCH = 200
"""Errands handled per run; the next run takes the rest."""


class DeadlineReport(NamedTuple):
    reminded: int
    escalated: int


def _team_leads(session: Session) -> list[StaffMember]:
    return list(
        session.scalars(select(StaffMember).where(StaffMember.is_team_lead, StaffMember.is_active))
    )


NOT_DECIDED = (
    ErrandState.RECEIVED,
    ErrandState.VERIFYING,
    ErrandState.IN_REVIEW,
    ErrandState.SUSPECTED_FRAUD,
    ErrandState.FAILED,
)
"""Received and not decided; not waiting for the submitter (its due date stands still)."""


def _due(session: Session, *conditions: object) -> list[Errand]:
    return list(
        session.scalars(
            select(Errand)
            .where(Errand.state.in_(NOT_DECIDED), *conditions)  # type: ignore[arg-type]
            .options(selectinload(Errand.employer), selectinload(Errand.assigned_staff))
            .order_by(Errand.due_dt)
            .limit(BATCH)
            .with_for_update(of=Errand, skip_locked=True)
        )
    )


@dataclass
class _Digest:
    staff: StaffMember
    near: list[Errand] = field(default_factory=list)
    passed: list[Errand] = field(default_factory=list)


def _alone(session: Session) -> bool:
    """Whether this is the only watch running now (PostgreSQL: a transaction's advisory
    lock; two at once would each find the day's digest taken by the other)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(WATCH_LOCK))))


WATCH_LOCK = 0x5D1E_D0E5
"""The advisory lock key of the deadline watch."""


def watch_deadlines(
    session: Session, now: datetime | None = None, *, base_url: str
) -> DeadlineReport:
    """Send the reminders and escalations that are due now (their links start with
    ``base_url``), one digest per person and day. Safe to run anywhere at once: a second
    watch running at the same time does nothing, and each notice is recorded on the
    errand."""
    now = now or utcnow()
    if not _alone(session):
        return DeadlineReport(0, 0)
    agent = Agent.system("deadlines")
    leads = _team_leads(session)
    had_today = notices.deadline_digests_of(session, swedish_time(now).date())
    digests: dict[int, _Digest] = {}

    def told(errand: Errand, recipients: list[StaffMember], passed: bool) -> bool:
        if any(staff.id in had_today for staff in recipients):
            return False  # tomorrow's digest
        for staff in recipients:
            digest = digests.setdefault(staff.id, _Digest(staff))
            (digest.passed if passed else digest.near).append(errand)
        return True

    near = _due(
        session,
        Errand.reminded_dt.is_(None),
        Errand.due_dt <= now + DUE_REMINDER_BEFORE,
        Errand.due_dt > now,
    )
    reminded = 0
    for errand in near:
        holder = errand.assigned_staff
        if told(errand, [holder] if holder and holder.is_active else leads, passed=False):
            errand.reminded_dt = now
            record_errand_event(session, agent.audit_label, errand.id, "deadline_reminder")
            reminded += 1
    overdue = _due(session, Errand.escalated_dt.is_(None), Errand.due_dt <= now)
    escalated = 0
    for errand in overdue:
        if told(errand, leads, passed=True):
            errand.escalated_dt = now
            record_errand_event(session, agent.audit_label, errand.id, "deadline_escalated")
            escalated += 1
    for digest in digests.values():
        notices.notify_deadline_digest(
            session,
            digest.staff,
            near=digest.near,
            passed=digest.passed,
            now=now,
            base_url=base_url,
        )
    session.flush()
    return DeadlineReport(reminded, escalated)
