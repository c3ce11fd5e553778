"""The caseworker decides safely (issue 13): blocking findings stop approval, findings
that need review are approved over only with a note on each (kept in the history), no
rejection reason is chosen for the caseworker and a rejection is confirmed first; "Ta
nästa", the person's name and the completion marker in the queue, the employer lookup by
name; and a failing pipeline step shows on the errand at once."""

from __future__ import annotations

import dramatiq
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.casework import service as casework
from app.core.agents import Agent
from app.registrations import service as registrations
from app.registrations.codes import Finding, Severity
from app.registrations.models import Errand, RejectionReason
from tests.conftest import DAVID, INGRID, JOHAN, login
from tests.factories import (
    caseworker,
    claim_and_approve,
    david,
    in_review,
    stranger_registers_anna,
)
from tests.support import csrf_token, wait_for
from workflows import pipeline
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.states import ErrandState

NOT_IN_REGISTER = "198112189876"  # a signatory the register does not know


def _claimed_page(client: FlaskClient, session: Session, errand: Errand) -> str:
    assert casework.claim(session, caseworker(session, INGRID), errand)
    session.commit()
    login(client, session, INGRID, staff=True)
    return client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)


def test_blocking_and_review_findings_have_one_home() -> None:
    assert Finding.ALREADY_ORDERER.severity is Severity.BLOCKING
    assert Finding.CODE_NOT_OF_EMPLOYER.blocks_approval
    assert Finding.NOT_IN_SIGNATORY_REGISTER.needs_review
    assert Finding.WOULD_LEAVE_NO_ORDERER.needs_review
    assert Finding.SIGNED_ON_PAPER.severity is Severity.NOTE


def test_no_approval_when_the_person_already_holds_the_role(
    client: FlaskClient, session: Session
) -> None:
    errand = stranger_registers_anna(session)
    assert Finding.ALREADY_ORDERER in casework.blocking_findings(errand)
    page = _claimed_page(client, session, errand)
    assert "Ärendet kan inte godkännas." in page
    assert "Personen är redan behörig beställare hos arbetsgivaren." in page
    assert ">Godkänn</button>" not in page
    posted = client.post(
        f"/handlaggning/{errand.reference}/godkann", data={"csrf_token": csrf_token(page)}
    )
    assert posted.status_code == 302
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.IN_REVIEW


def test_a_finding_that_needs_review_is_approved_only_with_a_note(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session, signatory_personnummer=NOT_IN_REGISTER)
    assert casework.findings_to_acknowledge(errand) == [Finding.NOT_IN_SIGNATORY_REGISTER]
    page = _claimed_page(client, session, errand)
    url = f"/handlaggning/{errand.reference}/godkann"
    refused = client.post(url, data={"csrf_token": csrf_token(page)})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="error-summary"' in text and 'href="#note_not_in_signatory_register"' in text
    assert "Skriv hur du har granskat det här innan du godkänner." in text
    assert 'aria-invalid="true"' in text
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.IN_REVIEW

    note = "Ringde bolaget: Eva Ek är ny generaldirektör sedan maj."
    done = client.post(
        url, data={"csrf_token": csrf_token(page), "note_not_in_signatory_register": note}
    )
    assert done.status_code == 302
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.APPROVED
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "errand.findings_acknowledged",
            AuditEvent.object_id == str(errand.id),
        )
    ).one()
    assert event.data["notes"] == {"not_in_signatory_register": note}
    history = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "Anmärkningar granskade" in history and note in history


def test_no_reason_is_chosen_for_the_caseworker_and_a_rejection_is_confirmed(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session)
    page = _claimed_page(client, session, errand)
    assert "checked" not in page.split('name="reason_code"')[1].split(">")[0]
    url = f"/handlaggning/{errand.reference}/avsla"
    token = csrf_token(page)
    missing = client.post(url, data={"csrf_token": token, "reason": "Fel blankett."})
    assert missing.status_code == 400 and "Välj ett skäl." in missing.get_data(as_text=True)
    form = {"csrf_token": token, "reason_code": "other", "reason": "Fel blankett."}
    asked = client.post(url, data=form).get_data(as_text=True)
    assert "Ett avslag går inte att ångra." in asked and "Ja, avslå ärendet" in asked
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.IN_REVIEW
    assert client.post(url, data={**form, "confirmed": "1"}).status_code == 302
    session.expire_all()
    rejected = session.get_one(Errand, errand.id)
    assert rejected.state is ErrandState.REJECTED
    assert rejected.decision_code == RejectionReason.OTHER.value


