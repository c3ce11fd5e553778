"""Inactivity (rule 11): users not seen for a long time are marked, reviewed and removed.

A user not seen (no e-ID login) for ``INACTIVE_AFTER_MONTHS`` is marked inactive, for
``LONG_INACTIVE_AFTER_MONTHS`` marked red. An orderer or administrator may confirm that
the user still needs their permissions: that clears the mark for ``CONFIRMATION_MONTHS``.
``inactivity_mark`` decides, with neither Flask nor a database; the rest loads and acts.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from app.access.models import (
    ORDERER_ROLES,
    Employer,
    EmployerCode,
    InactivityConfirmation,
    Person,
    Role,
    RoleGrant,
    ServicePermission,
)
from app.audit.service import record_event
from app.core.agents import Agent
from app.db import utcnow
from app.notifications import notices
from app.notifications.models import EmailMessage

INACTIVE_AFTER_MONTHS = 12
LONG_INACTIVE_AFTER_MONTHS = 18
CONFIRMATION_MONTHS = 12
REVIEWER_ROLES = frozenset({*ORDERER_ROLES, Role.ADMINISTRATOR})
PER_PAGE = 100
"""Users a review page lists."""
SUMMARY_BATCH = 200
"""Employers summarised per run; the next run takes the rest."""


class Mark(enum.StrEnum):
    NONE = "none"
    INACTIVE = "inactive"
    """Not seen for ``INACTIVE_AFTER_MONTHS``: marked."""
    LONG_INACTIVE = "long_inactive"
    """Not seen for ``LONG_INACTIVE_AFTER_MONTHS``: marked red."""


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later (or earlier); the month's last day when the
    day does not exist there (29 February plus twelve months is 28 February)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def inactivity_mark(last_seen: datetime | None, confirmed: datetime | None, now: datetime) -> Mark:
    """A user's mark from their last login (or, never logged in, when they became a user),
    the latest "still needed" confirmation, and now. ``None`` for ``last_seen``: unknown,
    no mark. The months are counted back from ``now`` (as the database query counts)."""
    if last_seen is None:
        return Mark.NONE
    if confirmed is not None and confirmed > add_months(now, -CONFIRMATION_MONTHS):
        return Mark.NONE
    if last_seen <= add_months(now, -LONG_INACTIVE_AFTER_MONTHS):
        return Mark.LONG_INACTIVE
    if last_seen <= add_months(now, -INACTIVE_AFTER_MONTHS):
        return Mark.INACTIVE
    return Mark.NONE


class _Seen(Protocol):
    last_login_dt: datetime | None
    created_dt: datetime


def person_mark(person: _Seen, confirmed: datetime | None, now: datetime) -> Mark:
    """A user's mark (:func:`inactivity_mark`), seen last at their last login or, never
    logged in, when they became a person here (a ``Person``, or a row with those columns)."""
    return inactivity_mark(person.last_login_dt or person.created_dt, confirmed, now)


# ---- who reviews what ------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewScope:
    """What a reviewer (an orderer or administrator of the employer) may review there."""

    employer: Employer
    code_ids: frozenset[int] | None
    """The employer codes their roles cover; None: all of them."""


def reviewable_employers(session: Session, person_id: int) -> list[Employer]:
    """The employers where the person is an orderer (delegated or not) or administrator."""
    return list(
        session.scalars(
            select(Employer)
            .where(
                Employer.id.in_(
                    select(RoleGrant.employer_id).where(
                        RoleGrant.person_id == person_id,
                        RoleGrant.role.in_(REVIEWER_ROLES),
                        RoleGrant.valid_to_dt.is_(None),
                    )
                )
            )
            .order_by(Employer.name)
        )
    )


def review_scope(session: Session, person_id: int, employer_id: int) -> ReviewScope | None:
    """The person's scope at the employer; None when they hold no reviewing role there."""
    grants = list(
        session.scalars(
            select(RoleGrant)
            .where(
                RoleGrant.person_id == person_id,
                RoleGrant.employer_id == employer_id,
                RoleGrant.role.in_(REVIEWER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
            )
            .options(selectinload(RoleGrant.codes), selectinload(RoleGrant.employer))
        )
    )
    if not grants:
        return None
    if any(g.is_all_codes for g in grants):
        return ReviewScope(grants[0].employer, None)
    return ReviewScope(grants[0].employer, frozenset(c.id for g in grants for c in g.codes))


# ---- the users and their marks ---------------------------------------------------------


@dataclass(frozen=True)
class ReviewedUser:
    person_id: int
    name: str
    personnummer: str
    email: str | None
    last_login: datetime | None
    confirmed: datetime | None
    mark: Mark
    permissions: int
    """Active service permissions at the employer (within the reviewer's codes)."""


def _permission_filter(employer_id: int, code_ids: Collection[int] | None) -> list[object]:
    conditions: list[object] = [
        EmployerCode.employer_id == employer_id,
        ServicePermission.valid_to_dt.is_(None),
    ]
    if code_ids is not None:
        conditions.append(EmployerCode.id.in_(code_ids))
    return conditions


def _last_seen() -> ColumnElement[datetime]:
    """When a user was last seen, in the database: :func:`person_mark`'s date."""
    return func.coalesce(Person.last_login_dt, Person.created_dt)


def _confirmations(
    employer_id: int, person_ids: Collection[int] | None = None
) -> Select[int, datetime]:
    """Each person's latest "still needed" confirmation at the employer (``person_id``,
    ``confirmed_dt``), of ``person_ids`` when given."""
    only = [] if person_ids is None else [InactivityConfirmation.person_id.in_(person_ids)]
    return (
        select(
            InactivityConfirmation.person_id.label("person_id"),
            func.max(InactivityConfirmation.confirmed_dt).label("confirmed_dt"),
        )
        .where(InactivityConfirmation.employer_id == employer_id, *only)
        .group_by(InactivityConfirmation.person_id)
    )


def latest_confirmations(
    session: Session, employer_id: int, person_ids: Collection[int] | None = None
) -> dict[int, datetime]:
    """Each person's latest confirmation at the employer, by person id (of ``person_ids``)."""
    return dict(session.execute(_confirmations(employer_id, person_ids)).all())


def _users_query(
    employer_id: int,
    now: datetime,
    code_ids: Collection[int] | None,
    marked_only: bool,
    person_ids: Collection[int] | None = None,
) -> Select[Any]:
    # ``person_ids`` inside the groupings too: the planner does not carry a list through
    # the join, and would count every permission at the employer for a page of 50.
    only_permissions = [] if person_ids is None else [ServicePermission.person_id.in_(person_ids)]
    holders = (
        select(
            ServicePermission.person_id.label("person_id"),
            func.count(ServicePermission.id).label("permissions"),
        )
        .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
        .where(*_permission_filter(employer_id, code_ids), *only_permissions)  # type: ignore[arg-type]
        .group_by(ServicePermission.person_id)
        .subquery()
    )
    confirmed = _confirmations(employer_id, person_ids).subquery()
    last_seen = _last_seen()
    query = (
        select(
            Person.id,
            Person.given_name,
            Person.family_name,
            Person.personnummer,
            Person.email,
            Person.last_login_dt,
            Person.created_dt,
            holders.c.permissions,
            confirmed.c.confirmed_dt,
        )
        .join(holders, holders.c.person_id == Person.id)
        .outerjoin(confirmed, confirmed.c.person_id == Person.id)
        .order_by(last_seen, Person.id)
    )
    if person_ids is not None:
        query = query.where(Person.id.in_(person_ids))
    if marked_only:
        query = query.where(marked(last_seen, confirmed.c.confirmed_dt, now))
    return query


def marked(last_seen: Any, confirmed_dt: Any, now: datetime) -> ColumnElement[bool]:
    """The same as :func:`inactivity_mark` (any mark), as a condition in the database."""
    return and_(
        last_seen <= add_months(now, -INACTIVE_AFTER_MONTHS),
        or_(confirmed_dt.is_(None), confirmed_dt <= add_months(now, -CONFIRMATION_MONTHS)),
    )


@dataclass(frozen=True)
class EmployerInactivity:
    employer_id: int
    users: int
    """People with an active service permission at the employer."""
    inactive: int
    """Of them, those marked inactive (any mark)."""


def inactivity_by_employer(
    session: Session, *, minimum: int, now: datetime | None = None
) -> list[EmployerInactivity]:
    """Employers with at least ``minimum`` users marked inactive, most first (SPV's
    overview: employers to contact before their users are removed)."""
    now = now or utcnow()
    holders = (
        select(EmployerCode.employer_id, ServicePermission.person_id)
        .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
        .where(ServicePermission.valid_to_dt.is_(None))
        .distinct()
        .subquery()
    )
    confirmed = (
        select(
            InactivityConfirmation.employer_id,
            InactivityConfirmation.person_id,
            func.max(InactivityConfirmation.confirmed_dt).label("confirmed_dt"),
        )
        .group_by(InactivityConfirmation.employer_id, InactivityConfirmation.person_id)
        .subquery()
    )
    last_seen = _last_seen()
    inactive = func.sum(case((marked(last_seen, confirmed.c.confirmed_dt, now), 1), else_=0))
    query = (
        select(holders.c.employer_id, func.count().label("users"), inactive.label("inactive"))
        .select_from(holders)
        .join(Person, Person.id == holders.c.person_id)
        .outerjoin(
            confirmed,
            and_(
                confirmed.c.employer_id == holders.c.employer_id,
                confirmed.c.person_id == holders.c.person_id,
            ),
        )
        .group_by(holders.c.employer_id)
        .having(inactive >= max(minimum, 1))
        .order_by(inactive.desc(), holders.c.employer_id)
    )
    return [
        EmployerInactivity(row.employer_id, row.users, row.inactive)
        for row in session.execute(query)
    ]


def users_with_marks(
    session: Session,
    employer_id: int,
    *,
    now: datetime | None = None,
    code_ids: Collection[int] | None = None,
    marked_only: bool = False,
    page: int | None = None,
    per_page: int = PER_PAGE,
    person_ids: Collection[int] | None = None,
) -> list[ReviewedUser]:
    """Everyone with an active service permission at the employer (at ``code_ids`` when
    given), with their mark; only the marked ones when ``marked_only``, only ``person_ids``
    when given; one ``page`` (from 1) of ``per_page`` when given. Longest unseen first."""
    now = now or utcnow()
    query = _users_query(employer_id, now, code_ids, marked_only, person_ids)
    if page is not None:
        query = query.limit(per_page).offset((max(page, 1) - 1) * per_page)
    return [
        ReviewedUser(
            person_id=row.id,
            name=f"{row.given_name} {row.family_name}",
            personnummer=row.personnummer,
            email=row.email,
            last_login=row.last_login_dt,
            confirmed=row.confirmed_dt,
            mark=person_mark(row, row.confirmed_dt, now),
            permissions=row.permissions,
        )
        for row in session.execute(query)
    ]


def marks_of(
    session: Session, employer_id: int, persons: Iterable[Person], now: datetime | None = None
) -> dict[int, Mark]:
    """The mark of each of ``persons`` (users at the employer, already loaded), by person id:
    :func:`users_with_marks`' mark, with one query for their confirmations alone."""
    now = now or utcnow()
    found = {p.id: p for p in persons}
    if not found:
        return {}
    confirmed = latest_confirmations(session, employer_id, list(found))
    return {pid: person_mark(p, confirmed.get(pid), now) for pid, p in found.items()}


def count_users(
    session: Session,
    employer_id: int,
    *,
    now: datetime | None = None,
    code_ids: Collection[int] | None = None,
    marked_only: bool = False,
) -> int:
    """How many :func:`users_with_marks` lists (for paging)."""
    query = _users_query(employer_id, now or utcnow(), code_ids, marked_only).order_by(None)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


# ---- the reviewer's actions ------------------------------------------------------------


class NotYourOwn(Exception):
    """Nobody changes or confirms their own permissions."""


class NotAUser(Exception):
    """The person holds no permission within the reviewer's scope at the employer."""


def _check_subjects(
    session: Session,
    agent: Agent,
    employer_id: int,
    person_ids: Iterable[int],
    code_ids: Collection[int] | None,
) -> list[int]:
    wanted = sorted(set(person_ids))
    if agent.id in wanted:
        raise NotYourOwn()
    holders = set(
        session.scalars(
            select(ServicePermission.person_id)
            .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
            .where(
                ServicePermission.person_id.in_(wanted),
                *_permission_filter(employer_id, code_ids),  # type: ignore[arg-type]
            )
        )
    )
    if set(wanted) - holders:
        raise NotAUser()
    return wanted


def confirm_still_needed(
    session: Session,
    agent: Agent,
    employer_id: int,
    person_ids: Iterable[int],
    *,
    code_ids: Collection[int] | None = None,
) -> int:
    """Record (and audit) that the users still need their permissions: their marks are
    cleared for ``CONFIRMATION_MONTHS``. Returns how many were confirmed."""
    assert agent.id is not None
    confirmed = _check_subjects(session, agent, employer_id, person_ids, code_ids)
    for person_id in confirmed:
        confirmation = InactivityConfirmation(
            employer_id=employer_id, person_id=person_id, confirmed_by_person_id=agent.id
        )
        session.add(confirmation)
        session.flush()
        record_event(
            session,
            actor=agent.audit_label,
            action="inactivity.confirmed",
            object_type="inactivity_confirmation",
            object_id=confirmation.id,
            data={"employer_id": employer_id, "person_id": person_id},
        )
    return len(confirmed)


# ---- the monthly summary ---------------------------------------------------------------


def summary_month(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def _summary_recipients(session: Session, employer_id: int) -> list[RoleGrant]:
    """The employer's administrators; its orderers when it has none."""
    grants = list(
        session.scalars(
            select(RoleGrant)
            .where(
                RoleGrant.employer_id == employer_id,
                RoleGrant.role.in_(REVIEWER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
            )
            .options(selectinload(RoleGrant.person), selectinload(RoleGrant.codes))
            .order_by(RoleGrant.id)
        )
    )
    administrators = [g for g in grants if g.role is Role.ADMINISTRATOR]
    return administrators or [g for g in grants if g.role in ORDERER_ROLES]


def _employers_to_summarise(session: Session, now: datetime) -> list[Employer]:
    """Employers with a user unseen long enough, not yet summarised this month; those
    another run holds are skipped."""
    threshold = add_months(now, -INACTIVE_AFTER_MONTHS)
    recently_confirmed = select(InactivityConfirmation.id).where(
        InactivityConfirmation.employer_id == EmployerCode.employer_id,
        InactivityConfirmation.person_id == Person.id,
        InactivityConfirmation.confirmed_dt > add_months(now, -CONFIRMATION_MONTHS),
    )
    with_unseen = (
        select(EmployerCode.employer_id)
        .join(ServicePermission, ServicePermission.employer_code_id == EmployerCode.id)
        .join(Person, Person.id == ServicePermission.person_id)
        .where(
            ServicePermission.valid_to_dt.is_(None),
            _last_seen() <= threshold,
            ~recently_confirmed.exists(),
        )
    )
    with_reviewers = select(RoleGrant.employer_id).where(
        RoleGrant.role.in_(REVIEWER_ROLES), RoleGrant.valid_to_dt.is_(None)
    )
    summarised = select(EmailMessage.id).where(
        EmailMessage.dedupe_key.like(
            "inactivity_summary:" + cast(Employer.id, String) + f":{summary_month(now)}:%"
        )
    )
    return list(
        session.scalars(
            select(Employer)
            .where(
                Employer.id.in_(with_unseen),
                Employer.id.in_(with_reviewers),
                ~summarised.exists(),
            )
            .order_by(Employer.id)
            .limit(SUMMARY_BATCH)
            .with_for_update(skip_locked=True)
        )
    )


def send_inactivity_summaries(
    session: Session, now: datetime | None = None, *, base_url: str
) -> int:
    """Email each employer's administrators (its orderers if it has none) the month's
    summary of inactive users in their codes; once per employer, recipient and month.
    Safe to run anywhere at once. Returns how many emails were queued."""
    now = now or utcnow()
    month = summary_month(now)
    queued = 0
    for employer in _employers_to_summarise(session, now):
        for grant in _summary_recipients(session, employer.id):
            code_ids = None if grant.is_all_codes else [c.id for c in grant.codes]
            users = users_with_marks(
                session, employer.id, now=now, code_ids=code_ids, marked_only=True
            )
            email = notices.notify_inactivity_summary(
                session, grant, users, month=month, base_url=base_url
            )
            queued += email is not None
    session.flush()
    return queued
