"""Mandates that end (issue 18 item 3): a role or a service permission with a planned end
(``ends_on``): the orderer's from the registration form, an administrator's or a user's
from Hantera behörigheter.

- Reminders: ``MANDATE_REMINDER_DAYS`` before the end the person and whoever granted it
  (the administrator or orderer who did; for an orderer, the registration's submitter)
  are emailed, once for each planned end (a new end is reminded of anew).
- Extension: "Förläng" moves an administrator's, or all of a user's time-limited
  permissions', end in one action (an orderer's end is the signed form's: rule 7).
- The end: on the day, the scheduled actor ``end_mandates`` ends them through the same
  path as a removal: ``valid_to_dt``, the permission change log (sessions and the API
  follow it), one audit event each, and emails to the person and whoever granted it.

The scheduled functions take a unit of work: each employer's mandates in a transaction of
their own (its audit chain), rows another worker holds skipped, nothing due twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.access import management as m
from app.access.management import check_end, today_in_sweden
from app.access.models import (
    ORDERER_ROLES,
    Employer,
    EmployerCode,
    Person,
    Role,
    RoleGrant,
    ServicePermission,
)
from app.access.service import end_grant, end_permissions, lock_employer
from app.audit.service import record_event
from app.db import utcnow
from app.notifications import notices
from app.notifications.audience import grant_audience
from app.registrations.models import Errand

SYSTEM_ACTOR = "system:end_mandates"
UnitOfWork = Callable[[], AbstractContextManager[Session]]


# ---- who granted it ----------------------------------------------------------------------


def _still_at(session: Session, person_ids: Iterable[int], employer_id: int) -> set[int]:
    """Those of ``person_ids`` who still hold a role at the employer: a granter whose own
    role has ended is told nothing more of the people there."""
    ids = set(person_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(RoleGrant.person_id).where(
                RoleGrant.person_id.in_(ids),
                RoleGrant.employer_id == employer_id,
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    )


def _granter_of_role(session: Session, grant: RoleGrant) -> Person | None:
    """The orderer who appointed an administrator (while still at the employer); the
    submitter of an orderer's form."""
    if grant.granted_by_person_id is not None:
        if not _still_at(session, [grant.granted_by_person_id], grant.employer_id):
            return None
        return session.get(Person, grant.granted_by_person_id)
    if grant.source_errand_id is not None:
        errand = session.get(Errand, grant.source_errand_id)
        return errand.submitted_by if errand else None
    return None


def _address_at(session: Session, person: Person, employer_id: int) -> str | None:
    """The work address a person gave for their role at the employer, else their own."""
    given = session.scalars(
        select(RoleGrant.contact_email).where(
            RoleGrant.person_id == person.id,
            RoleGrant.employer_id == employer_id,
            RoleGrant.valid_to_dt.is_(None),
            RoleGrant.contact_email.is_not(None),
        )
    ).first()
    return given or person.email


def _granters(session: Session, permissions: Iterable[ServicePermission]) -> list[Person]:
    """Who granted ``permissions`` (one employer's), while still at the employer."""
    permissions = list(permissions)
    if not permissions:
        return []
    employer_id = permissions[0].employer_code.employer_id
    ids = _still_at(
        session,
        {p.granted_by_person_id for p in permissions if p.granted_by_person_id},
        employer_id,
    )
    return list(session.scalars(select(Person).where(Person.id.in_(sorted(ids))))) if ids else []


# ---- what is due -----------------------------------------------------------------------


def _due_roles(until: date) -> Any:
    return select(RoleGrant).where(RoleGrant.valid_to_dt.is_(None), RoleGrant.ends_on <= until)


def _due_permissions(until: date) -> Any:
    return (
        select(ServicePermission)
        .join(EmployerCode, ServicePermission.employer_code_id == EmployerCode.id)
        .where(ServicePermission.valid_to_dt.is_(None), ServicePermission.ends_on <= until)
    )


def _employers_due(session: Session, since: date | None, until: date) -> list[int]:
    """The employers with an active role or permission planned to end by ``until`` (after
    ``since``, when given)."""
    roles = _due_roles(until).with_only_columns(RoleGrant.employer_id)
    permissions = _due_permissions(until).with_only_columns(EmployerCode.employer_id)
    if since is not None:
        roles = roles.where(RoleGrant.ends_on > since)
        permissions = permissions.where(ServicePermission.ends_on > since)
    return sorted(set(session.scalars(roles.union(permissions))))


