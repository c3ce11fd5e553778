"""Emails: queued with the change that calls for them, sent after commit, once, to a real
SMTP server (aiosmtpd on a free port); and the demo's mail sink with its page."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import Employer, Person, Role, RoleGrant, ServicePermission
from app.core.agents import Agent
from app.notifications import sender
from app.notifications.models import EmailMessage
from app.notifications.notices import (
    notify_rejected,
    notify_role_granted,
    notify_service_permission_changed,
)
from app.notifications.queue import queue_email
from app.registrations.models import Errand
from devtools.mail_sink.models import SinkMessage
from devtools.mail_sink.sink import MailSink
from tests.conftest import DAVID, person_id
from tests.factories import (
    claim_and_approve,
    in_review,
    like_in_review,
    public_base_url,
    received_by_esignature,
    registration_draft,
    verifiers,
)
from tests.smtp import (  # noqa: F401 (fixtures: app_settings, smtp, smtp_server)
    BASE_URL,
    SmtpRecorder,
    app_settings_fixture,
    plain_text,
    smtp_fixture,
    smtp_server_fixture,
)
from tests.support import free_port, skatteverket_test_personnummer, wait_for
from workflows import actors, pipeline
from workflows.failures import StepFailureRecorder
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime

SYSTEM = Agent.system("test")
FREDRIK_WORK = "fredrik.falk@provverket.example"  # the address given in the registration
DAVID_EMAIL = "david.dahl@provverket.example"
PERSONNUMMER = ("198507049859", "200001029834", "195210039847")  # Fredrik, David, Eva


def _forms(personnummer: str) -> list[str]:
    """Every way a personnummer may be written."""
    return [
        personnummer,
        f"{personnummer[:8]}-{personnummer[8:]}",
        personnummer[2:],
        f"{personnummer[2:8]}-{personnummer[8:]}",
    ]


# --- helpers ---------------------------------------------------------------------------


def _approved(session: Session) -> Errand:
    """David's registration of Fredrik Falk at Provverket, signed, verified and approved."""
    errand = received_by_esignature(session, registration_draft(session))
    assert pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert claim_and_approve(session, errand)
    return errand


def _count(session: Session, what: Any, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(what).where(*where)) or 0


def _email_outbox(session: Session) -> list[OutboxMessage]:
    return list(
        session.scalars(select(OutboxMessage).where(OutboxMessage.actor_name == "send_email"))
    )


def _queue_one(runtime: Runtime, key: str = "test:one") -> int:
    with runtime.unit_of_work() as s:
        queued = queue_email(
            s,
            base_url=BASE_URL,
            dedupe_key=key,
            to="asa.oberg@example.se",
            name="Åsa Öberg",
            language="sv",
            template="role_ended",
            context=_role_context(),
        )
        assert queued is not None
        return queued.id


def _role_context() -> dict[str, Any]:
    return {
        "is_affected": True,
        "person": "Åsa Öberg",
        "role": "administratör",
        "employer": "Provverket",
        "orgnr": "202100-4920",
        "actor": "David Dahl",
        "reference": None,
        "path": "/hantera-behorigheter",
    }


# --- (a) queued with the grant, sent after the commit ---------------------------------


def test_applying_a_registration_queues_emails_in_the_same_transaction(session: Session) -> None:
    errand = _approved(session)
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    grant = session.scalars(select(RoleGrant).where(RoleGrant.source_errand_id == errand.id)).one()
    emails = session.scalars(select(EmailMessage).order_by(EmailMessage.id)).all()
    assert [(e.to_address, e.to_name, e.template) for e in emails] == [
        (FREDRIK_WORK, "Fredrik Falk", "role_granted"),  # the new orderer, at the given address
        (DAVID_EMAIL, "David Dahl", "role_granted"),  # Provverket's other orderer
    ]
    assert all(e.role_grant_id == grant.id and e.errand_id == errand.id for e in emails)
    assert all(e.sent_dt is None and e.attempts == 0 for e in emails)
    outbox = _email_outbox(session)
    assert sorted(m.kwargs["email_id"] for m in outbox) == [e.id for e in emails]
    # No errand on the message: a mail that cannot be sent never fails the errand.
    assert all(m.errand_id is None and set(m.kwargs) == {"email_id"} for m in outbox)

    session.rollback()
    assert _count(session, RoleGrant, RoleGrant.source_errand_id == errand.id) == 0
    assert _count(session, EmailMessage) == 0
    assert _email_outbox(session) == []


