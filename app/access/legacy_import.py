"""Going live with the users who already exist: the legacy system's export of service
permissions loaded into the permission store (``behorighet import-permissions FILE``).

Every active user keeps their access when the new handling starts (the source text), and
their last login, so that inactivity (rule 11) is right from day one. The file is read
whole and checked first; each employer's rows are then one audited transaction. A second
run of the same file changes nothing. A dry run does the same work and rolls it back.

The file: CSV, UTF-8 (a BOM is fine), separated by ``;`` or ``,``, with a header naming
:data:`COLUMNS` (in any order)."""

from __future__ import annotations

import csv
import functools
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.access import changelog
from app.access.authority import code_allows
from app.access.management import NewPerson, Refused, check_person
from app.access.models import CodeStatus, Employer, EmployerCode, Person, SelfService
from app.access.models import ServicePermission as Permission
from app.audit.service import record_event
from app.core.agents import Agent
from app.core.i18n import SWEDISH_TIME
from app.core.ids import InvalidIdNumber, normalise_orgnr
from app.notifications.notices import notify_service_permission_changed

COLUMNS = (
    "orgnr",
    "code",
    "personnummer",
    "given_name",
    "family_name",
    "email",
    "service",
    "last_login",
)
"""The export's columns: the employer's organisationsnummer and employer code, the person
(personnummer, names, work email), the self-service (``invoices``, ``employment_reporting``,
``pension_cases``, ``statistics``) and the last login (``YYYY-MM-DD`` or ISO date and time,
Swedish time; empty for never)."""

IMPORTER = Agent.system("legacy-import")


@dataclass(frozen=True)
class Row:
    line: int
    orgnr: str
    code: str
    person: NewPerson
    service: SelfService
    last_login: datetime | None


@dataclass(frozen=True)
class RefusedRow:
    line: int
    reason: str
    """A code: ``missing_columns``, ``invalid_orgnr``, ``unknown_employer``, ``unknown_code``,
    ``invalid_personnummer``, ``invalid_name``, ``invalid_email``, ``unknown_service``,
    ``closed_code``, ``invalid_date``."""
    detail: str = ""


@dataclass
class EmployerResult:
    name: str
    rows: int = 0
    new_persons: int = 0
    new_permissions: int = 0
    logins_recorded: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.new_persons or self.new_permissions or self.logins_recorded)


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    refused: list[RefusedRow] = field(default_factory=list)
    employers: dict[str, EmployerResult] = field(default_factory=dict)

    @property
    def new_permissions(self) -> int:
        return sum(e.new_permissions for e in self.employers.values())

    def lines(self) -> Iterable[str]:
        """The report as the command prints it."""
        verb = "would add" if self.dry_run else "added"
        yield f"{self.rows} rows read, {len(self.refused)} refused."
        for orgnr, result in sorted(self.employers.items()):
            yield (
                f"{orgnr} {result.name}: {result.rows} rows; {verb} {result.new_persons} "
                f"persons and {result.new_permissions} permissions; "
                f"{result.logins_recorded} last logins recorded."
            )
        for refused in self.refused:
            yield f"line {refused.line}: refused, {refused.reason} {refused.detail}".rstrip()


class BadFile(ValueError):
    """The file is not an export this command reads (its header, its encoding)."""


def import_permissions(
    factory: sessionmaker[Session],
    data: bytes,
    *,
    dry_run: bool = False,
    notify: bool = False,
    base_url: str = "",
) -> ImportReport:
    """Load ``data`` (the export) into the permission store; see the module's docstring.

    ``notify``: email each user about each permission added (rule 5); off by default, as
    the users already hold these permissions."""
    report = ImportReport(dry_run=dry_run)
    with factory() as session:
        employers = {e.orgnr: e for e in session.scalars(select(Employer))}
        codes = {(c.employer_id, c.code): c for c in session.scalars(select(EmployerCode))}
        by_employer: dict[str, list[Row]] = defaultdict(list)
        for row in _rows(data, report):
            employer = employers.get(row.orgnr)
            code = codes.get((employer.id, row.code)) if employer else None
            if employer is None:
                report.refused.append(RefusedRow(row.line, "unknown_employer", row.orgnr))
            elif code is None:
                report.refused.append(RefusedRow(row.line, "unknown_code", row.code))
            elif not code_allows(code.status is CodeStatus.CLOSED, row.service):
                report.refused.append(RefusedRow(row.line, "closed_code", row.code))
            else:
                by_employer[row.orgnr].append(row)
    for orgnr, rows in by_employer.items():
        with factory() as session:
            employer = session.scalars(
                select(Employer).where(Employer.orgnr == orgnr).with_for_update()
            ).one()
            result = _load(session, employer, rows, notify=notify, base_url=base_url)
            report.employers[orgnr] = result
            if dry_run or not result.changed:
                session.rollback()
            else:
                record_event(
                    session,
                    actor=IMPORTER.audit_label,
                    action="permissions.imported",
                    object_type="employer",
                    object_id=employer.id,
                    data={
                        "rows": result.rows,
                        "new_persons": result.new_persons,
                        "new_permissions": result.new_permissions,
                        "logins_recorded": result.logins_recorded,
                    },
                )
                session.commit()
    return report