def _at(
    session: Session, employer_id: int, since: date | None, until: date
) -> tuple[list[RoleGrant], list[ServicePermission]]:
    """The employer's due roles and permissions, locked (rows another holds skipped)."""
    roles = _due_roles(until).where(RoleGrant.employer_id == employer_id)
    permissions = _due_permissions(until).where(EmployerCode.employer_id == employer_id)
    if since is not None:
        roles = roles.where(RoleGrant.ends_on > since)
        permissions = permissions.where(ServicePermission.ends_on > since)
    grants = list(
        session.scalars(
            roles.order_by(RoleGrant.id)
            .options(selectinload(RoleGrant.person), selectinload(RoleGrant.codes))
            .with_for_update(skip_locked=True, of=RoleGrant)
        )
    )
    found = list(
        session.scalars(
            permissions.order_by(
                ServicePermission.person_id, ServicePermission.ends_on, ServicePermission.id
            )
            .options(
                selectinload(ServicePermission.person),
                selectinload(ServicePermission.employer_code),
            )
            .with_for_update(skip_locked=True, of=ServicePermission)
        )
    )
    return grants, found


def _by_person(
    permissions: Sequence[ServicePermission],
) -> list[tuple[tuple[int, date], list[ServicePermission]]]:
    """Permissions grouped by person and planned end (sorted so by :func:`_at`)."""
    return [
        (key, list(group))
        for key, group in groupby(permissions, key=lambda p: (p.person_id, p.ends_on or date.min))
    ]


def _event(session: Session, action: str, object_type: str, object_id: int, **data: Any) -> int:
    return record_event(
        session,
        actor=SYSTEM_ACTOR,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data=data,
    ).id


# ---- reminders ---------------------------------------------------------------------------


def remind_before_end(
    unit_of_work: UnitOfWork, *, base_url: str, days: int, today: date | None = None
) -> int:
    """Scheduled: remind the person and whoever granted it of each role and each user's
    permissions ending within ``days``, once for each planned end. Returns how many
    reminders (a role, or one person's permissions ending on one day) were emailed."""
    today = today or today_in_sweden()
    until = today + timedelta(days=days)
    with unit_of_work() as session:
        employer_ids = _employers_due(session, today, until)
    reminded = 0
    for employer_id in employer_ids:
        with unit_of_work() as session:
            employer = session.get_one(Employer, employer_id)
            grants, permissions = _at(session, employer_id, today, until)
            for grant in grants:
                reminded += _remind_role(session, employer, grant, base_url)
            for (_person_id, ends_on), group in _by_person(permissions):
                reminded += _remind_permissions(session, employer, group, ends_on, base_url)
    return reminded


def _remind_role(session: Session, employer: Employer, grant: RoleGrant, base_url: str) -> int:
    granter = _granter_of_role(session, grant)
    ends_on = grant.ends_on
    sent = [
        notices.notify_mandate(
            session,
            "mandate_ending",
            recipient,
            subject_person=grant.person,
            employer=employer,
            lines=lambda lang: notices.role_lines(grant, lang),
            day=ends_on,
            dedupe_key=f"mandate_ending:role:{grant.id}:{ends_on}:{recipient.id}",
            base_url=base_url,
            address=_address_at(session, recipient, employer.id),
            path=_role_path(grant, recipient),
            extra={"is_orderer_role": grant.role in ORDERER_ROLES},
        )
        for recipient in _unique([grant.person, granter])
    ]
    if not any(sent):
        return 0
    _event(
        session,
        "role_grant.end_reminded",
        "role_grant",
        grant.id,
        employer_id=employer.id,
        person_id=grant.person_id,
        ends_on=str(ends_on),
    )
    return 1


