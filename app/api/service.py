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

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Exists,
    String,
    and_,
    bindparam,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
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
from app.api.models import ApiAccessLog

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


def _holds(subject: Any, service: Any) -> Exists:
    """Whether the person (by the unique personnummer) holds the service at the outer
    query's code: the unique partial index of active permissions (person, code, service)."""
    return (
        select(ServicePermission.id)
        .join(Person, Person.id == ServicePermission.person_id)
        .where(
            Person.personnummer == subject,
            ServicePermission.employer_code_id == EmployerCode.id,
            ServicePermission.service == service,
            ServicePermission.valid_to_dt.is_(None),
        )
        .exists()
    )


_ONE = select(
    EmployerCode.status, _holds(bindparam("subject", type_=String()), bindparam("service"))
).where(EmployerCode.code == bindparam("code", type_=String()))
"""One check: the code by its unique value, and whether the person holds the service there
(made once; a check is the hot path of the API)."""


_LOGGED_ONE = _ONE.add_cte(
    insert(ApiAccessLog)
    .values(
        client_id=bindparam("log_client"),
        endpoint=bindparam("log_endpoint"),
        subject_hash=bindparam("log_subject"),
        created_dt=bindparam("log_at"),
    )
    .cte("logged")
)
"""One check and its access-log row in one statement (PostgreSQL)."""

_LOGGED_ONE_SQL = str(_LOGGED_ONE.compile(dialect=postgresql_psycopg.dialect()))
""":data:`_LOGGED_ONE` as psycopg is given it: compiled once, for the hot path."""
_STATUSES = {s.value: s for s in CodeStatus}


def check_one_logged(cursor: Any, request: CheckRequest, log: dict[str, Any]) -> CheckResult:
    """One check and its access-log row ``log`` (:func:`app.api.clients.access_rows`), on a
    psycopg cursor: the API's hot path on PostgreSQL, without SQLAlchemy's statement
    handling (the statement is :data:`_LOGGED_ONE`, the same as :func:`check` runs)."""
    cursor.execute(
        _LOGGED_ONE_SQL,
        {
            "subject": request.subject,
            "service": request.service.value,
            "code": request.employer_code,
            "log_client": log["client_id"],
            "log_endpoint": log["endpoint"],
            "log_subject": log["subject_hash"],
            "log_at": log["created_dt"],
        },
    )
    found = cursor.fetchone()
    if found is None:
        return _answer(request, None, False)
    return _answer(request, _STATUSES[found[0]], bool(found[1]))


def check(
    connection: Connection,
    requests: Sequence[CheckRequest],
    log: Sequence[dict[str, Any]] = (),
) -> list[CheckResult]:
    """Answer each request, in order, with one query; and write ``log`` (access-log rows),
    on PostgreSQL in the same statement (no answer is given that is not logged)."""
    in_one = connection.dialect.name == "postgresql"
    if len(requests) == 1:
        [request] = requests
        params: dict[str, Any] = {
            "subject": request.subject,
            "service": request.service,
            "code": request.employer_code,
        }
        statement = _ONE
        if in_one and len(log) == 1:
            [row] = log
            statement = _LOGGED_ONE
            params |= {
                "log_client": row["client_id"],
                "log_endpoint": row["endpoint"],
                "log_subject": row["subject_hash"],
                "log_at": row["created_dt"],
            }
            log = ()
        found = connection.execute(statement, params).first()
        status, holds = found if found else (None, False)
        answers = [_answer(request, status, bool(holds))]
    else:
        asked = union_all(
            *(
                select(
                    literal(n).label("n"),
                    literal(r.subject, String()).label("subject"),
                    literal(r.employer_code, String()).label("code"),
                    literal(r.service.value, String()).label("service"),
                )
                for n, r in enumerate(requests)
            )
        ).subquery("asked")
        batch = (
            select(asked.c.n, EmployerCode.status, _holds(asked.c.subject, asked.c.service))
            .select_from(asked)
            .outerjoin(EmployerCode, EmployerCode.code == asked.c.code)
        )
        if in_one and log:
            batch = batch.add_cte(insert(ApiAccessLog).values(list(log)).cte("logged"))
            log = ()
        found_n = {n: (status, bool(holds)) for n, status, holds in connection.execute(batch)}
        answers = [_answer(r, *found_n[n]) for n, r in enumerate(requests)]
    if log:
        connection.execute(insert(ApiAccessLog), list(log))
    return answers


def _answer(request: CheckRequest, status: CodeStatus | None, holds: bool) -> CheckResult:
    if status is None:
        return CheckResult(False, Reason.UNKNOWN_EMPLOYER_CODE, None)
    if not code_allows(status is CodeStatus.CLOSED, request.service, request.access):
        return CheckResult(False, Reason.CLOSED_CODE, None)
    if holds:
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


@dataclass(frozen=True)
class Contacts:
    """An employer's contacts as the API answers them, and whose data that is."""

    employer: Employer
    contacts: list[access.EmployerContact]
    personnummers: list[str]
    """The personnummer of each contact (for the access log, never in the answer)."""


def employer_contacts(session: Session, orgnr_or_code: str) -> Contacts | None:
    """The employer (by organisation number or one of its codes) and its orderers and
    administrators; None when there is no such employer."""
    employer = access.find_employer_by_orgnr_or_code(session, orgnr_or_code)
    if employer is None:
        return None
    grants = access.active_grants(session, employer.id)
    return Contacts(
        employer,
        access.contacts_of(grants),
        sorted({grant.person.personnummer for grant in grants}),
    )


# ---- the change feed -----------------------------------------------------------------------

CURSOR_PATTERN = r"^v1\.[0-9a-f]{1,15}$"
"""A cursor: opaque to callers; every string of this shape is one (a cursor past the last
change reads nothing yet)."""
_CURSOR = re.compile(CURSOR_PATTERN)


class BadCursor(ValueError):
    pass


def encode_cursor(change_id: int) -> str:
    return f"v1.{change_id:x}"


def decode_cursor(cursor: str) -> int:
    """The last change id a cursor stands for (``BadCursor`` for anything else)."""
    if not _CURSOR.match(cursor):
        raise BadCursor(cursor)
    return int(cursor[3:], 16)


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