def test_emails_reach_the_mail_server_after_the_commit(
    runtime: Runtime, worker: object, smtp: SmtpRecorder
) -> None:
    with runtime.unit_of_work() as s:
        reference = _approved(s).reference
    # The worker applies the decision, and then sends the two emails it queued.
    wait_for(lambda: len(smtp.received) >= 2, message="two emails at the SMTP server")
    by_recipient = {rcpt[0]: message for rcpt, message in smtp.received}
    assert sorted(by_recipient) == [DAVID_EMAIL, FREDRIK_WORK]

    fredrik = by_recipient[FREDRIK_WORK]
    assert str(fredrik["To"]) == f"Fredrik Falk <{FREDRIK_WORK}>"
    assert fredrik["Subject"] == "Du har fått rollen behörig beställare hos Provverket"
    assert fredrik["From"].addresses[0].addr_spec == "noreply@spv.example"
    assert fredrik["Message-ID"].endswith("@spv.example>")
    body = plain_text(fredrik)
    assert "Provverket (organisationsnummer 202100-4920)" in body
    assert f"i ärende {reference}" in body
    assert f"{BASE_URL}/hantera-behorigheter" in body

    david = by_recipient[DAVID_EMAIL]
    assert str(david["To"]) == f"David Dahl <{DAVID_EMAIL}>"
    assert david["Subject"] == "Fredrik Falk har fått rollen behörig beställare hos Provverket"
    assert reference in plain_text(david) and "202100-4920" in plain_text(david)

    for _rcpt, message in smtp.received:
        text = message.as_string() + plain_text(message)
        for personnummer in PERSONNUMMER:
            assert not any(form in text for form in _forms(personnummer)), personnummer

    def all_sent() -> bool:
        with runtime.session_factory() as s:
            rows = s.scalars(select(EmailMessage)).all()
            return len(rows) == 2 and all(r.sent_dt and r.attempts == 1 for r in rows)

    wait_for(all_sent, message="both emails marked sent")
    assert len(smtp.received) == 2


# --- (b) once ----------------------------------------------------------------------------


@pytest.mark.usefixtures("committed_db")  # two threads race for the row lock
def test_an_email_is_sent_once_however_often_its_message_comes(
    runtime: Runtime, smtp: SmtpRecorder
) -> None:
    email_id = _queue_one(runtime)
    mailer = sender.mailer_for(runtime.settings)
    assert sender.send_email(runtime.session_factory, email_id, mailer)
    assert not sender.send_email(runtime.session_factory, email_id, mailer)
    actors.send_email(email_id=email_id)
    # Two workers holding the same message at once: the row lock lets one send.
    other_id = _queue_one(runtime, key="test:two")
    results: list[bool] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        results.append(sender.send_email(runtime.session_factory, other_id, mailer))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [False, True]
    assert [rcpt for rcpt, _ in smtp.received] == [["asa.oberg@example.se"]] * 2
    message = smtp.received[0][1]
    assert str(message["To"]) == "Åsa Öberg <asa.oberg@example.se>"
    assert message["Subject"] == "Din roll som administratör hos Provverket har upphört"
    with runtime.session_factory() as s:
        assert [r.attempts for r in s.scalars(select(EmailMessage).order_by(EmailMessage.id))] == [
            1,
            1,
        ]


# --- (c) a refusing server ---------------------------------------------------------------


def test_a_refused_email_stays_unsent_and_goes_when_the_server_accepts(
    runtime: Runtime, smtp: SmtpRecorder
) -> None:
    email_id = _queue_one(runtime)
    smtp.refuse = True
    with pytest.raises(sender.EmailNotSent, match="550"):
        actors.send_email(email_id=email_id)
    with runtime.session_factory() as s:
        row = s.get(EmailMessage, email_id)
        assert row is not None
        assert (row.sent_dt, row.attempts) == (None, 1)
        assert row.last_error and "550 5.7.1 Delivery not authorised" in row.last_error
    # When dramatiq gives up on it, nothing happens to any errand (it has none).
    StepFailureRecorder(runtime.session_factory).record(
        "send_email", {"email_id": email_id}, "gave up"
    )

    smtp.refuse = False
    actors.send_email(email_id=email_id)
    with runtime.session_factory() as s:
        row = s.get(EmailMessage, email_id)
        assert row is not None
        assert row.sent_dt is not None and row.attempts == 2 and row.last_error is None
    assert len(smtp.received) == 1


