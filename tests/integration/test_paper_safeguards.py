"""Fraud protection for the paper channel (issue 18, items 1 and 2), on PostgreSQL:

- the employer's lock (spärr): its signatory switches it on and off; a posted form for the
  employer is stopped when intake matches its scanned pages by their QR code, the submitter
  and the signatory are emailed; an e-signed registration is not stopped;
- the waiting period: an approved posted registration takes effect only when the
  scheduled actor runs after the period (a moved clock), once however often it runs; an
  e-signed one takes effect at approval; the employer's orderer stops it ("Det här känner
  vi inte till"): back to a caseworker as suspected fraud, and never applied.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import Employer, RoleGrant
from app.audit.models import AuditEvent
from app.casework import service as casework
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.intake import clerk_actions
from app.intake.models import PageOutcome, PageStatus, PaperForm, ScanPage
from app.notifications.models import EmailMessage
from app.registrations.models import Errand, RejectionReason
from app.safeguards import service as safeguards
from tests.conftest import ANNA, DAVID, EVA, INGRID, login, person_id
from tests.factories import (
    caseworker,
    claim_and_approve,
    clerk,
    confirm_signed_paper,
    in_review,
    printed_for_post,
    public_base_url,
    received_on_paper,
    registration_draft,
    scanned,
    verifiers,
)
from tests.support import csrf_token
from workflows import actors, pipeline
from workflows.outbox import OutboxMessage
from workflows.state_machine import transition
from workflows.states import Action, ErrandState, IllegalTransition

SYSTEM = Agent.system("test")
FREDRIK = "198507049859"
PROVVERKET = "2021004920"
STATENS_TESTMYNDIGHET = "2021005489"
PERIOD = timedelta(days=14)


def _person(session: Session, personnummer: str) -> Agent:
    return Agent(AgentKind.PERSON, person_id(session, personnummer), personnummer)


def _employer(session: Session, orgnr: str) -> Employer:
    employer = access.find_employer(session, orgnr)
    assert employer is not None
    return employer


def _posted_in_review(session: Session) -> Errand:
    """David's registration of Fredrik at Provverket: printed, signed by hand, posted,
    scanned, confirmed by the clerk and verified."""
    errand = received_on_paper(session, printed_for_post(session, registration_draft(session)))
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert errand.state is ErrandState.IN_REVIEW
    return errand


def _approved_on_paper(session: Session) -> Errand:
    """Approved, and the step that starts the waiting period run."""
    errand = _posted_in_review(session)
    assert claim_and_approve(session, errand)
    assert errand.state is ErrandState.AWAITING_EFFECT
    assert safeguards.start_waiting_period(
        session, errand.id, period=PERIOD, base_url=public_base_url()
    )
    session.commit()
    return errand


def _emails(session: Session, errand: Errand, template: str) -> set[str]:
    return set(
        session.scalars(
            select(EmailMessage.to_address).where(
                EmailMessage.errand_id == errand.id, EmailMessage.template == template
            )
        )
    )


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _fredrik_is_orderer(session: Session, employer: Employer) -> bool:
    return bool(access.orderer_grants(session, employer.id, FREDRIK))


@pytest.fixture
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], datetime]:
    """Moves the clock of the scheduled step (and the state machine's) forward by a time."""

    def move(by: timedelta) -> datetime:
        moved = utcnow() + by
        monkeypatch.setattr(safeguards, "utcnow", lambda: moved)
        return moved

    return move


# ---- the lock ------------------------------------------------------------------------


def test_only_a_signatory_switches_the_lock_and_only_at_their_employer(session: Session) -> None:
    provverket = _employer(session, PROVVERKET)
    other = _employer(session, STATENS_TESTMYNDIGHET)
    eva, david = _person(session, EVA), _person(session, DAVID)
    with pytest.raises(safeguards.Refused):
        safeguards.switch_on(session, david, provverket, None)  # its orderer, no signatory
    with pytest.raises(safeguards.Refused):
        safeguards.switch_on(session, eva, other, None)  # another employer's
    safeguards.switch_on(session, eva, provverket, "spärr@provverket.example")
    safeguards.switch_on(session, eva, provverket, None)  # on already: one lock
    assert safeguards.locked_employer_ids(session, {provverket.id, other.id}) == {provverket.id}
    with pytest.raises(safeguards.Refused):
        safeguards.switch_off(session, david, provverket)
    assert safeguards.switch_off(session, eva, provverket)
    assert safeguards.lock_of(session, provverket.id) is None
    assert [e.data["contact_email"] for e in _events(session, "paper_lock.on")] == [
        "spärr@provverket.example"
    ]
    [off] = _events(session, "paper_lock.off")
    assert (off.object_type, off.object_id, off.actor) == (
        "employer",
        str(provverket.id),
        eva.audit_label,
    )


def test_a_posted_form_is_stopped_when_matched_and_its_people_are_emailed(
    session: Session,
) -> None:
    provverket = _employer(session, PROVVERKET)
    safeguards.switch_on(session, _person(session, EVA), provverket, "spärr@provverket.example")
    errand = printed_for_post(session, registration_draft(session))
    scanned(session, errand)

    assert errand.state is ErrandState.STOPPED
    pages = list(session.scalars(select(ScanPage).where(ScanPage.errand_id == errand.id)))
    assert {(p.outcome, p.status, p.set_aside_reason) for p in pages} == {
        (PageOutcome.PAPER_LOCKED, PageStatus.DISCARDED, safeguards.PAPER_LOCK_REASON)
    }
    assert len(pages) == 2
    assert session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id)) is None
    # Another employer's posted form is matched as before.
    elsewhere = printed_for_post(
        session,
        registration_draft(
            session,
            orgnr=STATENS_TESTMYNDIGHET,
            signatory_name="Gunilla Generaldirektör",
            signatory_personnummer="196408239868",
        ),
    )
    scanned(session, elsewhere)
    assert session.scalar(select(PaperForm).where(PaperForm.errand_id == elsewhere.id))
    assert elsewhere.state is ErrandState.AWAITING_POST
    [stop] = _events(session, "errand.stop_at_intake")
    assert (stop.object_id, stop.data["reason"]) == (str(errand.id), "paper_lock")
    queued = session.scalars(
        select(OutboxMessage.actor_name).where(OutboxMessage.errand_id == errand.id)
    ).all()
    assert "notify_stopped" in queued
    # The step the stop queued: the submitter and the signatory are told, once.
    assert safeguards.notify_stopped(session, errand.id, base_url=public_base_url()) == 3
    assert safeguards.notify_stopped(session, errand.id, base_url=public_base_url()) == 0
    assert _emails(session, errand, "paper_lock_stopped") == {
        "david.dahl@provverket.example",
        "eva.ek@provverket.example",
        "spärr@provverket.example",
    }
    # Stopped for good: not taken in afterwards.
    with pytest.raises(IllegalTransition):
        transition(session, errand, Action.RECEIVE, clerk(session))