def _remind_permissions(
    session: Session,
    employer: Employer,
    permissions: list[ServicePermission],
    ends_on: date,
    base_url: str,
) -> int:
    person = permissions[0].person
    sent = [
        notices.notify_mandate(
            session,
            "mandate_ending",
            recipient,
            subject_person=person,
            employer=employer,
            lines=lambda lang: notices.permission_lines(permissions, lang),
            day=ends_on,
            dedupe_key=(
                f"mandate_ending:permissions:{employer.id}:{person.id}:{ends_on}:{recipient.id}"
            ),
            base_url=base_url,
            address=_address_at(session, recipient, employer.id),
            path=_user_path(person, recipient),
            extra={"is_orderer_role": False},
        )
        for recipient in _unique([person, *_granters(session, permissions)])
    ]
    if not any(sent):
        return 0
    for permission in permissions:
        _event(
            session,
            "service_permission.end_reminded",
            "service_permission",
            permission.id,
            employer_id=employer.id,
            person_id=person.id,
            ends_on=str(ends_on),
        )
    return 1


def _unique(persons: Iterable[Person | None]) -> list[Person]:
    seen: dict[int, Person] = {}
    for person in persons:
        if person is not None:
            seen.setdefault(person.id, person)
    return list(seen.values())


def _role_path(grant: RoleGrant, recipient: Person) -> str:
    """Where the granter extends an administrator; the overview for anyone else."""
    if recipient.id != grant.person_id and grant.role is Role.ADMINISTRATOR:
        return f"{notices.ACCESS_PATH}/administratorer/{grant.id}"
    return notices.ACCESS_PATH


def _user_path(person: Person, recipient: Person) -> str:
    if recipient.id != person.id:
        return f"{notices.ACCESS_PATH}/anvandare/{person.id}"
    return notices.ACCESS_PATH


# ---- the end, on the day -----------------------------------------------------------------


def end_due(unit_of_work: UnitOfWork, *, base_url: str, today: date | None = None) -> int:
    """Scheduled: end every active role and permission whose planned end is today or
    before, as a removal does (the change log, an audit event each, the emails). Safe to
    run anywhere at once and again. Returns how many roles and permissions it ended."""
    today = today or today_in_sweden()
    with unit_of_work() as session:
        employer_ids = _employers_due(session, None, today)
    ended = 0
    for employer_id in employer_ids:
        with unit_of_work() as session:
            employer = lock_employer(session, employer_id)  # as every role change does
            grants, permissions = _at(session, employer_id, None, today)
            now = utcnow()
            for grant in grants:
                _end_role(session, employer, grant, now, base_url)
            for _key, group in _by_person(permissions):
                _end_permissions(session, employer, group, now, base_url)
            ended += len(grants) + len(permissions)
    return ended


def _end_role(
    session: Session, employer: Employer, grant: RoleGrant, now: datetime, base_url: str
) -> None:
    end_grant(
        session,
        SYSTEM_ACTOR,
        grant,
        now=now,
        employer_id=employer.id,
        person_id=grant.person_id,
        role=grant.role.value,
        ends_on=str(grant.ends_on),
        reason="ends_on",
    )
    notices.notify_role_ended(session, grant, base_url=base_url, ended_on=grant.ends_on)
    told = {r.person.id for r in grant_audience(session, grant)}
    granter = _granter_of_role(session, grant)
    if granter is not None and granter.id not in told:
        notices.notify_mandate(
            session,
            "mandate_ended",
            granter,
            subject_person=grant.person,
            employer=employer,
            lines=lambda lang: notices.role_lines(grant, lang),
            day=grant.ends_on,
            dedupe_key=f"mandate_ended:role:{grant.id}:{granter.id}",
            base_url=base_url,
            address=_address_at(session, granter, employer.id),
        )


def _end_permissions(
    session: Session,
    employer: Employer,
    permissions: list[ServicePermission],
    now: datetime,
    base_url: str,
) -> None:
    person = permissions[0].person
    events = end_permissions(
        session, SYSTEM_ACTOR, permissions, now=now, employer_id=employer.id, reason="ends_on"
    )
    for recipient in _unique([person, *_granters(session, permissions)]):
        notices.notify_mandate(
            session,
            "mandate_ended",
            recipient,
            subject_person=person,
            employer=employer,
            lines=lambda lang: notices.permission_lines(permissions, lang),
            day=permissions[0].ends_on,
            dedupe_key=f"mandate_ended:permissions:{events[-1].id}:{recipient.id}",
            base_url=base_url,
            address=_address_at(session, recipient, employer.id),
        )


