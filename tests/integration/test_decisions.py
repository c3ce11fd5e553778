"""After the queue: completion round trips with a paused due date, rejection and its email,
the decision letter and archive step, SLA reminders and escalations, and the check of an
e-signed form's seal and BankID evidence."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.audit.service import authentic_errand_event
from app.casework import service as casework
from app.casework.deadlines import watch_deadlines
from app.core.agents import Agent
from app.db import utcnow
from app.documents.pki import load_certificates, load_private_key, seal_material
from app.documents.seal import seal_pdf
from app.eid.models import EidOrder
from app.notifications.models import EmailMessage
from app.registrations.models import (
    DocumentKind,
    Errand,
    ErrandDocument,
    RejectionReason,
    VerificationCheck,
)
from app.registrations.signing import SEALED_SHA256
from app.staff.models import StaffMember
from devtools.pki import ensure_test_pki
from tests.conftest import DAVID, INGRID, JOHAN, login
from tests.factories import (
    caseworker,
    claim_and_approve,
    in_review,
    like_in_review,
    public_base_url,
    verifiers,
)
from tests.support import (
    csrf_token,
    pdf_page_texts,
    pdf_with_annotation,
    skatteverket_test_personnummer,
    wait_for,
)
from workflows import pipeline
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.states import ErrandState, IllegalTransition
from workflows.verification import run_checks
from workflows.worker import run_maintenance

SYSTEM = Agent.system("test")


def _emails(session: Session, template: str) -> list[EmailMessage]:
    return list(
        session.scalars(
            select(EmailMessage).where(EmailMessage.template == template).order_by(EmailMessage.id)
        )
    )


def _text(pdf: bytes) -> str:
    return "\n".join(pdf_page_texts(pdf))


def _recheck(session: Session, errand: Errand) -> list[VerificationCheck]:
    return run_checks(session, errand, verifiers(session))


def _signature_check(session: Session, errand: Errand) -> VerificationCheck:
    return next(c for c in _recheck(session, errand) if c.name == "signature")


# --- completion (komplettering) ---------------------------------------------------------


def test_completion_round_trip_pauses_the_due_date(app: Flask, session: Session) -> None:
    errand = in_review(session)
    session.commit()
    reference = errand.reference
    staff = app.test_client()
    login(staff, session, INGRID, staff=True)
    page = staff.get(f"/handlaggning/{reference}").get_data(as_text=True)
    staff.post(f"/handlaggning/{reference}/ta", data={"csrf_token": csrf_token(page)})
    empty = staff.post(
        f"/handlaggning/{reference}/komplettering",
        data={"csrf_token": csrf_token(page), "message": " "},
    )
    assert empty.status_code == 400
    assert "Skriv vad som behöver kompletteras." in empty.get_data(as_text=True)
    staff.post(
        f"/handlaggning/{reference}/komplettering",
        data={"csrf_token": csrf_token(page), "message": "Skicka firmatecknarens titel."},
    )
    session.expire_all()
    assert errand.state is ErrandState.AWAITING_COMPLETION
    assert errand.paused_dt is not None and errand.expires_dt is not None
    (email,) = _emails(session, "completion_requested")
    assert email.to_address == errand.submitted_by.email
    assert "Skicka firmatecknarens titel." in email.text_body
    queue = staff.get("/handlaggning?lista=komplettering").get_data(as_text=True)
    assert reference in queue

    # Three days pass while SPV waits for the submitter.
    due_before = errand.due_dt
    assert due_before is not None
    errand.paused_dt -= timedelta(days=3)
    session.commit()

    submitter = app.test_client()
    login(submitter, session, DAVID)
    mine = submitter.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "SPV behöver en komplettering" in mine and "Skicka firmatecknarens titel." in mine
    refused = submitter.post(
        f"/mina-arenden/{reference}/komplettera", data={"csrf_token": csrf_token(mine)}
    )
    assert refused.status_code == 400 and "Skriv ditt svar." in refused.get_data(as_text=True)
    submitter.post(
        f"/mina-arenden/{reference}/komplettera",
        data={"csrf_token": csrf_token(mine), "answer": "Eva Ek är generaldirektör."},
    )
    session.expire_all()
    assert errand.state is ErrandState.IN_REVIEW
    assert errand.paused_dt is None
    assert errand.due_dt is not None
    shift = errand.due_dt - due_before
    assert timedelta(days=3) <= shift < timedelta(days=3, minutes=5)
    (request,) = errand.completion_requests
    assert request.answer == "Eva Ek är generaldirektör." and request.answered_dt is not None

    # Back with the same caseworker, who sees the answer.
    assert reference in staff.get("/handlaggning?lista=mina").get_data(as_text=True)
    page = staff.get(f"/handlaggning/{reference}").get_data(as_text=True)
    assert "Eva Ek är generaldirektör." in page

    # Answering again changes nothing.
    again = submitter.post(
        f"/mina-arenden/{reference}/komplettera",
        data={"csrf_token": csrf_token(mine), "answer": "En gång till."},
    )
    assert again.status_code == 302
    session.expire_all()
    assert [r.answer for r in errand.completion_requests] == ["Eva Ek är generaldirektör."]


def test_only_the_holder_asks_for_completion(session: Session) -> None:
    errand = in_review(session)
    with pytest.raises(casework.NotYourErrand):
        casework.request_completion(
            session, caseworker(session, INGRID), errand, "Mer.", base_url=public_base_url()
        )
    assert errand.state is ErrandState.IN_REVIEW
    assert _emails(session, "completion_requested") == []


# --- rejection, decision letter, archive ------------------------------------------------


def test_rejection_emails_the_submitter_and_files_a_decision_letter(session: Session) -> None:
    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.reject_errand(
        session,
        agent,
        errand,
        RejectionReason.SIGNATORY_NOT_ENTITLED,
        "Eva Ek saknar rätt.",
        base_url=public_base_url(),
    )
    (email,) = _emails(session, "errand_rejected")
    assert email.to_address == errand.submitted_by.email
    assert "Eva Ek saknar rätt." in email.text_body
    archive = session.scalars(
        select(OutboxMessage).where(OutboxMessage.actor_name == "archive_errand")
    ).all()
    assert [m.errand_id for m in archive] == [errand.id]

    assert pipeline.archive(session, errand.id, SYSTEM)
    assert errand.state is ErrandState.REJECTED
    letter = next(d for d in errand.documents if d.kind is DocumentKind.DECISION)
    text = _text(letter.content)
    assert "har avslagit ditt ärende" in text
    assert "Den som skrivit under får inte teckna firma" in text
    assert "Eva Ek saknar rätt." in text
    assert not pipeline.archive(session, errand.id, SYSTEM)  # once only
    assert len([d for d in errand.documents if d.kind is DocumentKind.DECISION]) == 1


def test_applied_errand_is_archived_and_closed(session: Session) -> None:
    errand = in_review(session)
    assert claim_and_approve(session, errand)
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert errand.state is ErrandState.APPLIED
    assert pipeline.archive(session, errand.id, SYSTEM)
    assert errand.state is ErrandState.CLOSED
    kinds = sorted(d.kind.value for d in errand.documents)
    assert kinds == ["decision", "evidence", "evidence", "signed"]
    letter = next(d for d in errand.documents if d.kind is DocumentKind.DECISION)
    assert "har beviljat ditt ärende" in _text(letter.content)
    assert not pipeline.archive(session, errand.id, SYSTEM)


def test_caseworker_retrieves_the_archive_of_that_errand_only(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session)
    other = in_review(
        session, personnummer="198112189876", given_name="Anna", family_name="Andersson"
    )
    session.commit()
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    foreign = next(d for d in other.documents if d.kind is DocumentKind.SIGNED)
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert f"/handlaggning/{errand.reference}/handlingar/{signed.id}" in page
    response = client.get(f"/handlaggning/{errand.reference}/handlingar/{signed.id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data == signed.content
    assert (
        client.get(f"/handlaggning/{errand.reference}/handlingar/{foreign.id}").status_code == 404
    )


def test_submitter_downloads_the_decision_letter(client: FlaskClient, session: Session) -> None:
    errand = in_review(session)
    assert claim_and_approve(session, errand)
    pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    pipeline.archive(session, errand.id, SYSTEM)
    session.commit()
    login(client, session, DAVID)
    page = client.get(f"/mina-arenden/{errand.reference}").get_data(as_text=True)
    assert "Ladda ner beslutet (PDF)" in page
    letter = client.get(f"/mina-arenden/{errand.reference}/beslut.pdf")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF-")


# --- due dates (SLA) ------------------------------------------------------------------


def test_reminder_before_and_escalation_after_the_due_date_once_each(session: Session) -> None:
    errand = in_review(session)
    ingrid = caseworker(session, INGRID)
    casework.claim(session, ingrid, errand)
    now = utcnow()

    errand.due_dt = now + timedelta(days=5)
    assert watch_deadlines(session, now, base_url=public_base_url()) == (0, 0)

    errand.due_dt = now + timedelta(days=1)
    assert watch_deadlines(session, now, base_url=public_base_url()) == (1, 0)
    assert watch_deadlines(session, now, base_url=public_base_url()) == (0, 0)
    (reminder,) = _emails(session, "deadline_digest")
    assert reminder.to_address == "ingrid.handlaggare@spv.example"
    assert errand.reference in reminder.text_body and "Du har ärendet." in reminder.text_body

    later = now + timedelta(days=2)
    assert watch_deadlines(session, later, base_url=public_base_url()) == (0, 1)
    assert watch_deadlines(session, later, base_url=public_base_url()) == (0, 0)
    (_, escalation) = _emails(session, "deadline_digest")
    assert escalation.to_address == "johan.handlaggare@spv.example"  # the team lead
    assert "Försenade ärenden" in escalation.text_body
    assert errand.reference in escalation.text_body
    assert "Handläggare: Ingrid Handläggare." in escalation.text_body
    assert errand.escalated_dt == later
    actions = [e.action for e in audit.history(session, errand)]
    assert actions.count("errand.deadline_reminder") == 1
    assert actions.count("errand.deadline_escalated") == 1


def test_a_backlog_of_overdue_errands_is_one_digest_per_person_and_day(session: Session) -> None:
    """Twelve overdue errands and three near their due date, some held by Ingrid: one email
    to her and one to each team lead, whatever the backlog; none more that day."""
    ingrid = caseworker(session, INGRID)
    now = utcnow()
    first = in_review(session)
    errands = [
        first,
        *like_in_review(session, first, [skatteverket_test_personnummer(i) for i in range(15)]),
    ]
    overdue, near, (late,) = errands[:12], errands[12:15], errands[15:]
    for errand in overdue:
        errand.due_dt = now - timedelta(days=3)
    for errand in near:
        casework.claim(session, ingrid, errand)
        errand.due_dt = now + timedelta(days=1, hours=1)
    late.due_dt = now + timedelta(days=9)  # not yet
    leads = session.scalars(
        select(StaffMember.email).where(StaffMember.is_team_lead, StaffMember.is_active)
    ).all()
    assert leads

    assert watch_deadlines(session, now, base_url=public_base_url()) == (3, 12)
    digests = _emails(session, "deadline_digest")
    assert sorted(e.to_address for e in digests) == sorted([*leads, ingrid_address(session)])
    to_ingrid = next(e for e in digests if e.to_address == ingrid_address(session))
    assert all(e.reference in to_ingrid.text_body for e in near)
    assert not any(e.reference in to_ingrid.text_body for e in overdue)
    to_lead = next(e for e in digests if e.to_address == leads[0])
    assert all(e.reference in to_lead.text_body for e in overdue)

    # The same day again, and with a new overdue errand: nothing more today…
    late.due_dt = now - timedelta(hours=1)
    assert watch_deadlines(session, now, base_url=public_base_url()) == (0, 0)
    assert len(_emails(session, "deadline_digest")) == len(digests)
    assert late.escalated_dt is None
    # …it is in the next day's digest.
    tomorrow = now + timedelta(days=1)
    assert watch_deadlines(session, tomorrow, base_url=public_base_url()) == (0, 1)
    assert len(_emails(session, "deadline_digest")) == len(digests) + len(leads)


def ingrid_address(session: Session) -> str:
    return session.scalars(
        select(StaffMember.email).where(StaffMember.personnummer == INGRID)
    ).one()


def test_an_unclaimed_errand_reminds_the_team_leads(session: Session) -> None:
    errand = in_review(session)
    errand.due_dt = utcnow() + timedelta(hours=3)
    assert watch_deadlines(session, base_url=public_base_url()) == (1, 0)
    (reminder,) = _emails(session, "deadline_digest")
    assert reminder.to_address == "johan.handlaggare@spv.example"


def test_errands_waiting_for_completion_are_not_chased(session: Session) -> None:
    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.request_completion(
        session, agent, errand, "Mer uppgifter.", base_url=public_base_url()
    )
    errand.due_dt = utcnow() - timedelta(days=1)
    assert watch_deadlines(session, base_url=public_base_url()) == (0, 0)


def test_maintenance_schedules_the_deadline_watch(
    runtime: Runtime, session: Session, worker: object
) -> None:
    errand = in_review(session)
    errand.due_dt = utcnow() + timedelta(hours=1)
    session.commit()

    def steps_done() -> bool:  # the watch skips errands a step holds locked at that moment
        session.expire_all()
        return all(m.done_dt for m in session.scalars(select(OutboxMessage)))

    wait_for(steps_done, timeout=20, message="the receipt and verify steps to finish")
    run_maintenance(runtime, check_deadlines=True)

    def reminded() -> bool:
        session.expire_all()
        return errand.reminded_dt is not None

    wait_for(reminded, timeout=20, message="the watch_deadlines actor to remind")
    assert len(_emails(session, "deadline_digest")) == 1


# --- the e-signature check ----------------------------------------------------------


def test_a_properly_signed_form_passes_the_signature_check(session: Session) -> None:
    errand = in_review(session)
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("passed", [])


def test_a_changed_sealed_pdf_fails_the_signature_check(session: Session) -> None:
    errand = in_review(session)
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    content = bytearray(signed.content)
    position = content.index(b"/Producer")
    content[position + 1 : position + 2] = b"p"
    signed.content = bytes(content)
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["seal_invalid"])


def test_a_changed_pdf_with_its_hash_rewritten_in_the_receive_event_fails(session: Session) -> None:
    """The receive event's record of the sealed file's hash is believed only under the audit
    key: rewritten in the database, it is not, and the changed file gets the full check."""
    errand = in_review(session)
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    signed.content = pdf_with_annotation(signed.content)
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.object_id == str(errand.id), AuditEvent.action == "errand.receive"
        )
    ).one()
    assert authentic_errand_event(session, errand.id, "receive") is event
    session.flush()
    # Someone with database superuser rights rewrites the event behind the trigger's back.
    forged = {**event.data, SEALED_SHA256: hashlib.sha256(signed.content).hexdigest()}
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    session.execute(
        text("UPDATE audit_event SET data = CAST(:d AS json) WHERE id = :i"),
        {"d": json.dumps(forged), "i": event.id},
    )
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.expire(event)
    assert authentic_errand_event(session, errand.id, "receive") is None
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["seal_invalid"])
    assert check.detail == "the document was changed after it was sealed"


def test_a_seal_by_another_certificate_under_the_same_root_fails(
    session: Session, runtime: Runtime, pki_dir: Path
) -> None:
    """The test TSA's certificate chains to the seal's root; its seal is not the agency's."""
    errand = in_review(session)
    order = session.scalars(select(EidOrder).where(EidOrder.errand_id == errand.id)).one()
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    paths = ensure_test_pki(pki_dir)
    material = seal_material(runtime.settings)
    by_tsa = dataclasses.replace(
        material,
        signing_cert=load_certificates(paths.tsa_cert)[0],
        private_key=load_private_key(paths.tsa_key, None, "TSA key"),
        chain=(),
    )
    assert order.document is not None
    signed.content = seal_pdf(
        order.document, material=by_tsa, evidence=[], signer_name="Bertil", lang="sv"
    )
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["seal_invalid"])
    assert check.detail == "the seal is not the agency's: another certificate signed it"