def test_an_unreachable_server_is_recorded_too(runtime: Runtime) -> None:
    email_id = _queue_one(runtime)
    mailer = sender.SmtpMailer.from_url(f"smtp://127.0.0.1:{free_port()}", "x@spv.example")
    with pytest.raises(sender.EmailNotSent, match="ConnectionRefusedError"):
        sender.send_email(runtime.session_factory, email_id, mailer)
    with runtime.session_factory() as s:
        row = s.get(EmailMessage, email_id)
        assert row is not None and row.attempts == 1 and row.sent_dt is None


def test_mail_urls() -> None:
    plain = sender.SmtpMailer.from_url("smtp://mail.example:2525", "a@b")
    assert (plain.host, plain.port, plain.security, plain.username) == (
        "mail.example",
        2525,
        "plain",
        None,
    )
    tls = sender.SmtpMailer.from_url("smtps://spv%40x:p%3Ass@mail.example", "a@b")
    assert (tls.port, tls.security, tls.username, tls.password) == (465, "tls", "spv@x", "p:ss")
    assert "p:ss" not in repr(tls)
    starttls = sender.SmtpMailer.from_url("smtp+starttls://u:p@mail.example", "a@b")
    assert (starttls.port, starttls.security) == (587, "starttls")
    with pytest.raises(ValueError, match="MAIL_URL") as refused:
        sender.SmtpMailer.from_url("http://u:secret@mail.example", "a@b")
    assert "secret" not in str(refused.value)


def test_registering_orderers_one_by_one_is_two_emails_each_however_many_orderers(
    session: Session,
) -> None:
    """Each registration tells the new orderer, and the employer's other orderers in one
    email together: N registrations are 2N emails, not one per orderer for every other."""
    count = 10
    errand = in_review(session)
    sources = like_in_review(
        session, errand, [skatteverket_test_personnummer(i) for i in range(count - 1)]
    )
    assert claim_and_approve(session, errand)
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    employer = session.get_one(Employer, errand.employer_id)
    for i, source in enumerate(sources):
        person = access.find_or_create_person(
            session, skatteverket_test_personnummer(i), f"Beställare{i}", "Test"
        )
        grant = access.register_orderer(
            session,
            SYSTEM,
            employer=employer,
            person=person,
            role=Role.DELEGATED_ORDERER,
            code_values=[],
            errand_id=source.id,
            contact_email=f"orderer{i}@provverket.example",
        )
        notify_role_granted(session, grant, base_url=public_base_url())
    emails = session.scalars(
        select(EmailMessage).where(EmailMessage.template == "role_granted")
    ).all()
    assert len(emails) == 2 * count  # was 1 + 2 + … + (count + 1)
    last = emails[-1]
    assert last.to_address == "" and last.to_name == "Behöriga beställare hos Provverket"
    assert last.group_addresses is not None and len(last.group_addresses) == count
    assert DAVID_EMAIL in last.group_addresses and FREDRIK_WORK in last.group_addresses
    assert "Beställare8 Test har fått rollen" in last.text_body


def test_an_email_to_a_group_reaches_each_address_in_the_envelope_only(
    runtime: Runtime, worker: object, smtp: SmtpRecorder
) -> None:
    group = ["anna@example.org", "bo@example.org", "cilla@example.org"]
    with runtime.unit_of_work() as s:
        queue_email(
            s,
            base_url=public_base_url(),
            dedupe_key="test:group",
            to="",
            name="Behöriga beställare hos Provverket",
            language="sv",
            template="role_ended",
            context=_role_context(),
            group=group,
        )
    wait_for(lambda: len(smtp.received) >= 1, message="the email at the SMTP server")
    [(rcpt, message)] = smtp.received
    assert sorted(rcpt) == group
    assert message["To"] == "Behöriga beställare hos Provverket:;"
    assert "Bcc" not in message and not any(a in message.as_string() for a in group)


# --- (d) never twice in the queue ------------------------------------------------------


@pytest.mark.usefixtures("committed_db")  # two transactions race for the same key
def test_the_dedupe_key_stops_a_duplicate(runtime: Runtime, session: Session) -> None:
    david_grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == person_id(session, DAVID))
    ).one()
    first = notify_role_granted(session, david_grant, base_url=public_base_url())
    assert [e.dedupe_key for e in first] == [
        f"role_granted:{david_grant.id}:{david_grant.person_id}"
    ]
    assert notify_role_granted(session, david_grant, base_url=public_base_url()) == []
    assert (_count(session, EmailMessage), len(_email_outbox(session))) == (1, 1)
    session.commit()

    # The same notification queued at once by two transactions: the second gives way.
    with runtime.session_factory() as one, runtime.session_factory() as two:
        assert _queue_in(one, "test:race") is not None
        results: list[object] = []
        racer = threading.Thread(target=lambda: results.append(_queue_in(two, "test:race")))
        racer.start()
        racer.join(0.3)
        assert racer.is_alive(), "the second insert should wait for the first transaction"
        one.commit()
        racer.join(10)
        assert results == [None]
        two.commit()
    with runtime.session_factory() as s:
        assert _count(s, EmailMessage, EmailMessage.dedupe_key == "test:race") == 1