def test_an_e_signed_registration_is_not_stopped_and_takes_effect_at_approval(
    session: Session,
) -> None:
    provverket = _employer(session, PROVVERKET)
    safeguards.switch_on(session, _person(session, EVA), provverket, None)
    errand = in_review(session)
    assert claim_and_approve(session, errand)
    assert errand.state is ErrandState.APPROVED and errand.takes_effect_dt is None
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert _fredrik_is_orderer(session, provverket)


def test_the_clerk_is_told_of_the_lock_when_matching_by_hand(session: Session) -> None:
    errand = printed_for_post(session, registration_draft(session))
    scanned(session, errand)  # matched before the lock went on
    form = session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))
    assert form is not None
    safeguards.switch_on(session, _person(session, EVA), _employer(session, PROVVERKET), None)
    with pytest.raises(clerk_actions.IntakeError) as refused:
        confirm_signed_paper(session, form)
    assert refused.value.code == "paper_locked"
    assert errand.state is ErrandState.AWAITING_POST and errand.received_dt is None


# ---- the waiting period --------------------------------------------------------------


def test_a_posted_registration_takes_effect_after_the_waiting_period_once(
    session: Session, moved_clock: Callable[[timedelta], datetime]
) -> None:
    errand = _approved_on_paper(session)
    provverket = _employer(session, PROVVERKET)
    assert errand.decided_dt is not None
    assert errand.takes_effect_dt == errand.decided_dt + PERIOD
    # The orderer (David) and the signatory (Eva) are told, with the link to stop it.
    emails = session.scalars(
        select(EmailMessage).where(
            EmailMessage.errand_id == errand.id, EmailMessage.template == "waiting_period_started"
        )
    ).all()
    assert {e.to_address for e in emails} >= {"eva.ek@provverket.example"}
    orderer_addresses = {
        g.contact_email or g.person.email
        for g in session.scalars(select(RoleGrant).where(RoleGrant.employer_id == provverket.id))
        if g.role.value == "orderer" and g.valid_to_dt is None
    }
    assert orderer_addresses and orderer_addresses <= {e.to_address for e in emails}
    assert all(f"/vantetid/{errand.reference}" in e.text_body for e in emails)
    # The caseworkers see it among the errands waiting out their period.
    ingrid = caseworker(session)
    waiting = casework.queue(session, ingrid, casework.QueueFilter(list=casework.QueueList.WAITING))
    assert [e.id for e in waiting.rows] == [errand.id]
    assert casework.counts(session, ingrid)[casework.QueueList.WAITING] == 1

    moved_clock(PERIOD - timedelta(hours=1))
    actors.apply_waiting_periods()  # before the end: nothing
    session.expire_all()
    assert errand.state is ErrandState.AWAITING_EFFECT
    assert not _fredrik_is_orderer(session, provverket)

    moved_clock(PERIOD + timedelta(minutes=1))
    actors.apply_waiting_periods()
    actors.apply_waiting_periods()  # run twice: once
    session.expire_all()
    assert errand.state is ErrandState.APPROVED
    assert len(_events(session, "errand.take_effect")) == 1
    applies = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.errand_id == errand.id, OutboxMessage.actor_name == "apply_errand"
        )
    ).all()
    assert len(applies) == 1
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert _fredrik_is_orderer(session, provverket)