def test_take_next_claims_the_unassigned_errand_due_first(session: Session) -> None:
    later = in_review(session)
    first = in_review(session, personnummer=NOT_IN_REGISTER, given_name="A", family_name="B")
    assert later.due_dt is not None
    first.due_dt = later.due_dt.replace(year=later.due_dt.year - 1)
    session.flush()
    johan = caseworker(session, JOHAN)
    assert casework.take_next(session, johan) is first
    assert first.assigned_staff_id == johan.id
    assert casework.take_next(session, caseworker(session, INGRID)) is later
    assert casework.take_next(session, johan) is None


def test_the_queue_names_the_person_and_marks_an_answered_completion(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.request_completion(session, agent, errand, "Titel?", base_url="http://x")
    registrations.answer_completion(session, david(session), errand, "Generaldirektör.")
    session.commit()
    assert errand.has_new_completion_answer
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning?lista=mina").get_data(as_text=True)
    assert errand.subject_name in page and "Komplettering inkommen" in page


def test_the_employer_lookup_finds_employers_by_name(client: FlaskClient, session: Session) -> None:
    assert [e.orgnr for e in casework.find_employers(session, "provverk")] == ["2021004920"]
    assert casework.find_employers(session, "100%_\x00") == []
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning/arbetsgivare?q=Provverket").get_data(as_text=True)
    assert "Behöriga beställare och administratörer" in page and "David" in page
    assert 'href="/handlaggning/arbetsgivare"' in client.get("/handlaggning").get_data(as_text=True)


def test_a_failing_step_shows_on_the_errand_at_once(
    runtime: Runtime,
    session: Session,
    worker: dramatiq.Worker,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(*_args: object) -> None:
        raise ConnectionError("the permission store does not answer")

    # The worker's threads run in this process: applying fails on every attempt.
    monkeypatch.setattr(pipeline, "_register", unreachable)
    with runtime.unit_of_work() as s:
        errand = in_review(s)
        agent = caseworker(s, INGRID)
        assert casework.claim(s, agent, errand)
        assert casework.approve_errand(s, agent, errand)
        s.flush()
        message = s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.actor_name == "apply_errand", OutboxMessage.errand_id == errand.id
            )
        ).one()
        s.info.pop("outbox_pending", None)  # sent below instead, with a short retry budget
    actor = runtime.broker.get_actor("apply_errand")
    runtime.broker.enqueue(
        actor.message_with_options(
            kwargs=message.kwargs,
            outbox_id=message.id,
            max_retries=2,
            min_backoff=1500,
            max_backoff=1500,
        )
    )

    def retrying() -> Errand | None:
        session.expire_all()
        found = session.get_one(Errand, errand.id)
        return found if found.retrying_step else None

    shown = wait_for(retrying, timeout=5, message="the first failed attempt on the errand")
    assert shown.state is ErrandState.APPROVED  # not given up yet, and says so
    assert (shown.retrying_step, shown.step_max_attempts) == ("apply", 3)
    assert shown.step_error == "ConnectionError: the permission store does not answer"
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert f"Tekniskt fel – försöker igen, försök {shown.step_attempt} av 3" in page
    assert "the permission store does not answer" in page
    assert errand.reference in client.get("/handlaggning?lista=fel").get_data(as_text=True)

    def failed() -> bool:
        session.expire_all()
        return session.get_one(Errand, errand.id).state is ErrandState.FAILED

    wait_for(failed, timeout=15, message="the errand to be marked failed")
    attempts = session.scalars(
        select(AuditEvent.data).where(
            AuditEvent.action == "errand.attempt_failed", AuditEvent.object_id == str(errand.id)
        )
    ).all()
    assert [a["attempt"] for a in attempts] == [1, 2, 3]


