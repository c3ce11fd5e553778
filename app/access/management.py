"""Hantera behörigheter: the overview, and every change an orderer or an administrator
makes at the employer they chose. Plain functions: a session, the acting person's
``Authority`` (what they may do here, ``app.access.authority``), no Flask.

Every change is one transaction with one audit event (who, what, why; the event has
when) and the emails it causes, queued through the outbox (rule 5). A person, code,
grant or request outside the actor's employer and codes is ``NotFound``, as if it did
not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from app.access import changelog
from app.access.authority import Authority
from app.access.models import (
    ORDERER_ROLES,
    ChangeAction,
    CodeStatus,
    Employer,
    EmployerCode,
    PermissionRequest,
    Person,
    RequestOutcome,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.access.service import (
    active_grants,
    end_grant,
    end_permissions,
    find_person,
    lock_employer,
)
from app.audit.models import AuditEvent
from app.audit.service import record_event
from app.core.i18n import swedish_time
from app.core.ids import InvalidIdNumber, normalise_personnummer
from app.core.text import has_unsafe_characters, without_unsafe_characters
from app.db import utcnow
from app.notifications import notices
from app.registrations.models import Errand

Permission = tuple[SelfService, int]
"""A service at an employer code (by the code's id)."""


class NotFound(LookupError):
    """Not at this employer, or not within the actor's codes: shown as 404."""


class Refused(Exception):
    """A rule forbids the change; ``code`` names which (the page says it in words)."""

    def __init__(self, code: str, field: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.field = field


# ---- the employer context --------------------------------------------------------------


def authority_at(session: Session, person_id: int, employer_id: int) -> Authority:
    """What ``person_id`` may do at ``employer_id``; ``NotFound`` if they have nothing there."""
    if session.get(Employer, employer_id) is None:
        raise NotFound
    grants = list(
        session.scalars(
            select(RoleGrant)
            .where(
                RoleGrant.person_id == person_id,
                RoleGrant.employer_id == employer_id,
                RoleGrant.valid_to_dt.is_(None),
            )
            .options(selectinload(RoleGrant.codes))
        )
    )
    codes = session.scalars(select(EmployerCode).where(EmployerCode.employer_id == employer_id))
    return _authority(session, person_id, employer_id, grants, list(codes))


@dataclass(frozen=True)
class EmployerContext:
    """The employer chosen as its overview shows it, read once: the signed-in person's
    authority there, the employer's codes (in code order) and its active role grants
    (``access.service.active_grants``: with their persons and codes)."""

    authority: Authority
    codes: list[EmployerCode]
    grants: list[RoleGrant]


def employer_context(session: Session, person_id: int, employer_id: int) -> EmployerContext:
    """:func:`authority_at` with the employer's codes and grants it is made from."""
    if session.get(Employer, employer_id) is None:
        raise NotFound
    grants = active_grants(session, employer_id)
    codes = employer_codes(session, employer_id)
    own = [g for g in grants if g.person_id == person_id]
    return EmployerContext(_authority(session, person_id, employer_id, own, codes), codes, grants)


def _authority(
    session: Session,
    person_id: int,
    employer_id: int,
    grants: list[RoleGrant],
    codes: list[EmployerCode],
) -> Authority:
    """The authority the person's active ``grants`` at the employer give, over its
    ``codes``; ``NotFound`` if they have neither a grant nor a permission there."""
    if not grants and not _holds_permission_at(session, person_id, employer_id):
        raise NotFound
    return Authority(
        person_id=person_id,
        employer_id=employer_id,
        roles=frozenset(g.role for g in grants),
        all_codes=any(g.is_all_codes for g in grants),
        explicit_code_ids=frozenset(c.id for g in grants for c in g.codes),
        employer_code_ids=frozenset(c.id for c in codes),
        closed_code_ids=frozenset(c.id for c in codes if c.status is CodeStatus.CLOSED),
    )


def _holds_permission_at(session: Session, person_id: int, employer_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    ServicePermission.person_id == person_id,
                    ServicePermission.valid_to_dt.is_(None),
                    ServicePermission.employer_code_id == EmployerCode.id,
                    EmployerCode.employer_id == employer_id,
                )
            )
        )
    )


def employer_codes(session: Session, employer_id: int) -> list[EmployerCode]:
    return list(
        session.scalars(
            select(EmployerCode)
            .where(EmployerCode.employer_id == employer_id)
            .order_by(EmployerCode.code)
        )
    )


