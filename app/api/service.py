"""What the API answers: checks, a person's permissions, an employer's contacts and the
change feed. Plain functions: a session, no Flask.

A check is answered by one SQL query (a batch too), from the store's indexed tables
(``person.personnummer`` and ``employer_code.code`` are unique; the active service
permissions have a unique partial index on person, code and service), in the request's
own transaction: a permission ended by a committed change is denied on the next call.
Whether a closed code allows the use is not decided here but asked of
``app.access.authority.code_allows``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from app.access import service as access
from app.access.authority import Access, code_allows
from app.access.models import (
    ChangeAction,
    ChangeKind,
    CodeStatus,
    Employer,
    EmployerCode,
    PermissionChange,
    Person,
    Role,
    SelfService,
    ServicePermission,
)

MAX_BATCH = 100
MAX_FEED_PAGE = 1000
USER_ROLE = "user"
"""The role a service permission gives (roles proper manage permissions, they grant none)."""


class Reason:
    """Why a check was answered as it was (machine-readable)."""

    GRANTED = "granted"
    NO_PERMISSION = "no_permission"
    CLOSED_CODE = "closed_code"
    """A closed employer code allows only reading invoice specifications."""
    UNKNOWN_EMPLOYER_CODE = "unknown_employer_code"


@dataclass(frozen=True)
class CheckRequest:
    subject: str
    """Twelve-digit personnummer."""
    service: SelfService
    access: Access
    employer_code: str


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str
    role: str | None


def check(session: Session, requests: Sequence[CheckRequest]) -> list[CheckResult]:
    """Answer each request, in order, with one query."""
    if not requests:
        return []
    code_values = sorted({r.employer_code for r in requests})
    subjects = sorted({r.subject for r in requests})
    services = sorted({r.service.value for r in requests})
    person = aliased(Person)
    held = (
        select(ServicePermission.employer_code_id, ServicePermission.service, person.personnummer)
        .join(person, person.id == ServicePermission.person_id)
        .where(
            person.personnummer.in_(subjects),
            ServicePermission.service.in_(services),
            ServicePermission.valid_to_dt.is_(None),
        )
        .subquery()
    )
    rows = session.execute(
        select(EmployerCode.code, EmployerCode.status, held.c.service, held.c.personnummer)
        .outerjoin(held, held.c.employer_code_id == EmployerCode.id)
        .where(EmployerCode.code.in_(code_values))
    ).all()
    statuses: dict[str, CodeStatus] = {}
    granted: set[tuple[str, str, str]] = set()
    for code, status, service, personnummer in rows:
        statuses[code] = status
        if personnummer is not None:
            granted.add((code, str(service), personnummer))
    return [_answer(r, statuses, granted) for r in requests]


def _answer(
    request: CheckRequest, statuses: dict[str, CodeStatus], granted: set[tuple[str, str, str]]
) -> CheckResult:
    status = statuses.get(request.employer_code)
    if status is None:
        return CheckResult(False, Reason.UNKNOWN_EMPLOYER_CODE, None)
    if not code_allows(status is CodeStatus.CLOSED, request.service, request.access):
        return CheckResult(False, Reason.CLOSED_CODE, None)
    if (request.employer_code, request.service.value, request.subject) in granted:
        return CheckResult(True, Reason.GRANTED, USER_ROLE)
    return CheckResult(False, Reason.NO_PERMISSION, None)


# ---- a person's permissions --------------------------------------------------------------


@dataclass(frozen=True)
class CodePermission:
    employer_code: str
    code_status: CodeStatus
    service: SelfService
    access: list[Access]
    """What the permission allows on this code: reading, and writing unless it is closed."""


@dataclass(frozen=True)
class RoleHeld:
    role: Role
    codes: list[str] | None
    """The codes the role covers; None: all of the employer's."""


@dataclass
class EmployerPermissions:
    orgnr: str
    name: str
    roles: list[RoleHeld] = field(default_factory=list)
    permissions: list[CodePermission] = field(default_factory=list)


