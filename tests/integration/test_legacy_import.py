"""Going live (issue 15): the legacy system's export loaded into the permission store. A
dry run changes nothing; the real run adds every good row, refuses each bad one with its
reason, is one audited transaction per employer, sends no email unless asked, keeps the
last logins, and a second run changes nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.legacy_import import COLUMNS, BadFile, import_permissions
from app.access.models import PermissionChange, Person, SelfService, ServicePermission
from app.audit.models import AuditEvent
from app.cli import main
from app.notifications.models import EmailMessage
from tests.support import skatteverket_test_personnummer
from workflows.runtime import Runtime

MYNDIGHET, PROVVERKET = "202100-5489", "2021004920"
PERSONS = 10_000
BROKEN = [  # (row, reason): every way a row of the export can be wrong
    ("2021005489;A1001;199001011234;Bo;Fel;bo@x.example;invoices;", "invalid_personnummer"),
    ("2021005489;A1001;{pnr};Bo;Ek;bo@x.example;coffee;", "unknown_service"),
    ("2021005489;A1003;{pnr};Bo;Ek;bo@x.example;statistics;", "closed_code"),
    ("2021005489;Z9999;{pnr};Bo;Ek;bo@x.example;invoices;", "unknown_code"),
    ("5560360793;A1001;{pnr};Bo;Ek;bo@x.example;invoices;", "unknown_employer"),
    ("2021005489;A1001;{pnr};Bo\x00;Ek;bo@x.example;invoices;", "invalid_name"),
    ("2021005489;A1001;{pnr};Bo;Ek;inte en adress;invoices;", "invalid_email"),
    ("2021005489;A1001;{pnr};Bo;Ek;bo@x.example;invoices;igår", "invalid_date"),
    ("123;A1001;{pnr};Bo;Ek;bo@x.example;invoices;", "invalid_orgnr"),
    ("2021005489;A1001;{pnr}", "missing_columns"),
]


def _export(persons: int = PERSONS, broken: int = 20) -> bytes:
    """Four services at A1001 and invoices at Provverket per person (5 rows each), with
    ``broken`` rows of each kind spread among them."""
    lines = [";".join(COLUMNS)]
    services = [s.value for s in SelfService]
    for i in range(persons):
        pnr = skatteverket_test_personnummer(i)
        person = f"{pnr};Test{i};Testsson;test{i}@lonecenter.example"
        login = f"2026-{1 + i % 12:02d}-15" if i % 3 else ""
        lines += [f"{MYNDIGHET};A1001;{person};{s};{login}" for s in services]
        lines.append(f"{PROVVERKET};B2001;{person};invoices;{login}")
        if i % (persons // broken) == 0:
            template, _reason = BROKEN[(i // (persons // broken)) % len(BROKEN)]
            lines.append(template.format(pnr=pnr))
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def _counts(session: Session) -> tuple[int, int, int, int]:
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(ServicePermission)) or 0,
        session.scalar(select(func.count()).select_from(Person)) or 0,
        session.scalar(select(func.count()).where(AuditEvent.action == "permissions.imported"))
        or 0,
        session.scalar(select(func.count()).select_from(EmailMessage)) or 0,
    )


@pytest.mark.slow  # 50,000 rows three times: about 15 s
def test_fifty_thousand_rows_with_broken_ones(runtime: Runtime, session: Session) -> None:
    data = _export()
    before = _counts(session)

    dry = import_permissions(runtime.session_factory, data, dry_run=True)
    assert _counts(session) == before
    assert dry.new_permissions == PERSONS * 5

    logged_before = session.scalar(select(func.count()).select_from(PermissionChange)) or 0
    report = import_permissions(runtime.session_factory, data)
    assert report.rows == PERSONS * 5 + 20
    assert sorted(r.reason for r in report.refused) == sorted(
        reason for _template, reason in BROKEN for _ in range(2)
    )
    assert {orgnr: r.new_permissions for orgnr, r in report.employers.items()} == {
        "2021005489": PERSONS * 4,
        "2021004920": PERSONS,
    }
    permissions, persons, audited, emails = _counts(session)
    assert permissions == before[0] + PERSONS * 5 and persons == before[1] + PERSONS
    assert audited == 2 and emails == before[3]  # one event per employer, no email
    logged = session.scalar(select(func.count()).select_from(PermissionChange)) or 0
    assert logged - logged_before == PERSONS * 5  # the API's change feed sees them
    # The last login is kept: inactivity is right from the first day.
    first, third = (
        session.scalars(
            select(Person).where(Person.personnummer == skatteverket_test_personnummer(i))
        ).one()
        for i in (1, 3)
    )
    assert first.last_login_dt is not None and first.last_login_dt.month == 2
    assert third.last_login_dt is None

    again = import_permissions(runtime.session_factory, data)
    assert again.new_permissions == 0 and _counts(session) == (permissions, persons, 2, emails)
    assert not any(r.changed for r in again.employers.values())


def test_notify_emails_each_user_about_each_permission(runtime: Runtime, session: Session) -> None:
    before = _counts(session)[3]
    report = import_permissions(
        runtime.session_factory, _export(persons=2, broken=1), notify=True, base_url="https://x"
    )
    assert report.new_permissions == 10
    assert _counts(session)[3] == before + 10


def test_a_file_that_is_not_the_export_is_refused_whole(runtime: Runtime) -> None:
    with pytest.raises(BadFile, match="the header lacks"):
        import_permissions(runtime.session_factory, b"orgnr;code\n2021005489;A1001\n")
    with pytest.raises(BadFile, match="not UTF-8"):
        import_permissions(runtime.session_factory, "orgnr;kod\n".encode("utf-16"))


def test_the_command_prints_the_report(app: Flask, tmp_path: object, session: Session) -> None:
    export = tmp_path / "export.csv"  # type: ignore[operator]
    export.write_bytes(_export(persons=20, broken=2))
    result = CliRunner().invoke(
        main, ["import-permissions", str(export), "--dry-run"], obj=_script_info(app)
    )
    assert result.exit_code == 0, result.output
    assert "102 rows read, 2 refused." in result.output  # 5 rows for each of 20 persons
    assert "would add 20 persons and 80 permissions" in result.output
    assert "refused, invalid_personnummer" in result.output


def _script_info(app: Flask) -> object:
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)
