"""The permission store's change log, in commit order (the API's change feed reads it).

Every change of a service permission or a role writes a ``PermissionChange`` in the same
transaction, here. Order is the hard part: an id taken from a sequence at insert is not
commit order when transactions run side by side (the one that took id 7 may commit after
the one that took id 8, and a reader that saw 8 would never see 7). So the writers are
serialised from their first log entry to their commit: on PostgreSQL each takes a
transaction-level advisory lock before it takes an id, and holds it until it commits or
rolls back; SQLite (the demo) lets one writer at a time in anyway (``BEGIN IMMEDIATE``).
An id visible to a reader is therefore never followed by a smaller one committing later,
and the feed's cursor is simply the last id read. Every writer takes the log's lock after
its employer's lock (``lock_employer``) and before the audit chain's head, so the locks are
always taken in one order.

A change also ends the web sessions of the person it concerns: the web refuses every
session of theirs begun before their last change (:func:`last_change_dt`), so nobody goes on
with roles they no longer have, or without logging in again to the ones they were given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.access.models import (
    ChangeAction,
    ChangeKind,
    EmployerCode,
    PermissionChange,
    RoleGrant,
    ServicePermission,
)

CHANGE_LOG_LOCK = 0x62656869  # "behi": the advisory lock key of the change log
"""Held from a transaction's first change-log entry to its end (PostgreSQL)."""


def _serialise(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOG_LOCK})


def _add(session: Session, changes: list[PermissionChange]) -> None:
    if not changes:
        return
    _serialise(session)
    session.add_all(changes)
    session.flush()


def service_permissions_changed(
    session: Session, granted: Iterable[ServicePermission], revoked: Iterable[ServicePermission]
) -> None:
    """Log service permissions granted and revoked (already flushed)."""
    rows = [(ChangeAction.GRANTED, p) for p in granted] + [
        (ChangeAction.REVOKED, p) for p in revoked
    ]
    code_ids = sorted({p.employer_code_id for _, p in rows})
    employers = {
        code_id: employer_id
        for code_id, employer_id in session.execute(
            select(EmployerCode.id, EmployerCode.employer_id).where(EmployerCode.id.in_(code_ids))
        )
    }
    _add(
        session,
        [
            PermissionChange(
                kind=ChangeKind.SERVICE_PERMISSION,
                action=action,
                person_id=p.person_id,
                employer_id=employers[p.employer_code_id],
                employer_code_id=p.employer_code_id,
                service=p.service,
            )
            for action, p in rows
        ],
    )


def role_changed(session: Session, grant: RoleGrant, action: ChangeAction) -> None:
    """Log a role granted, its codes changed, or ended (the grant already flushed)."""
    _add(
        session,
        [
            PermissionChange(
                kind=ChangeKind.ROLE,
                action=action,
                person_id=grant.person_id,
                employer_id=grant.employer_id,
                role=grant.role,
                codes=None if grant.is_all_codes else sorted(c.code for c in grant.codes),
            )
        ],
    )


def log_current_state(session: Session) -> int:
    """Log every active role and service permission as granted (a store filled without the
    log, e.g. a seed or a bulk load, made followable). Returns how many entries."""
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.valid_to_dt.is_(None))))
    permissions = list(
        session.scalars(select(ServicePermission).where(ServicePermission.valid_to_dt.is_(None)))
    )
    for grant in grants:
        role_changed(session, grant, ChangeAction.GRANTED)
    service_permissions_changed(session, permissions, [])
    return len(grants) + len(permissions)


def last_change_dt(session: Session, person_id: int) -> datetime | None:
    """When the person's roles or service permissions last changed (their web sessions
    begun before then have ended); None if never."""
    return session.scalar(
        select(func.max(PermissionChange.created_dt)).where(PermissionChange.person_id == person_id)
    )