# ---- "Förläng": a new planned end in one action ------------------------------------------


def extend_administrator(
    session: Session,
    actor: m.Actor,
    grant_id: int,
    ends_on: date | None,
    *,
    reason: str = "",
    today: date | None = None,
) -> RoleGrant:
    """An orderer moves an administrator's planned end (None: until further notice)."""
    authority = actor.authority
    grant = m.administrator_grant(session, authority, grant_id)
    if grant.person_id == authority.person_id:
        raise m.Refused("own_role")
    if not authority.may_manage_administrator(
        grant.person_id, grant.is_all_codes, frozenset(c.id for c in grant.codes)
    ):
        raise m.Refused("scope_beyond_yours")
    check_end(ends_on, today)
    lock_employer(session, authority.employer_id)
    before, grant.ends_on = grant.ends_on, ends_on
    session.flush()
    event = m.audit(
        session,
        actor,
        "role_grant.end_changed",
        "role_grant",
        grant.id,
        person_id=grant.person_id,
        before=str(before) if before else None,
        after=str(ends_on) if ends_on else None,
        reason=reason,
    )
    _tell_extended(
        session,
        actor,
        grant.person,
        lambda lang: notices.role_lines(grant, lang),
        ends_on,
        f"mandate_extended:role:{event.id}",
        address=grant.contact_email,
    )
    return grant


def extend_permissions(
    session: Session,
    actor: m.Actor,
    person_id: int,
    ends_on: date | None,
    *,
    reason: str = "",
    today: date | None = None,
) -> list[ServicePermission]:
    """An administrator (or orderer) moves the planned end of all the user's time-limited
    permissions on the codes they cover, in one change and one email."""
    authority = actor.authority
    person = m.visible_person(session, authority, person_id)
    if not authority.may_change_permissions_of(person_id):
        raise m.Refused("own_permissions")
    check_end(ends_on, today)
    lock_employer(session, authority.employer_id)
    permissions = list(
        session.scalars(
            select(ServicePermission)
            .where(
                ServicePermission.person_id == person_id,
                ServicePermission.valid_to_dt.is_(None),
                ServicePermission.ends_on.is_not(None),
                ServicePermission.employer_code_id.in_(sorted(authority.covered_code_ids)),
            )
            .options(selectinload(ServicePermission.employer_code))
            .order_by(ServicePermission.id)
        )
    )
    if not permissions:
        raise m.Refused("nothing_time_limited")
    events = []
    for permission in permissions:
        before, permission.ends_on = permission.ends_on, ends_on
        events.append(
            m.audit(
                session,
                actor,
                "service_permission.end_changed",
                "service_permission",
                permission.id,
                person_id=person_id,
                service=permission.service.value,
                code=permission.employer_code.code,
                before=str(before),
                after=str(ends_on) if ends_on else None,
                reason=reason,
            )
        )
    session.flush()
    _tell_extended(
        session,
        actor,
        person,
        lambda lang: notices.permission_lines(permissions, lang),
        ends_on,
        f"mandate_extended:permissions:{events[-1].id}",
    )
    return permissions


def _tell_extended(
    session: Session,
    actor: m.Actor,
    person: Person,
    lines: Callable[[str], list[str]],
    ends_on: date | None,
    dedupe_key: str,
    address: str | None = None,
) -> None:
    by = session.get_one(Person, actor.authority.person_id)
    notices.notify_mandate(
        session,
        "mandate_extended",
        person,
        subject_person=person,
        employer=session.get_one(Employer, actor.authority.employer_id),
        lines=lines,
        day=ends_on,
        dedupe_key=dedupe_key,
        base_url=actor.base_url,
        address=address,
        extra={"actor": by.full_name, "reference": None},
    )


def proposed_extension(current: date | None, days: int, today: date | None = None) -> date:
    """What "Förläng" proposes: ``days`` after the current end (or after today)."""
    start = max(current or date.min, today or today_in_sweden())
    return start + timedelta(days=days)


__all__ = [
    "check_end",
    "end_due",
    "extend_administrator",
    "extend_permissions",
    "proposed_extension",
    "remind_before_end",
    "today_in_sweden",
]
