"""Rule 5 for Hantera behörigheter: a change's emails reach a real SMTP server after the
commit, sent by the worker: one email for several permissions of one person, and the
orderers told when an administrator is appointed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.models import Employer, EmployerCode, SelfService
from tests.conftest import ANNA, person_id
from tests.smtp import (  # noqa: F401 (fixtures: app_settings, smtp, smtp_server)
    BASE_URL,
    SmtpRecorder,
    app_settings_fixture,
    plain_text,
    smtp_fixture,
    smtp_server_fixture,
)
from tests.support import wait_for
from workflows.runtime import Runtime

# The app with MAIL_URL at a real SMTP server (aiosmtpd), as test_notifications has it.

BERTIL = "199001019810"
CECILIA = "197205119824"


def _actor(s: Session, personnummer: str) -> m.Actor:
    employer = s.scalars(select(Employer.id).where(Employer.orgnr == "2021005489")).one()
    return m.Actor(m.authority_at(s, person_id(s, personnummer), employer), BASE_URL)


def test_several_permissions_for_one_person_are_one_email_at_the_server(
    runtime: Runtime, worker: object, smtp: SmtpRecorder
) -> None:
    with runtime.unit_of_work() as s:
        codes = {code: id_ for code, id_ in s.execute(select(EmployerCode.code, EmployerCode.id))}
        m.change_permissions(
            s,
            _actor(s, BERTIL),
            person_id(s, CECILIA),
            grant=[
                (SelfService.STATISTICS, codes["A1001"]),
                (SelfService.PENSION_CASES, codes["A1002"]),
            ],
            revoke=[(SelfService.EMPLOYMENT_REPORTING, codes["A1001"])],
            reason="Nya uppgifter",
        )
    wait_for(lambda: len(smtp.received) >= 1, message="an email at the SMTP server")
    [(rcpt, message)] = smtp.received
    assert rcpt == ["cecilia.carlsson@testmyndighet.example"]
    assert message["Subject"] == "Dina behörigheter hos Statens testmyndighet har ändrats"
    body = plain_text(message)
    assert "Statistik och rapporter, A1001" in body and "Pensionsärenden, A1002" in body
    assert "Du har inte längre behörighet till:" in body and "Bertil Berg" in body
    assert f"{BASE_URL}/hantera-behorigheter" in body


def test_the_orderers_are_told_when_an_administrator_is_appointed(
    runtime: Runtime, worker: object, smtp: SmtpRecorder
) -> None:
    with runtime.unit_of_work() as s:
        m.appoint_administrator(
            s,
            _actor(s, ANNA),
            m.check_person("198703159809", "Frida", "Fors", "frida.fors@testmyndighet.example"),
            all_codes=True,
        )
    wait_for(lambda: len(smtp.received) >= 2, message="two emails at the SMTP server")
    by_recipient = {rcpt[0]: message for rcpt, message in smtp.received}
    assert sorted(by_recipient) == [
        "anna.andersson@testmyndighet.example",
        "frida.fors@testmyndighet.example",
    ]
    assert by_recipient["frida.fors@testmyndighet.example"]["Subject"] == (
        "Du har fått rollen administratör hos Statens testmyndighet"
    )