# ---- the overview ----------------------------------------------------------------------

SORTS = ("name", "personnummer")
PAGE_SIZE = 50


@dataclass(frozen=True)
class OverviewQuery:
    search: str = ""
    """Part of a name, or a personnummer (10 or 12 digits, with or without a dash)."""
    service: SelfService | None = None
    code_id: int | None = None
    inactive_before: datetime | None = None
    """Only users whose last e-ID login (if any) is before this."""
    sort: str = "name"
    page: int = 1
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class PermissionRow:
    id: int
    service: SelfService
    code_id: int
    code: str
    is_closed_code: bool
    ends_on: date | None = None
    """The planned end of a time-limited permission (``app.access.mandates``)."""


@dataclass
class UserRow:
    person: Person
    permissions: list[PermissionRow] = field(default_factory=list)


@dataclass(frozen=True)
class OverviewPage:
    rows: list[UserRow]
    page: int
    has_next: bool


def _visible_permission(authority: Authority, query: OverviewQuery | None = None) -> Any:
    """An active permission on one of the codes the actor covers (and the query's filters)."""
    conditions: list[ColumnElement[bool]] = [
        ServicePermission.valid_to_dt.is_(None),
        ServicePermission.employer_code_id.in_(sorted(authority.covered_code_ids)),
    ]
    if query is not None and query.service is not None:
        conditions.append(ServicePermission.service == query.service)
    if query is not None and query.code_id is not None:
        conditions.append(ServicePermission.employer_code_id == query.code_id)
    return and_(*conditions)


def overview(session: Session, authority: Authority, query: OverviewQuery) -> OverviewPage:
    """One page of the users with a permission on the codes the actor covers, each with
    those permissions: two queries, whatever the page holds."""
    if not authority.manages_permissions:
        raise NotFound
    persons = select(Person).where(
        exists().where(
            ServicePermission.person_id == Person.id, _visible_permission(authority, query)
        )
    )
    search = query.search.strip()
    if search:
        persons = persons.where(_search_condition(search))
    if query.inactive_before is not None:
        persons = persons.where(
            or_(Person.last_login_dt.is_(None), Person.last_login_dt < query.inactive_before)
        )
    order = (
        (Person.personnummer,)
        if query.sort == "personnummer"
        else (Person.family_name, Person.given_name, Person.id)
    )
    page = max(query.page, 1)
    found = list(
        session.scalars(
            persons.order_by(*order).limit(query.page_size + 1).offset((page - 1) * query.page_size)
        )
    )
    rows = {p.id: UserRow(p) for p in found[: query.page_size]}
    for permission, code in session.execute(
        select(ServicePermission, EmployerCode)
        .join(EmployerCode, ServicePermission.employer_code_id == EmployerCode.id)
        .where(ServicePermission.person_id.in_(list(rows)), _visible_permission(authority))
        .order_by(EmployerCode.code, ServicePermission.service)
    ):
        rows[permission.person_id].permissions.append(_row(permission, code))
    return OverviewPage(list(rows.values()), page, len(found) > query.page_size)


def _search_condition(search: str) -> Any:
    search = without_unsafe_characters(search)
    try:
        return Person.personnummer == normalise_personnummer(search)
    except InvalidIdNumber:
        pass
    digits = search.replace("-", "")
    if digits.isdigit():
        return Person.personnummer.contains(digits, autoescape=True)
    full_name = func.lower(Person.given_name + " " + Person.family_name)
    return full_name.contains(search.lower(), autoescape=True)


def _row(permission: ServicePermission, code: EmployerCode) -> PermissionRow:
    return PermissionRow(
        permission.id,
        permission.service,
        code.id,
        code.code,
        code.status is CodeStatus.CLOSED,
        permission.ends_on,
    )


