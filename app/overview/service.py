"""The overview's lists (issue 18 item 7): employers with no orderer, with no
administrator, with many inactive users, and the errands' lead times by channel. Plain
queries, no Flask; every list can be had whole for its CSV export."""

from __future__ import annotations

import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.access.inactivity import inactivity_by_employer
from app.access.models import (
    ORDERER_ROLES,
    CodeStatus,
    Employer,
    EmployerCode,
    Role,
    RoleGrant,
    ServicePermission,
)
from app.db import utcnow
from app.registrations.models import Channel, Errand
from workflows.states import DECISION_TIME, TERMINAL_STATES, ErrandState

MANY_INACTIVE = 10
"""Inactive users from which an employer is listed, unless the page asks otherwise."""
PERIODS_DAYS = (30, 90, 365)
"""The periods the lead times are given for."""


@dataclass(frozen=True)
class EmployerRow:
    employer_id: int
    orgnr: str
    name: str
    users: int
    """People with an active service permission there."""
    open_errands: int
    """Errands SPV has received for the employer and not finished (one may be the cure)."""
    inactive: int = 0
    """Users marked inactive (the inactive list only)."""


@dataclass(frozen=True)
class EmployerList:
    total: int
    rows: list[EmployerRow]
    """The first ``limit`` of ``total``, by name (the inactive list: most inactive first)."""


def _active_employer() -> object:
    """The employer still has an open employer code: it still reports to SPV."""
    return exists().where(
        EmployerCode.employer_id == Employer.id, EmployerCode.status == CodeStatus.ACTIVE
    )


def _rows(
    session: Session, employers: Sequence[Employer], inactive: dict[int, int] | None = None
) -> list[EmployerRow]:
    ids = [e.id for e in employers]
    users = dict(
        session.execute(
            select(EmployerCode.employer_id, func.count(func.distinct(ServicePermission.person_id)))
            .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
            .where(ServicePermission.valid_to_dt.is_(None), EmployerCode.employer_id.in_(ids))
            .group_by(EmployerCode.employer_id)
        ).all()
    )
    errands = dict(
        session.execute(
            select(Errand.employer_id, func.count())
            .where(
                Errand.employer_id.in_(ids),
                Errand.received_dt.is_not(None),
                Errand.state.not_in(TERMINAL_STATES),
            )
            .group_by(Errand.employer_id)
        ).all()
    )
    return [
        EmployerRow(
            e.id,
            e.orgnr,
            e.name,
            users.get(e.id, 0),
            errands.get(e.id, 0),
            (inactive or {}).get(e.id, 0),
        )
        for e in employers
    ]


def employers_without(
    session: Session, roles: Collection[Role], *, limit: int | None = None
) -> EmployerList:
    """Active employers where nobody holds any of ``roles`` (no orderer: ``ORDERER_ROLES``;
    no administrator: ``{Role.ADMINISTRATOR}``)."""
    holds = exists().where(
        RoleGrant.employer_id == Employer.id,
        RoleGrant.role.in_(list(roles)),
        RoleGrant.valid_to_dt.is_(None),
    )
    query = select(Employer).where(_active_employer(), ~holds)  # type: ignore[arg-type]
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    employers = list(session.scalars(query.order_by(Employer.name, Employer.id).limit(limit)))
    return EmployerList(total, _rows(session, employers))


def employers_without_orderer(session: Session, *, limit: int | None = None) -> EmployerList:
    return employers_without(session, ORDERER_ROLES, limit=limit)


def employers_without_administrator(session: Session, *, limit: int | None = None) -> EmployerList:
    return employers_without(session, {Role.ADMINISTRATOR}, limit=limit)


def employers_with_inactive_users(
    session: Session, *, minimum: int = MANY_INACTIVE, limit: int | None = None
) -> EmployerList:
    """Employers with at least ``minimum`` users marked inactive (rule 11), most first."""
    counts = inactivity_by_employer(session, minimum=minimum)
    shown = counts[:limit] if limit is not None else counts
    by_id = {
        e.id: e
        for e in session.scalars(
            select(Employer).where(Employer.id.in_([c.employer_id for c in shown]))
        )
    }
    employers = [by_id[c.employer_id] for c in shown]
    return EmployerList(
        len(counts), _rows(session, employers, {c.employer_id: c.inactive for c in shown})
    )


@dataclass(frozen=True)
class ChannelFigures:
    channel: Channel
    received: int
    """Errands received in the period."""
    approved: int
    """Decided in the period: approved."""
    rejected: int
    """Decided in the period: rejected."""
    open_now: int
    """Received and not finished, now."""
    median_days: float | None
    """From receipt to decision, for those decided in the period."""
    longest_days: float | None
    within_decision_time: float | None
    """The share decided within ``DECISION_TIME`` of receipt (0–1)."""


def lead_times(session: Session, days: int, now: datetime | None = None) -> list[ChannelFigures]:
    """How the errands of each channel went over the last ``days``."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    received = dict(
        session.execute(
            select(Errand.channel, func.count())
            .where(Errand.received_dt >= since, Errand.received_dt <= now)
            .group_by(Errand.channel)
        ).all()
    )
    open_now = dict(
        session.execute(
            select(Errand.channel, func.count())
            .where(Errand.received_dt.is_not(None), Errand.state.not_in(TERMINAL_STATES))
            .group_by(Errand.channel)
        ).all()
    )
    decided: dict[Channel, list[tuple[timedelta, bool]]] = {channel: [] for channel in Channel}
    for channel, received_dt, decided_dt, state in session.execute(
        select(Errand.channel, Errand.received_dt, Errand.decided_dt, Errand.state).where(
            Errand.decided_dt >= since,
            Errand.decided_dt <= now,
            Errand.received_dt.is_not(None),
            Errand.channel.is_not(None),
        )
    ):
        if channel is not None and received_dt is not None and decided_dt is not None:
            decided[channel].append((decided_dt - received_dt, state is ErrandState.REJECTED))
    figures = []
    for channel in Channel:
        spans = [span for span, _ in decided[channel]]
        in_days = [span.total_seconds() / 86400 for span in spans]
        figures.append(
            ChannelFigures(
                channel=channel,
                received=received.get(channel, 0),
                approved=sum(1 for _, rejected in decided[channel] if not rejected),
                rejected=sum(1 for _, rejected in decided[channel] if rejected),
                open_now=open_now.get(channel, 0),
                median_days=statistics.median(in_days) if in_days else None,
                longest_days=max(in_days) if in_days else None,
                within_decision_time=(
                    sum(1 for span in spans if span <= DECISION_TIME) / len(spans)
                    if spans
                    else None
                ),
            )
        )
    return figures