def test_an_orderer_stops_it_as_suspected_fraud_and_it_is_never_applied(
    session: Session, moved_clock: Callable[[timedelta], datetime]
) -> None:
    errand = _approved_on_paper(session)
    anna = _person(session, ANNA)  # an orderer, at another employer
    with pytest.raises(safeguards.NotFound):
        safeguards.waiting_errand(session, anna, errand.reference)
    with pytest.raises(safeguards.Refused):
        safeguards.dispute(session, anna, errand)
    david = _person(session, DAVID)  # Provverket's orderer
    assert safeguards.waiting_errand(session, david, errand.reference) is errand
    safeguards.dispute(session, david, errand)
    session.commit()
    assert errand.state is ErrandState.SUSPECTED_FRAUD
    assert errand.decided_dt is None and errand.takes_effect_dt is None
    [event] = _events(session, "errand.dispute")
    assert event.actor == david.audit_label
    with pytest.raises(safeguards.Refused):
        safeguards.dispute(session, _person(session, EVA), errand)  # stopped already

    moved_clock(PERIOD * 2)
    actors.apply_waiting_periods()
    session.expire_all()
    assert errand.state is ErrandState.SUSPECTED_FRAUD
    assert not pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert not _fredrik_is_orderer(session, _employer(session, PROVVERKET))

    # Back with the caseworker who approved it, in the lists of suspected fraud and hers.
    ingrid = caseworker(session)
    fraud = casework.queue(
        session, ingrid, casework.QueueFilter(list=casework.QueueList.SUSPECTED_FRAUD)
    )
    mine = casework.queue(session, ingrid, casework.QueueFilter(list=casework.QueueList.MINE))
    assert [e.id for e in fraud.rows] == [errand.id] and errand.id in [e.id for e in mine.rows]
    casework.reject_errand(
        session,
        ingrid,
        errand,
        RejectionReason.SUSPECTED_FRAUD,
        "Arbetsgivaren känner inte till anmälan.",
        base_url=public_base_url(),
    )
    assert errand.state is ErrandState.REJECTED