def test_a_step_that_succeeds_again_clears_the_failure(session: Session) -> None:
    errand = in_review(session)
    pipeline.record_failed_attempt(
        session,
        errand.id,
        "verify",
        attempt=1,
        max_attempts=9,
        error="OperationalError: server closed the connection",
        agent=Agent.system("verify_errand"),
    )
    session.refresh(errand)
    assert errand.retrying_step == "verify"
    assert [e.reference for e in _failed_list(session)] == [errand.reference]
    pipeline.clear_failed_attempts(session, errand.id, "verify")
    session.refresh(errand)
    assert errand.retrying_step is None and _failed_list(session) == []


def _failed_list(session: Session) -> list[Errand]:
    f = casework.QueueFilter(list=casework.QueueList.FAILED)
    return casework.queue(session, caseworker(session, INGRID), f).rows


def test_withdrawing_asks_first(client: FlaskClient, session: Session) -> None:
    errand = in_review(session)
    session.commit()
    login(client, session, DAVID)
    url = f"/mina-arenden/{errand.reference}"
    token = csrf_token(client.get(url).get_data(as_text=True))
    asked = client.post(f"{url}/aterkalla", data={"csrf_token": token}).get_data(as_text=True)
    assert "Återkalla ärendet" in asked and "Ja, återkalla ärendet" in asked
    assert f'href="{url}"' in asked  # Avbryt leads back
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.IN_REVIEW
    client.post(f"{url}/aterkalla", data={"csrf_token": token, "confirmed": "1"})
    session.expire_all()
    assert session.get_one(Errand, errand.id).state is ErrandState.WITHDRAWN


def test_the_submitter_sees_granted_or_rejected_the_next_step_and_the_decision_date(
    client: FlaskClient, session: Session
) -> None:
    granted, rejected, delayed = (
        in_review(session, personnummer=number, given_name=name, family_name="Test")
        for number, name in (
            ("198112189876", "Anna"),
            ("199001019810", "Bertil"),
            ("197205119824", "Cecilia"),
        )
    )
    ingrid = caseworker(session, INGRID)
    assert claim_and_approve(session, granted)
    assert pipeline.apply(session, granted.id, Agent.system("test"), base_url="http://x")
    assert pipeline.archive(session, granted.id, Agent.system("test"))
    assert granted.state is ErrandState.CLOSED
    casework.claim(session, ingrid, rejected)
    casework.reject_errand(
        session, ingrid, rejected, RejectionReason.OTHER, "Fel blankett.", base_url="http://x"
    )
    session.commit()
    pipeline.record_failed_attempt(
        session,
        delayed.id,
        "verify",
        attempt=2,
        max_attempts=9,
        error="OperationalError",
        agent=Agent.system("verify_errand"),
    )
    session.commit()
    pending = in_review(session)
    session.commit()
    login(client, session, DAVID)
    page = client.get("/mina-arenden").get_data(as_text=True)
    rows = {
        e.reference: page.split(e.reference)[2].split("</tr>")[0]
        for e in (granted, rejected, delayed, pending)
    }
    assert "Beviljad" in rows[granted.reference] and "Avslutad" not in page
    assert "Avslagen" in rows[rejected.reference]
    assert "Försenad – tekniskt fel hos SPV" in rows[delayed.reference]
    assert pending.due_dt is not None
    assert "SPV handlägger ärendet" in rows[pending.reference]
    assert pending.due_dt.strftime("%Y-%m-%d") in rows[pending.reference]
    assert pending.subject_name == "Fredrik Falk" and "Fredrik Falk" in rows[pending.reference]
    one = client.get(f"/mina-arenden/{delayed.reference}").get_data(as_text=True)
    assert "Ett tekniskt fel hos SPV försenar ärendet." in one


def test_the_error_shown_holds_no_personnummer_and_no_control_characters() -> None:
    from workflows.failures import describe

    error = describe(ValueError("Key (personnummer)=(198112189876) exists\x00\n  again"))
    assert error == "ValueError: Key (personnummer)=(19811218-XXXX) exists again"
