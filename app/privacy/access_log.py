"""Who on SPV's staff looked at whose data, and – with the API's own log – who has looked at
a person's data at all.

Plain functions over a session: no Flask. A person is named in the logs by the keyed hash
of their personnummer (``app.api.clients.subject_hash``, under the key both logs share),
never by the number itself. The staff's log is append-only: on PostgreSQL the application's
role may only insert and read it (``app.audit.db_role``); the oldest rows leave it through
:func:`delete_before` alone, in batches, when the retention period has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Delete, delete, select, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.access.exports import to_csv
from app.access.service import active_grants
from app.api.clients import subject_hash
from app.api.models import ApiAccessLog, ApiClient
from app.core.agents import Agent, AgentKind
from app.core.ids import InvalidIdNumber, normalise_personnummer
from app.db import utcnow
from app.privacy.models import StaffAccessLog, ViewKind
from app.registrations.data import InvalidFormData
from app.registrations.models import Errand
from app.staff.models import StaffMember

MINIMUM_RETENTION = timedelta(days=30)
"""No view younger than this is ever deleted, whatever the retention setting says."""

DELETE_FUNCTION = "staff_access_log_delete_before"
"""On PostgreSQL the only way rows leave the staff's log: a function owned by the tables'
owner (``SECURITY DEFINER``) that deletes at most a batch of the rows older than a cutoff
(migration 0025); the application's role may run it, but neither ``UPDATE`` nor
``DELETE`` the table."""

REASON_MAX = 200


def named_in(errand: Errand) -> list[str]:
    """The personnummer of everyone an errand's page shows: its submitter, the person it is
    about, a removal's replacement and the signatory (the two who sign jointly; each once)."""
    found = [errand.submitted_by.personnummer, errand.subject_personnummer]
    try:
        progress = errand.progress
    except InvalidFormData:
        progress = None
    for part in ("person", "orderer", "replacement", "signatory", "co_signatory"):
        details = getattr(progress, part, None)
        found.append(getattr(details, "personnummer", None))
    return sorted({p for p in found if p and len(p) == 12 and p.isdigit()})


def typed_in_personnummers(values: Iterable[object]) -> list[str]:
    """The valid personnummer among a form's values as typed (each once, normalised)."""
    found = set()
    for value in values:
        if isinstance(value, str) and value.strip():
            try:
                found.add(normalise_personnummer(value))
            except InvalidIdNumber:
                continue
    return sorted(found)


def employer_contacts_named(session: Session, employer_id: int) -> list[str]:
    """The personnummer of the orderers and administrators the employer lookup shows."""
    return sorted({grant.person.personnummer for grant in active_grants(session, employer_id)})


def record_view(
    session: Session,
    key: bytes,
    agent: Agent,
    personnummers: Iterable[str],
    what: ViewKind,
    object_ref: str = "",
    reason: str | None = None,
) -> int:
    """Record that the staff member ``agent`` looked at these people's data (one row each);
    returns how many. Nothing for an agent who is not staff (a person's own pages)."""
    hashes = [subject_hash(key, pnr) for pnr in sorted(set(personnummers))]
    return record_hashed_view(session, agent, hashes, what, object_ref, reason)


