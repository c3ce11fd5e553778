"""The employer's own review: its current permissions and their change history as CSV.

Semicolon-separated UTF-8 with a byte order mark, as Swedish Excel opens it. The
employer sees its own staff as on its pages: names and full personnummer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session, selectinload

from app.access.inactivity import latest_confirmations, person_mark
from app.access.models import (
    EmployerCode,
    InactivityConfirmation,
    Person,
    RoleGrant,
    ServicePermission,
)
from app.audit.models import AuditEvent
from app.core.i18n import local_time, translations
from app.core.ids import format_personnummer
from app.db import utcnow
from app.notifications.notices import ROLE_NAMES, SERVICE_NAMES


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is used."""
    return message


PERMISSION_COLUMNS = (
    N_("Personnummer"),
    N_("Namn"),
    N_("E-post"),
    N_("Roll eller tjänst"),
    N_("Arbetsgivarkod"),
    N_("Gäller från"),
    N_("Senast inloggad"),
    N_("Markering"),
)
HISTORY_COLUMNS = (
    N_("Tidpunkt"),
    N_("Händelse"),
    N_("Utförd av"),
    N_("Berörd person"),
    N_("Roll eller tjänst"),
    N_("Arbetsgivarkod"),
    N_("Anledning"),
)
ALL_CODES = N_("alla")
MARKS = {
    "inactive": N_("Inaktiv (12 månader)"),
    "long_inactive": N_("Inaktiv länge (18 månader)"),
}
EVENTS = {
    "role_grant.created": N_("Roll tilldelad"),
    "role_grant.ended": N_("Roll avslutad"),
    "service_permission.created": N_("Behörighet tilldelad"),
    "service_permission.ended": N_("Behörighet borttagen"),
    "inactivity.confirmed": N_("Behövs fortfarande (bekräftat)"),
    "role_grant.end_changed": N_("Rollens slutdag ändrad"),
    "role_grant.end_reminded": N_("Påminnelse före slutdagen"),
    "service_permission.end_changed": N_("Behörighetens slutdag ändrad"),
    "service_permission.end_reminded": N_("Påminnelse före slutdagen"),
}
REASONS = {"ends_on": N_("Tidsbegränsad: slutdagen kom")}
"""Reasons the system records (``app.access.mandates``), in words."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A cell Excel shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Semicolon-separated, CRLF line ends, a byte order mark first (Excel reads UTF-8)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


def _grant_codes(grant: RoleGrant, gettext: Callable[[str], str]) -> str:
    if grant.is_all_codes:
        return gettext(ALL_CODES)
    return ", ".join(sorted(c.code for c in grant.codes))


def permissions_csv(
    session: Session,
    employer_id: int,
    *,
    code_ids: Collection[int] | None = None,
    lang: str,
    now: datetime | None = None,
) -> str:
    """The employer's active roles and service permissions (at ``code_ids`` when given)."""
    now = now or utcnow()
    gettext = translations(lang).gettext
    confirmed = latest_confirmations(session, employer_id)

    people: dict[int, tuple[list[object], list[object]]] = {}

    def person_cells(person: Any) -> tuple[list[object], list[object]]:
        """The person's cells (a ``Person``, or a row with its columns), made once."""
        if person.id not in people:
            mark = person_mark(person, confirmed.get(person.id), now)
            who: list[object] = [
                format_personnummer(person.personnummer),
                f"{person.given_name} {person.family_name}",
                person.email,
            ]
            marked = gettext(MARKS[mark]) if mark in MARKS else ""
            people[person.id] = who, [local_time(person.last_login_dt), marked]
        return people[person.id]

    rows: list[list[object]] = []
    grants = session.scalars(
        select(RoleGrant)
        .where(RoleGrant.employer_id == employer_id, RoleGrant.valid_to_dt.is_(None))
        .options(selectinload(RoleGrant.person), selectinload(RoleGrant.codes))
        .order_by(RoleGrant.role, RoleGrant.id)
    )
    for grant in grants:
        who, seen = person_cells(grant.person)
        rows.append(
            [
                *who,
                gettext(ROLE_NAMES[grant.role]),
                _grant_codes(grant, gettext),
                local_time(grant.valid_from_dt),
                *seen,
            ]
        )
    conditions = [EmployerCode.employer_id == employer_id, ServicePermission.valid_to_dt.is_(None)]
    if code_ids is not None:
        conditions.append(EmployerCode.id.in_(code_ids))
    permissions = session.execute(
        select(
            Person.id,
            Person.personnummer,
            Person.given_name,
            Person.family_name,
            Person.email,
            Person.last_login_dt,
            Person.created_dt,
            ServicePermission.service,
            ServicePermission.valid_from_dt,
            EmployerCode.code,
        )
        .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
        .join(Person, Person.id == ServicePermission.person_id)
        .where(*conditions)
        .order_by(Person.family_name, Person.given_name, Person.id, EmployerCode.code)
    )
    service_names = {service: gettext(name) for service, name in SERVICE_NAMES.items()}
    for row in permissions:
        who, seen = person_cells(row)
        rows.append(
            [*who, service_names[row.service], row.code, local_time(row.valid_from_dt), *seen]
        )
    return to_csv([gettext(c) for c in PERMISSION_COLUMNS], rows)