def test_a_signature_over_another_document_fails(session: Session) -> None:
    errand = in_review(session)
    order = session.scalars(select(EidOrder).where(EidOrder.errand_id == errand.id)).one()
    assert order.document is not None
    order.document = order.document.replace(b"%PDF-1.7", b"%PDF-1.6", 1)
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["signature_of_other_document"])


def test_a_signer_who_is_not_the_named_signatory_fails(session: Session) -> None:
    errand = in_review(session)
    errand.form_data = {**errand.form_data, "signatory_personnummer": "198507049859"}
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["signer_not_named_signatory"])


def test_a_missing_signed_form_fails(session: Session) -> None:
    errand = in_review(session)
    for doc in session.scalars(select(ErrandDocument).where(ErrandDocument.errand_id == errand.id)):
        session.delete(doc)
    session.flush()
    session.expire(errand, ["documents"])
    check = _signature_check(session, errand)
    assert (check.outcome.value, check.findings) == ("failed", ["signed_document_missing"])


def test_the_queue_filter_finds_failed_signature_checks(session: Session) -> None:
    clean = in_review(session)
    broken = in_review(
        session, personnummer="198112189876", given_name="Anna", family_name="Andersson"
    )
    signed = next(d for d in broken.documents if d.kind is DocumentKind.SIGNED)
    signed.content = signed.content[:-200]
    _recheck(session, broken)
    f = casework.QueueFilter(list=casework.QueueList.UNASSIGNED, checks="flagged")
    rows = [s.reference for s in casework.queue(session, caseworker(session, JOHAN), f).rows]
    assert rows == [broken.reference]
    assert clean.reference not in rows


def test_no_approval_over_a_failed_check(session: Session) -> None:
    errand = in_review(session)
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    signed.content = signed.content[:-200]
    _recheck(session, errand)
    agent = caseworker(session, INGRID)
    assert casework.claim(session, agent, errand)
    with pytest.raises(IllegalTransition) as refused:
        casework.approve_errand(session, agent, errand)
    assert refused.value.code == "checks_failed"
    assert errand.state is ErrandState.IN_REVIEW
    casework.reject_errand(
        session, agent, errand, RejectionReason.OTHER, "Trasig.", base_url=public_base_url()
    )
    assert errand.state is ErrandState.REJECTED


def test_the_errand_page_offers_no_approval_over_a_failed_check(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session)
    signed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    signed.content = signed.content[:-200]
    _recheck(session, errand)
    assert casework.claim(session, caseworker(session, INGRID), errand)
    session.commit()
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "En automatisk kontroll är underkänd." in page
    assert ">Godkänn</button>" not in page and ">Avslå</button>" in page