def record_hashed_view(
    session: Session,
    agent: Agent,
    subject_hashes: Iterable[str],
    what: ViewKind,
    object_ref: str = "",
    reason: str | None = None,
) -> int:
    """:func:`record_view` for people known by their hash only (a register extract's)."""
    if agent.kind is not AgentKind.STAFF or agent.id is None:
        return 0
    now = utcnow()
    rows = [
        StaffAccessLog(
            staff_id=agent.id,
            subject_hash=digest,
            what=what,
            object_ref=object_ref[:64],
            reason=(reason or "").strip()[:REASON_MAX] or None,
            viewed_dt=now,
        )
        for digest in dict.fromkeys(subject_hashes)
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


@dataclass(frozen=True)
class Look:
    """One look at a person's data, by a staff member or an API client."""

    viewed_dt: datetime
    by_staff: bool
    who: str
    """The staff member's name, or the API client's."""
    what: str
    """A :class:`ViewKind` (staff), or the API's endpoint name."""
    object_ref: str
    reason: str


def who_looked(session: Session, key: bytes, personnummer: str) -> list[Look]:
    """Every look at the person's data in both logs – the staff's views and the API's
    reads – newest first."""
    digest = subject_hash(key, personnummer)
    staff = session.execute(
        select(StaffAccessLog, StaffMember.name)
        .join(StaffMember, StaffMember.id == StaffAccessLog.staff_id)
        .where(StaffAccessLog.subject_hash == digest)
    ).all()
    api = session.execute(
        select(ApiAccessLog, ApiClient.name)
        .join(ApiClient, ApiClient.id == ApiAccessLog.client_id)
        .where(ApiAccessLog.subject_hash == digest)
    ).all()
    looks = [
        Look(row.viewed_dt, True, name, row.what.value, row.object_ref, row.reason or "")
        for row, name in staff
    ] + [Look(row.created_dt, False, name, row.endpoint, "", "") for row, name in api]
    return sorted(looks, key=lambda look: look.viewed_dt, reverse=True)


CSV_COLUMNS = ("viewed_utc", "by", "who", "what", "object", "reason")


def looks_csv(looks: Iterable[Look], label: Callable[[Look], str]) -> str:
    """The looks as CSV (the employers' exports' dialect: ``app.access.exports.to_csv``):
    when (UTC), staff or api, who, what (``label`` names it), which object, why."""
    return to_csv(
        CSV_COLUMNS,
        (
            (
                look.viewed_dt.strftime("%Y-%m-%d %H:%M:%S"),
                "staff" if look.by_staff else "api",
                look.who,
                label(look),
                look.object_ref,
                look.reason,
            )
            for look in looks
        ),
    )


@dataclass(frozen=True)
class Deleted:
    """What one batch of :func:`delete_before` removed."""

    staff: int
    api: int

    @property
    def total(self) -> int:
        return self.staff + self.api


def delete_before(session: Session, cutoff: datetime, *, limit: int = 1000) -> Deleted:
    """Delete one batch – at most ``limit`` rows of each log, the oldest first – of the
    access log's entries (the staff's views and the API's reads) older than ``cutoff``;
    the caller commits, and calls again while a batch comes back full. Refuses a cutoff
    less than :data:`MINIMUM_RETENTION` ago."""
    return Deleted(
        delete_staff_views_before(session, cutoff, limit=limit),
        delete_api_reads_before(session, cutoff, limit=limit),
    )


def _check_cutoff(cutoff: datetime, limit: int) -> None:
    if cutoff > utcnow() - MINIMUM_RETENTION:
        raise ValueError(f"the access log is kept at least {MINIMUM_RETENTION.days} days")
    if limit < 1:
        raise ValueError("a batch is at least one row")


def delete_staff_views_before(session: Session, cutoff: datetime, *, limit: int) -> int:
    """The staff's half of :func:`delete_before`: on PostgreSQL through the owner's
    function (the application's role may not delete from the log itself)."""
    _check_cutoff(cutoff, limit)
    if session.get_bind().dialect.name == "postgresql":
        return int(
            session.scalar(
                text(f"SELECT {DELETE_FUNCTION}(:cutoff, :limit)"),
                {"cutoff": cutoff, "limit": limit},
            )
            or 0
        )
    oldest = (  # SQLite, the demo's: no roles
        select(StaffAccessLog.id)
        .where(StaffAccessLog.viewed_dt < cutoff)
        .order_by(StaffAccessLog.id)
        .limit(limit)
    )
    return _deleted(session, delete(StaffAccessLog).where(StaffAccessLog.id.in_(oldest)))


def delete_api_reads_before(session: Session, cutoff: datetime, *, limit: int) -> int:
    """The API's half of :func:`delete_before`."""
    _check_cutoff(cutoff, limit)
    oldest = (
        select(ApiAccessLog.id)
        .where(ApiAccessLog.created_dt < cutoff)
        .order_by(ApiAccessLog.id)
        .limit(limit)
    )
    return _deleted(session, delete(ApiAccessLog).where(ApiAccessLog.id.in_(oldest)))


def _deleted(session: Session, statement: Delete) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount or 0)


def delete_all_before(
    unit_of_work: Callable[[], AbstractContextManager[Session]],
    cutoff: datetime,
    *,
    batch_size: int = 1000,
) -> Deleted:
    """:func:`delete_before` batch after batch, each in a transaction of its own
    (``unit_of_work``), until nothing older than ``cutoff`` is left; the totals."""
    staff = api = 0
    while True:
        with unit_of_work() as session:
            batch = delete_before(session, cutoff, limit=batch_size)
        staff, api = staff + batch.staff, api + batch.api
        if batch.staff < batch_size and batch.api < batch_size:
            return Deleted(staff, api)