def person_permissions(session: Session, personnummer: str) -> list[EmployerPermissions]:
    """Everything the person may do, per employer: roles and service permissions per code
    (nothing for a person the store does not know)."""
    person = access.find_person(session, personnummer)
    if person is None:
        return []
    employers: dict[int, EmployerPermissions] = {}

    def at(employer: Employer) -> EmployerPermissions:
        if employer.id not in employers:
            employers[employer.id] = EmployerPermissions(employer.orgnr, employer.name)
        return employers[employer.id]

    for grant in access.grants_of_person(session, person.id):
        at(grant.employer).roles.append(
            RoleHeld(
                grant.role, None if grant.is_all_codes else sorted(c.code for c in grant.codes)
            )
        )
    for permission, code, employer in session.execute(
        select(ServicePermission, EmployerCode, Employer)
        .join(EmployerCode, ServicePermission.employer_code_id == EmployerCode.id)
        .join(Employer, EmployerCode.employer_id == Employer.id)
        .where(ServicePermission.person_id == person.id, ServicePermission.valid_to_dt.is_(None))
        .order_by(EmployerCode.code, ServicePermission.service)
    ):
        closed = code.status is CodeStatus.CLOSED
        at(employer).permissions.append(
            CodePermission(
                code.code,
                code.status,
                permission.service,
                [a for a in Access if code_allows(closed, permission.service, a)],
            )
        )
    return sorted(employers.values(), key=lambda e: e.orgnr)


# ---- an employer's contacts (rule 10) ------------------------------------------------------


def employer_contacts(
    session: Session, orgnr_or_code: str
) -> tuple[Employer, list[access.EmployerContact]] | None:
    """The employer (by organisation number or one of its codes) and its orderers and
    administrators; None when there is no such employer."""
    employer = access.find_employer_by_orgnr_or_code(session, orgnr_or_code)
    if employer is None:
        return None
    return employer, access.orderers_and_administrators(session, employer.id)


# ---- the change feed -----------------------------------------------------------------------

_CURSOR_PREFIX = "c1."


class BadCursor(ValueError):
    pass


def encode_cursor(change_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{change_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The last change id a cursor stands for (``BadCursor`` for anything else)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(cursor) from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 18:
        raise BadCursor(cursor)
    return int(number)


@dataclass(frozen=True)
class Change:
    cursor: str
    kind: ChangeKind
    action: ChangeAction
    subject: str
    employer: str
    """The employer's organisation number."""
    employer_code: str | None
    service: SelfService | None
    role: Role | None
    codes: list[str] | None
    at: datetime


@dataclass(frozen=True)
class ChangePage:
    changes: list[Change]
    next_cursor: str
    """Where to go on from: the last change's cursor (the one given when nothing is new)."""


def changes_after(session: Session, cursor: str | None, limit: int) -> ChangePage:
    """The changes committed after ``cursor`` (from the first without one), in commit order
    (``app.access.changelog`` assigns ids in that order)."""
    after = decode_cursor(cursor) if cursor else 0
    limit = max(1, min(limit, MAX_FEED_PAGE))
    code = aliased(EmployerCode)
    rows = session.execute(
        select(PermissionChange, Person.personnummer, Employer.orgnr, code.code)
        .join(Person, Person.id == PermissionChange.person_id)
        .join(Employer, Employer.id == PermissionChange.employer_id)
        .outerjoin(code, and_(code.id == PermissionChange.employer_code_id))
        .where(PermissionChange.id > after)
        .order_by(PermissionChange.id)
        .limit(limit)
    )
    changes = [
        Change(
            encode_cursor(c.id),
            c.kind,
            c.action,
            personnummer,
            orgnr,
            code_value,
            c.service,
            c.role,
            c.codes,
            c.created_dt,
        )
        for c, personnummer, orgnr, code_value in rows
    ]
    next_cursor = changes[-1].cursor if changes else (cursor or encode_cursor(0))
    return ChangePage(changes, next_cursor)
