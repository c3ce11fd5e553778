"""Due dates (SLA): a reminder before an errand's due date, an escalation after it.

``DECISION_TIME`` sets the due date when an errand is received; it stands still while
the errand waits for the submitter's completion. ``DUE_REMINDER_BEFORE`` the due date,
the caseworker holding the errand (or, with nobody holding it, the team leads) is
reminded; once it has passed, the team leads are told (escalation). Each happens once
per due date. ``watch_deadlines`` runs from a scheduled actor in any number of workers.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.audit.service import record_errand_event
from app.core.agents import Agent
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


def watch_deadlines(
    session: Session, now: datetime | None = None, *, base_url: str
) -> DeadlineReport:
    """Send the reminders and escalations that are due now (their links start with
    ``base_url``). Safe to run anywhere at once: errands another run holds are skipped,
    and each notice is recorded on the errand."""
    now = now or utcnow()
    agent = Agent.system("deadlines")
    leads = _team_leads(session)
    near = _due(
        session,
        Errand.reminded_dt.is_(None),
        Errand.due_dt <= now + DUE_REMINDER_BEFORE,
        Errand.due_dt > now,
    )
    for errand in near:
        holder = errand.assigned_staff
        for staff in [holder] if holder and holder.is_active else leads:
            notices.notify_deadline(session, errand, staff, passed=False, base_url=base_url)
        errand.reminded_dt = now
        record_errand_event(session, agent.audit_label, errand.id, "deadline_reminder")
    overdue = _due(session, Errand.escalated_dt.is_(None), Errand.due_dt <= now)
    for errand in overdue:
        for staff in leads:
            notices.notify_deadline(session, errand, staff, passed=True, base_url=base_url)
        errand.escalated_dt = now
        record_errand_event(session, agent.audit_label, errand.id, "deadline_escalated")
    session.flush()
    return DeadlineReport(len(near), len(overdue))