def _queue_in(session: Session, key: str) -> EmailMessage | None:
    return queue_email(
        session,
        base_url=BASE_URL,
        dedupe_key=key,
        to="a@example.se",
        name="A",
        language="sv",
        template="role_ended",
        context={
            "is_affected": False,
            "person": "B",
            "role": "administratör",
            "employer": "Provverket",
            "orgnr": "202100-4920",
            "actor": None,
            "reference": None,
            "path": "/",
        },
    )


# --- what the other notifications say ---------------------------------------------------


def test_rejection_is_in_the_submitters_language_and_masks_personnummer(
    session: Session,
) -> None:
    errand = received_by_esignature(session, registration_draft(session))
    errand.language = "en"
    queued = notify_rejected(
        session, errand, "Eva Ek (195210039847) may not sign.", base_url=public_base_url()
    )
    assert queued is not None
    assert queued.to_address == DAVID_EMAIL and queued.language == "en"
    assert queued.subject == f"Case {errand.reference} has been rejected"
    assert "195210039847" not in queued.text_body and "19521003-****" in queued.text_body
    assert "Provverket (organisation number 202100-4920)" in queued.text_body
    assert f"{BASE_URL}/mina-arenden/{errand.reference}" in queued.text_body
    assert notify_rejected(session, errand, "again", base_url=public_base_url()) is None


def test_a_user_is_told_when_a_service_permission_ends(session: Session) -> None:
    permission = session.scalars(select(ServicePermission).order_by(ServicePermission.id)).first()
    assert permission is not None
    bertil = session.get(Person, permission.granted_by_person_id)
    queued = notify_service_permission_changed(
        session, permission, False, base_url=public_base_url(), by=bertil
    )
    assert queued is not None
    assert queued.to_address == "cecilia.carlsson@testmyndighet.example"
    assert (
        queued.subject
        == "Din behörighet till ”Fakturor och fakturaspecifikationer” har tagits bort"
    )
    assert "Statens testmyndighet (organisationsnummer 202100-5489)" in queued.text_body
    assert "Ändringen gjordes av Bertil Berg." in queued.text_body


# --- (e) the demo's mail sink ----------------------------------------------------------


@pytest.mark.usefixtures("committed_db")  # the sink stores from its own thread
def test_the_mail_sink_keeps_what_it_gets_and_lists_it(
    runtime: Runtime, client: FlaskClient
) -> None:
    sink = MailSink(runtime.session_factory, port=free_port())
    sink.start()
    try:
        for subject in ("Första brevet", "Andra brevet"):
            message = MimeMessage()
            message["From"] = "SPV <noreply@spv.example>"
            message["To"] = "Åsa Öberg <asa.oberg@example.se>"
            message["Subject"] = subject
            message.set_content(f"Hej Åsa!\n\n{subject}: <b>inte HTML</b>\n")
            with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client_smtp:
                client_smtp.send_message(message)
    finally:
        sink.stop()  # stores what it acknowledged before it returns
    with runtime.session_factory() as s:
        assert _count(s, SinkMessage) == 2

    page = client.get("/demo/e-post").get_data(as_text=True)
    assert "Skickad e-post (demo)" in page
    assert page.index("Andra brevet") < page.index("Första brevet")  # newest first
    assert "Åsa Öberg &lt;asa.oberg@example.se&gt;" in page
    assert "Andra brevet: &lt;b&gt;inte HTML&lt;/b&gt;" in page
    assert '<pre class="mail-list__body">Hej Åsa!' in page


def test_the_mail_sink_listens_only_on_loopback(runtime: Runtime) -> None:
    from dataclasses import replace

    settings = runtime.settings
    sink = MailSink.for_settings(
        replace(settings, mail_url="smtp://127.0.0.1:2525"), runtime.session_factory
    )
    assert (sink.host, sink.port) == ("127.0.0.1", 2525)
    for url in ("smtp://mail.example:25", "smtps://127.0.0.1:465"):
        with pytest.raises(ValueError, match="MAIL_URL"):
            MailSink.for_settings(replace(settings, mail_url=url), runtime.session_factory)