def history_events(
    session: Session, employer_id: int, *, code_ids: Collection[int] | None = None
) -> list[AuditEvent]:
    """The audit log's role and permission events at the employer, oldest first."""
    code_filter = [EmployerCode.employer_id == employer_id]
    if code_ids is not None:
        code_filter.append(EmployerCode.id.in_(code_ids))
    grant_ids = select(cast(RoleGrant.id, String)).where(RoleGrant.employer_id == employer_id)
    permission_ids = (
        select(cast(ServicePermission.id, String))
        .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
        .where(*code_filter)
    )
    confirmation_ids = select(cast(InactivityConfirmation.id, String)).where(
        InactivityConfirmation.employer_id == employer_id
    )
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    (AuditEvent.object_type == "role_grant") & AuditEvent.object_id.in_(grant_ids),
                    (AuditEvent.object_type == "service_permission")
                    & AuditEvent.object_id.in_(permission_ids),
                    (AuditEvent.object_type == "inactivity_confirmation")
                    & AuditEvent.object_id.in_(confirmation_ids),
                )
            )
            .order_by(AuditEvent.id)
        )
    )


def history_csv(
    session: Session, employer_id: int, *, code_ids: Collection[int] | None = None, lang: str
) -> str:
    """The change history of the employer's roles and permissions, from the audit log."""
    gettext = translations(lang).gettext
    events = history_events(session, employer_id, code_ids=code_ids)
    grants = {
        str(g.id): g
        for g in session.scalars(
            select(RoleGrant)
            .where(RoleGrant.employer_id == employer_id)
            .options(selectinload(RoleGrant.codes))
        )
    }
    permissions = {
        str(p.id): p
        for p in session.scalars(
            select(ServicePermission)
            .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
            .where(EmployerCode.employer_id == employer_id)
            .options(selectinload(ServicePermission.employer_code))
        )
    }
    people: dict[int, Person] = {}

    def person(person_id: object) -> str:
        if not isinstance(person_id, int):
            return ""
        if person_id not in people:
            found = session.get(Person, person_id)
            if found is None:
                return ""
            people[person_id] = found
        found = people[person_id]
        return f"{found.full_name} ({format_personnummer(found.personnummer)})"

    def actor(label: str) -> str:
        kind, _, number = label.partition(":")
        if kind == "person" and number.isdigit():
            return person(int(number))
        return "SPV" if kind in ("staff", "system") else label

    rows = []
    for event in events:
        subject: object = event.data.get("person_id")
        what, codes = "", ""
        if event.object_type == "role_grant" and event.object_id in grants:
            grant = grants[event.object_id]
            subject = grant.person_id
            what = gettext(ROLE_NAMES[grant.role])
            codes = _grant_codes(grant, gettext)
        elif event.object_type == "service_permission" and event.object_id in permissions:
            permission = permissions[event.object_id]
            subject = permission.person_id
            what = gettext(SERVICE_NAMES[permission.service])
            codes = permission.employer_code.code
        action = EVENTS.get(event.action)
        rows.append(
            [
                local_time(event.occurred_dt),
                gettext(action) if action else event.action,
                actor(event.actor),
                person(subject),
                what,
                codes,
                _reason(event.data.get("reason", ""), gettext),
            ]
        )
    return to_csv([gettext(c) for c in HISTORY_COLUMNS], rows)


def _reason(reason: str, gettext: Callable[[str], str]) -> str:
    return gettext(REASONS[reason]) if reason in REASONS else reason


def export_filename(kind: str, orgnr: str, now: datetime | None = None) -> str:
    return f"{kind}-{orgnr}-{local_time(now or utcnow(), '%Y-%m-%d')}.csv"