def _load(
    session: Session, employer: Employer, rows: list[Row], *, notify: bool, base_url: str
) -> EmployerResult:
    """One employer's rows into the store (not committed), in a few set-wise statements."""
    result = EmployerResult(employer.name, rows=len(rows))
    codes = {c.code: c.id for c in employer.codes}
    people = {row.person.personnummer: row.person for row in rows}
    ids = dict(
        session.execute(
            select(Person.personnummer, Person.id).where(Person.personnummer.in_(people))
        ).all()
    )
    new = [p for number, p in people.items() if number not in ids]
    if new:
        ids.update(
            session.execute(
                insert(Person).returning(Person.personnummer, Person.id),
                [
                    {
                        "personnummer": p.personnummer,
                        "given_name": p.given_name,
                        "family_name": p.family_name,
                        "email": p.email,
                    }
                    for p in new
                ],
            ).all()
        )
    result.new_persons = len(new)
    result.logins_recorded = _record_logins(session, rows, ids)
    held = set(
        session.execute(
            select(Permission.person_id, Permission.employer_code_id, Permission.service).where(
                Permission.valid_to_dt.is_(None),
                Permission.person_id.in_(list(ids.values())),
                Permission.employer_code_id.in_(list(codes.values())),
            )
        ).all()
    )
    wanted = {(ids[r.person.personnummer], codes[r.code], r.service) for r in rows}
    added = sorted(wanted - held, key=lambda key: (key[0], key[1], key[2].value))
    permissions = (
        list(
            session.scalars(
                insert(Permission).returning(Permission),
                [{"person_id": p, "employer_code_id": c, "service": s} for p, c, s in added],
            )
        )
        if added
        else []
    )
    changelog.service_permissions_changed(session, permissions, [])
    result.new_permissions = len(permissions)
    if notify:
        for permission in permissions:
            notify_service_permission_changed(session, permission, granted=True, base_url=base_url)
    return result


def _record_logins(session: Session, rows: list[Row], ids: dict[str, int]) -> int:
    """Each person's latest login from the file, where it is later than the one known."""
    latest: dict[int, datetime] = {}
    for row in rows:
        person_id = ids[row.person.personnummer]
        if row.last_login and (person_id not in latest or latest[person_id] < row.last_login):
            latest[person_id] = row.last_login
    known = dict(
        session.execute(
            select(Person.id, Person.last_login_dt).where(Person.id.in_(list(latest)))
        ).all()
    )
    never = datetime.min.replace(tzinfo=SWEDISH_TIME)
    changes = [
        {"id": person_id, "last_login_dt": seen}
        for person_id, seen in latest.items()
        if (known.get(person_id) or never) < seen
    ]
    if changes:
        session.execute(update(Person), changes)
    return len(changes)


def _rows(data: bytes, report: ImportReport) -> Iterable[Row]:
    """The file's rows, checked; each refused one is added to ``report``. A person's details
    are checked once however many rows name them."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile("the file is not UTF-8") from exc
    sample = text[:4096]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BadFile(f"the header lacks {', '.join(missing)}")
    for values in reader:
        report.rows += 1
        line = reader.line_num
        try:
            yield _row(line, values)
        except _RowRefused as refused:
            report.refused.append(RefusedRow(line, refused.reason, refused.detail))


class _RowRefused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _row(line: int, values: dict[str | None, str | list[str] | None]) -> Row:
    fields = {c: values.get(c) for c in COLUMNS}
    if any(not isinstance(v, str) for v in fields.values()) or None in values:
        raise _RowRefused("missing_columns")
    text = {c: str(v).strip() for c, v in fields.items()}
    try:
        orgnr = normalise_orgnr(text["orgnr"])
    except InvalidIdNumber:
        raise _RowRefused("invalid_orgnr") from None
    try:
        person = _checked_person(
            text["personnummer"], text["given_name"], text["family_name"], text["email"]
        )
    except Refused as refused:
        raise _RowRefused(refused.code, refused.field or "") from None
    try:
        service = SelfService(text["service"])
    except ValueError:
        raise _RowRefused("unknown_service", text["service"][:40]) from None
    return Row(line, orgnr, text["code"], person, service, _login(text["last_login"]))


@functools.lru_cache(maxsize=4096)
def _checked_person(personnummer: str, given_name: str, family_name: str, email: str) -> NewPerson:
    return check_person(personnummer, given_name, family_name, email)


def _login(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = (
            datetime.combine(date.fromisoformat(value), time(12))
            if len(value) == 10
            else datetime.fromisoformat(value)
        )
    except ValueError:
        raise _RowRefused("invalid_date", value[:40]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SWEDISH_TIME)
    return moment