def visible_person(session: Session, authority: Authority, person_id: int) -> Person:
    """A user with a permission on the actor's codes, or a role holder here; else NotFound."""
    if not authority.manages_permissions:
        raise NotFound
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound
    has_role_here = session.scalar(
        select(
            exists().where(
                RoleGrant.person_id == person_id,
                RoleGrant.employer_id == authority.employer_id,
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    )
    if not has_role_here and not session.scalar(
        select(
            exists().where(ServicePermission.person_id == person_id, _visible_permission(authority))
        )
    ):
        raise NotFound
    return person


def permissions_of(
    session: Session, person_id: int, code_ids: Iterable[int]
) -> list[PermissionRow]:
    """The person's active permissions on ``code_ids``."""
    return [
        _row(permission, code)
        for permission, code in session.execute(
            select(ServicePermission, EmployerCode)
            .join(EmployerCode, ServicePermission.employer_code_id == EmployerCode.id)
            .where(
                ServicePermission.person_id == person_id,
                ServicePermission.valid_to_dt.is_(None),
                ServicePermission.employer_code_id.in_(sorted(code_ids)),
            )
            .order_by(EmployerCode.code, ServicePermission.service)
        )
    ]


def my_permissions(session: Session, authority: Authority) -> list[PermissionRow]:
    """The signed-in person's own permissions at the employer (rule 3's user view)."""
    return permissions_of(session, authority.person_id, authority.employer_code_ids)


# ---- a person's details ------------------------------------------------------------------


@dataclass(frozen=True)
class NewPerson:
    personnummer: str
    given_name: str
    family_name: str
    email: str


def check_person(personnummer: str, given_name: str, family_name: str, email: str) -> NewPerson:
    """The details of a person to add, normalised; ``Refused`` names the first bad field.

    Names and addresses hold no control or bidirectional-override characters (they end up
    in emails and on other people's pages)."""
    try:
        number = normalise_personnummer(personnummer)
    except InvalidIdNumber:
        raise Refused("invalid_personnummer", "personnummer") from None
    names = {"given_name": given_name.strip(), "family_name": family_name.strip()}
    for name_field, value in names.items():
        if not value or len(value) > 100 or has_unsafe_characters(value):
            raise Refused("invalid_name", name_field)
    if has_unsafe_characters(email):
        raise Refused("invalid_email", "email")
    try:
        address = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise Refused("invalid_email", "email") from None
    return NewPerson(number, names["given_name"], names["family_name"], address)


def person_for(session: Session, details: NewPerson) -> Person:
    """The person with this personnummer (their email filled in if missing), or a new one."""
    person = find_person(session, details.personnummer)
    if person is None:
        person = Person(
            personnummer=details.personnummer,
            given_name=details.given_name,
            family_name=details.family_name,
            email=details.email,
        )
        session.add(person)
        session.flush()
    elif not person.email:
        person.email = details.email
    return person


# ---- users' permissions ------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts: their authority at the employer, and the public address for the emails."""

    authority: Authority
    base_url: str
    system: str = ""
    """Not a person but SPV's rules (the recurring review ending what nobody confirmed):
    the component, audited as ``system:<component>``; the emails name no person."""

    @property
    def audit_label(self) -> str:
        return f"system:{self.system}" if self.system else f"person:{self.authority.person_id}"

    def person(self, session: Session) -> Person | None:
        """The person who acts (named in the emails); None for the system."""
        return None if self.system else session.get_one(Person, self.authority.person_id)


NOBODY = 0
"""The person id of a system actor's authority: no person has it."""

REVIEW_CAMPAIGN = "review_campaign"
"""The recurring review's component (``app.access.campaigns``): what it ends, the emails
say the review ended."""


def system_actor(session: Session, employer_id: int, component: str, base_url: str) -> Actor:
    """SPV's rules acting at the employer: an orderer's reach over all its codes, held by
    nobody (so nobody's own permissions are spared)."""
    codes = employer_codes(session, employer_id)
    authority = Authority(
        person_id=NOBODY,
        employer_id=employer_id,
        roles=frozenset({Role.ORDERER}),
        all_codes=True,
        explicit_code_ids=frozenset(),
        employer_code_ids=frozenset(c.id for c in codes),
        closed_code_ids=frozenset(c.id for c in codes if c.status is CodeStatus.CLOSED),
    )
    return Actor(authority, base_url, system=component)


def _audit(
    session: Session, actor: Actor, action: str, object_type: str, object_id: int, **data: Any
) -> AuditEvent:
    return record_event(
        session,
        actor=actor.audit_label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data={"employer_id": actor.authority.employer_id, **data},
    )


def _codes_by_id(session: Session, code_ids: Iterable[int]) -> dict[int, EmployerCode]:
    ids = sorted(set(code_ids))
    return {c.id: c for c in session.scalars(select(EmployerCode).where(EmployerCode.id.in_(ids)))}


def change_permissions(
    session: Session,
    actor: Actor,
    person_id: int,
    *,
    grant: Iterable[Permission] = (),
    revoke: Iterable[Permission] = (),
    reason: str = "",
    ends_on: date | None = None,
) -> tuple[list[Permission], list[Permission]]:
    """Grant and end a user's permissions in one audited change with one email.

    Each permission must be on a code the actor covers; a closed code allows only
    invoices; nobody changes their own. Already granted (or already absent) ones are
    skipped. ``ends_on``: the granted ones are time-limited, ended on that day (a day
    after today; ``app.access.mandates``). Returns what was granted and what was ended."""
    authority = actor.authority
    wanted, unwanted = set(grant), set(revoke)
    if not authority.manages_permissions:
        raise NotFound
    for _service, code_id in wanted | unwanted:
        if not authority.covers(code_id):
            raise NotFound
    if not authority.may_change_permissions_of(person_id):
        raise Refused("own_permissions")
    for service, code_id in wanted:
        if not authority.may_grant(person_id, code_id, service):
            raise Refused("closed_code")
    check_end(ends_on)
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound
    lock_employer(session, authority.employer_id)
    active = {
        (p.service, p.employer_code_id): p
        for p in session.scalars(
            select(ServicePermission).where(
                ServicePermission.person_id == person_id,
                ServicePermission.valid_to_dt.is_(None),
                ServicePermission.employer_code_id.in_(sorted(authority.employer_code_ids)),
            )
        )
    }
    granted = sorted((wanted - unwanted) - set(active))
    ended = sorted(unwanted & set(active))
    if not granted and not ended:
        return [], []
    now = utcnow()
    new = [
        ServicePermission(
            person_id=person_id,
            employer_code_id=code_id,
            service=service,
            granted_by_person_id=authority.person_id,
            valid_from_dt=now,
            ends_on=ends_on,
        )
        for service, code_id in granted
    ]
    if new:
        session.add_all(new)
        session.flush()
        changelog.service_permissions_changed(session, new, [])
    codes = _codes_by_id(session, [c for _, c in granted + ended])
    # One event per permission, on the permission (the employer's history export reads them).
    events = [
        _audit(
            session,
            actor,
            "service_permission.created",
            "service_permission",
            permission.id,
            person_id=person_id,
            service=permission.service.value,
            code=codes[permission.employer_code_id].code,
            reason=reason,
            **({"ends_on": str(permission.ends_on)} if permission.ends_on else {}),
        )
        for permission in new
    ]
    events += end_permissions(
        session,
        actor.audit_label,
        [active[key] for key in ended],
        now=now,
        employer_id=actor.authority.employer_id,
        reason=reason,
    )
    event = events[-1]
    notices.notify_permissions_changed(
        session,
        person,
        session.get_one(Employer, authority.employer_id),
        granted=[(s, codes[c]) for s, c in granted],
        revoked=[(s, codes[c]) for s, c in ended],
        by=actor.person(session),
        change_id=event.id,
        base_url=actor.base_url,
        reason=reason,
    )
    return granted, ended


def add_user(
    session: Session,
    actor: Actor,
    details: NewPerson,
    grant: Iterable[Permission],
    reason: str = "",
    ends_on: date | None = None,
) -> Person:
    """Add a user (an existing person by personnummer, or a new one) with permissions
    (time-limited when ``ends_on`` is given)."""
    wanted = set(grant)
    if not wanted:
        raise Refused("no_permission_chosen", "permissions")
    for _, code_id in wanted:
        if not actor.authority.covers(code_id):
            raise NotFound
    person = person_for(session, details)
    change_permissions(session, actor, person.id, grant=wanted, reason=reason, ends_on=ends_on)
    return person


def remove_all_permissions(
    session: Session, actor: Actor, person_id: int, reason: str = ""
) -> list[Permission]:
    """ "Ta bort alla behörigheter för den här personen": every permission on the codes the
    actor covers, in one change and one email. Returns what was ended."""
    current = permissions_of(session, person_id, actor.authority.covered_code_ids)
    _, ended = change_permissions(
        session, actor, person_id, revoke=[(p.service, p.code_id) for p in current], reason=reason
    )
    return ended


# ---- administrators ----------------------------------------------------------------------


@dataclass(frozen=True)
class RoleHolderRow:
    grant: RoleGrant
    appointed_by: Person | None


def role_holders(session: Session, grants: list[RoleGrant]) -> list[RoleHolderRow]:
    """The employer's orderers, delegated orderers and administrators (its active grants,
    ``access.service.active_grants``, which loads their persons: read here without a
    query each), with who appointed each (an administrator) or who submitted the
    registration (an orderer)."""
    errand_ids = [g.source_errand_id for g in grants if g.source_errand_id is not None]
    submitters: dict[int, Person] = {
        errand_id: person
        for errand_id, person in session.execute(
            select(Errand.id, Person)
            .join(Person, Errand.submitted_by_id == Person.id)
            .where(Errand.id.in_(errand_ids))
        )
    }
    # Appointers are mostly the employer's own role holders, already loaded with the grants.
    appointers = {g.person.id: g.person for g in grants}
    missing = {g.granted_by_person_id for g in grants} - appointers.keys() - {None}
    if missing:
        found = session.scalars(select(Person).where(Person.id.in_(missing)))
        appointers |= {p.id: p for p in found}
    return [
        RoleHolderRow(
            g,
            appointers.get(g.granted_by_person_id or 0)
            or (submitters.get(g.source_errand_id) if g.source_errand_id else None),
        )
        for g in grants
    ]


def _administrator_grant(session: Session, authority: Authority, grant_id: int) -> RoleGrant:
    grant = session.get(RoleGrant, grant_id)
    if (
        grant is None
        or grant.employer_id != authority.employer_id
        or grant.valid_to_dt is not None
        or not authority.manages_administrators
    ):
        raise NotFound
    if grant.role in ORDERER_ROLES:
        # Orderers are removed with the removal form (rules 7 and 8), never here.
        raise Refused("orderer_not_here")
    return grant


def _check_scope(authority: Authority, person_id: int, all_codes: bool, code_ids: set[int]) -> None:
    for code_id in code_ids:
        if code_id not in authority.employer_code_ids:
            raise NotFound
    if not all_codes and not code_ids:
        raise Refused("no_code_chosen", "codes")
    if person_id == authority.person_id:
        raise Refused("own_role")
    if not authority.may_manage_administrator(person_id, all_codes, frozenset(code_ids)):
        raise Refused("scope_beyond_yours", "codes")


def appoint_administrator(
    session: Session,
    actor: Actor,
    details: NewPerson,
    *,
    all_codes: bool,
    code_ids: Iterable[int] = (),
    reason: str = "",
    ends_on: date | None = None,
) -> RoleGrant:
    """An orderer appoints an administrator for all the employer's codes or a chosen set,
    until further notice or until ``ends_on`` (a day after today)."""
    authority = actor.authority
    if not authority.manages_administrators:
        raise NotFound
    check_end(ends_on)
    chosen = set() if all_codes else set(code_ids)
    existing = find_person(session, details.personnummer)
    _check_scope(authority, existing.id if existing else -1, all_codes, chosen)
    lock_employer(session, authority.employer_id)
    person = person_for(session, details)
    if session.scalar(
        select(
            exists().where(
                RoleGrant.person_id == person.id,
                RoleGrant.employer_id == authority.employer_id,
                RoleGrant.role == Role.ADMINISTRATOR,
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    ):
        raise Refused("already_administrator", "personnummer")
    grant = RoleGrant(
        person_id=person.id,
        employer_id=authority.employer_id,
        role=Role.ADMINISTRATOR,
        is_all_codes=all_codes,
        contact_email=details.email,
        granted_by_person_id=authority.person_id,
        ends_on=ends_on,
    )
    grant.codes = list(_codes_by_id(session, chosen).values())
    session.add(grant)
    session.flush()
    changelog.role_changed(session, grant, ChangeAction.GRANTED)
    _audit(
        session,
        actor,
        "role_grant.created",
        "role_grant",
        grant.id,
        person_id=person.id,
        role=Role.ADMINISTRATOR.value,
        codes=sorted(chosen) or "all",
        reason=reason,
        **({"ends_on": str(ends_on)} if ends_on else {}),
    )
    session.refresh(grant)
    notices.notify_role_granted(
        session, grant, base_url=actor.base_url, by=session.get_one(Person, authority.person_id)
    )
    return grant


def change_administrator_scope(
    session: Session,
    actor: Actor,
    grant_id: int,
    *,
    all_codes: bool,
    code_ids: Iterable[int] = (),
    reason: str = "",
) -> RoleGrant:
    """Change which codes an administrator covers (within the orderer's own)."""
    authority = actor.authority
    grant = _administrator_grant(session, authority, grant_id)
    chosen = set() if all_codes else set(code_ids)
    _check_scope(authority, grant.person_id, all_codes, chosen)
    if not authority.may_manage_administrator(
        grant.person_id, grant.is_all_codes, frozenset(c.id for c in grant.codes)
    ):
        raise Refused("scope_beyond_yours", "codes")
    lock_employer(session, authority.employer_id)
    before = sorted(c.id for c in grant.codes) or "all"
    grant.is_all_codes = all_codes
    grant.codes = list(_codes_by_id(session, chosen).values())
    session.flush()
    changelog.role_changed(session, grant, ChangeAction.CHANGED)
    event = _audit(
        session,
        actor,
        "role_grant.scope_changed",
        "role_grant",
        grant.id,
        person_id=grant.person_id,
        before=before,
        after=sorted(chosen) or "all",
        reason=reason,
    )
    notices.notify_role_changed(
        session,
        grant,
        base_url=actor.base_url,
        by=session.get_one(Person, authority.person_id),
        change_id=event.id,
    )
    return grant


def remove_administrator(session: Session, actor: Actor, grant_id: int, reason: str = "") -> None:
    """End an administrator's role (their users' permissions stay)."""
    authority = actor.authority
    grant = _administrator_grant(session, authority, grant_id)
    if grant.person_id == authority.person_id:
        raise Refused("own_role")
    if not authority.may_manage_administrator(
        grant.person_id, grant.is_all_codes, frozenset(c.id for c in grant.codes)
    ):
        raise Refused("scope_beyond_yours")
    lock_employer(session, authority.employer_id)
    end_grant(
        session,
        actor.audit_label,
        grant,
        employer_id=authority.employer_id,
        person_id=grant.person_id,
        role=grant.role.value,
        reason=reason,
    )
    notices.notify_role_ended(
        session,
        grant,
        base_url=actor.base_url,
        by=actor.person(session),
        review=actor.system == REVIEW_CAMPAIGN,
    )


# ---- requests for a permission -----------------------------------------------------------


def request_permission(
    session: Session, actor: Actor, code_id: int, service: SelfService, message: str = ""
) -> PermissionRequest:
    """ "Be om behörighet": a user asks the administrators for a permission; they are emailed."""
    authority = actor.authority
    if code_id not in authority.employer_code_ids:
        raise NotFound
    if not authority.service_allowed(code_id, service):
        raise Refused("closed_code", "service")
    if has_unsafe_characters(message, multiline=True):
        raise Refused("invalid_text", "message")
    current = {(p.service, p.code_id) for p in my_permissions(session, authority)}
    if (service, code_id) in current:
        raise Refused("already_granted", "service")
    if session.scalar(
        select(
            exists().where(
                PermissionRequest.person_id == authority.person_id,
                PermissionRequest.employer_code_id == code_id,
                PermissionRequest.service == service,
                PermissionRequest.decided_dt.is_(None),
            )
        )
    ):
        raise Refused("already_requested", "service")
    request = PermissionRequest(
        person_id=authority.person_id,
        employer_id=authority.employer_id,
        employer_code_id=code_id,
        service=service,
        message=message.strip()[:500],
    )
    session.add(request)
    session.flush()
    _audit(
        session,
        actor,
        "permission_request.created",
        "permission_request",
        request.id,
        service=service.value,
        code_id=code_id,
    )
    session.refresh(request)
    notices.notify_permission_requested(
        session,
        request,
        _deciders(session, authority.employer_id, code_id),
        base_url=actor.base_url,
    )
    return request


def _deciders(session: Session, employer_id: int, code_id: int) -> list[tuple[Person, str]]:
    """The administrators covering ``code_id`` (the orderers if there are none), once each."""
    grants = list(
        session.scalars(
            select(RoleGrant)
            .where(RoleGrant.employer_id == employer_id, RoleGrant.valid_to_dt.is_(None))
            .options(selectinload(RoleGrant.person), selectinload(RoleGrant.codes))
            .order_by(RoleGrant.id)
        )
    )
    covering = [g for g in grants if g.is_all_codes or code_id in {c.id for c in g.codes}]
    chosen = [g for g in covering if g.role is Role.ADMINISTRATOR] or covering
    seen: dict[int, tuple[Person, str]] = {}
    for grant in chosen:
        address = grant.contact_email or grant.person.email
        if address and grant.person_id not in seen:
            seen[grant.person_id] = (grant.person, address)
    return list(seen.values())


def _pending_for(authority: Authority) -> list[ColumnElement[bool]]:
    """Undecided requests on the codes the actor covers (not their own)."""
    return [
        PermissionRequest.employer_id == authority.employer_id,
        PermissionRequest.decided_dt.is_(None),
        PermissionRequest.employer_code_id.in_(sorted(authority.covered_code_ids)),
        PermissionRequest.person_id != authority.person_id,
    ]


def pending_request_count(session: Session, authority: Authority) -> int:
    """How many :func:`pending_requests` there are, counted by the database."""
    if not authority.manages_permissions:
        return 0
    query = select(func.count()).select_from(PermissionRequest).where(*_pending_for(authority))
    return session.scalar(query) or 0


def pending_requests(session: Session, authority: Authority) -> list[PermissionRequest]:
    """Undecided requests on the codes the actor covers (not their own)."""
    if not authority.manages_permissions:
        return []
    return list(
        session.scalars(
            select(PermissionRequest)
            .where(*_pending_for(authority))
            .options(
                selectinload(PermissionRequest.person),
                selectinload(PermissionRequest.employer_code),
            )
            .order_by(PermissionRequest.created_dt)
        )
    )


def my_requests(session: Session, authority: Authority) -> list[PermissionRequest]:
    return list(
        session.scalars(
            select(PermissionRequest)
            .where(
                PermissionRequest.employer_id == authority.employer_id,
                PermissionRequest.person_id == authority.person_id,
                PermissionRequest.decided_dt.is_(None),
            )
            .options(selectinload(PermissionRequest.employer_code))
            .order_by(PermissionRequest.created_dt)
        )
    )


def decide_request(
    session: Session, actor: Actor, request_id: int, *, grant: bool, reason: str = ""
) -> PermissionRequest:
    """Grant (one change, one email) or decline (recorded, the user emailed) a request."""
    authority = actor.authority
    request = session.get(PermissionRequest, request_id)
    if (
        request is None
        or request.employer_id != authority.employer_id
        or request.decided_dt is not None
        or not authority.covers(request.employer_code_id)
    ):
        raise NotFound
    if not authority.may_change_permissions_of(request.person_id):
        raise Refused("own_permissions")
    if grant:
        change_permissions(
            session,
            actor,
            request.person_id,
            grant=[(request.service, request.employer_code_id)],
            reason=reason or f"request {request.id}",
        )
    request.decided_dt = utcnow()
    request.decided_by_person_id = authority.person_id
    request.outcome = RequestOutcome.GRANTED if grant else RequestOutcome.DECLINED
    session.flush()
    _audit(
        session,
        actor,
        "permission_request.decided",
        "permission_request",
        request.id,
        outcome=request.outcome.value,
        reason=reason,
    )
    if not grant:
        notices.notify_permission_request_declined(
            session,
            request,
            by=session.get_one(Person, authority.person_id),
            base_url=actor.base_url,
        )
    return request


def today_in_sweden(now: datetime | None = None) -> date:
    return swedish_time(now or utcnow()).date()


def check_end(ends_on: date | None, today: date | None = None) -> None:
    """A planned end (``ends_on``) is a day after today, or none: ``Refused`` otherwise."""
    if ends_on is not None and ends_on <= (today or today_in_sweden()):
        raise Refused("end_not_in_future", "ends_on")


# For ``app.access.mandates`` (extending a time-limited role or permission).
administrator_grant = _administrator_grant
audit = _audit

InactivityMark = Callable[[Person], str | None]
"""Fed by the inactivity module: a mark ("inactive", "long_inactive") for a user, or None."""


__all__ = [
    "Actor",
    "EmployerContext",
    "InactivityMark",
    "NewPerson",
    "NotFound",
    "OverviewPage",
    "OverviewQuery",
    "Refused",
    "add_user",
    "appoint_administrator",
    "authority_at",
    "change_administrator_scope",
    "change_permissions",
    "check_person",
    "decide_request",
    "employer_codes",
    "employer_context",
    "my_permissions",
    "my_requests",
    "overview",
    "pending_requests",
    "remove_administrator",
    "remove_all_permissions",
    "request_permission",
    "role_holders",
    "visible_person",
]