# ---- the pages -----------------------------------------------------------------------


def test_the_signatory_switches_the_lock_on_the_page_with_a_fresh_e_id(
    client: FlaskClient, session: Session
) -> None:
    provverket = _employer(session, PROVVERKET)
    login(client, session, DAVID)  # the orderer sees the lock, cannot switch it
    page = client.get("/sparr").get_data(as_text=True)
    assert "Provverket" in page and "Slå på spärren" not in page
    refused = client.post(
        f"/sparr/{provverket.id}",
        data={"csrf_token": csrf_token(page), f"e{provverket.id}-switch": "on"},
    )
    assert refused.status_code == 403

    login(client, session, EVA)
    page = client.get("/sparr").get_data(as_text=True)
    assert "Slå på spärren" in page
    no_token = client.post(f"/sparr/{provverket.id}", data={f"e{provverket.id}-switch": "on"})
    assert no_token.status_code == 400 and safeguards.lock_of(session, provverket.id) is None
    with client.session_transaction() as browser:
        browser["login_ts"] -= 3600  # logged in an hour ago: BankID again first
    stale = client.post(
        f"/sparr/{provverket.id}",
        data={"csrf_token": csrf_token(page), f"e{provverket.id}-switch": "on"},
    )
    assert stale.status_code == 302 and "/logga-in" in stale.headers["Location"]
    assert safeguards.lock_of(session, provverket.id) is None

    login(client, session, EVA)
    page = client.get("/sparr").get_data(as_text=True)
    on = client.post(
        f"/sparr/{provverket.id}",
        data={
            "csrf_token": csrf_token(page),
            f"e{provverket.id}-switch": "on",
            f"e{provverket.id}-contact_email": "spärr@provverket.example",
        },
        follow_redirects=True,
    )
    assert "Spärren är på" in on.get_data(as_text=True)
    session.expire_all()
    assert safeguards.lock_of(session, provverket.id) is not None


def test_the_orderer_stops_a_registration_from_the_emailed_link(
    client: FlaskClient, session: Session
) -> None:
    errand = _approved_on_paper(session)
    login(client, session, ANNA)
    assert client.get(f"/vantetid/{errand.reference}").status_code == 404  # another employer
    login(client, session, DAVID)
    locks = client.get("/sparr").get_data(as_text=True)  # the registrations to check there
    assert f'href="/vantetid/{errand.reference}"' in locks
    page = client.get(f"/vantetid/{errand.reference}").get_data(as_text=True)
    assert "Det här känner vi inte till" in page
    stopped = client.post(
        f"/vantetid/{errand.reference}",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert "Anmälan är stoppad" in stopped.get_data(as_text=True)
    session.expire_all()
    assert errand.state is ErrandState.SUSPECTED_FRAUD
    # The caseworker who approved it sees it in her list and why, and may reject it.
    login(client, session, INGRID, staff=True)
    listed = client.get("/handlaggning?lista=bedrageri").get_data(as_text=True)
    assert errand.reference in listed
    shown = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "arbetsgivaren svarade ”Det här känner vi inte till”" in shown
    assert f'action="/handlaggning/{errand.reference}/avsla"' in shown
    assert "Stoppad av arbetsgivaren i väntetiden" in shown  # in the history
