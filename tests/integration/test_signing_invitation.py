"""Signing by invitation, as the HR chief and the signatory live it: David sends the form to
Eva, who logs in with her own BankID in her own session another day and signs it or
declines; nobody else opens the link; David reminds, takes back, prints or withdraws; the
invitation expires with the draft and Eva is reminded before; a signing abandoned or
failed at BankID goes back to where it can be signed again, with BankID's message."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.eid.models import EidOrder
from app.notifications.models import EmailMessage
from app.registrations import invitations
from app.registrations.models import (
    Channel,
    Errand,
    InvitationKind,
    InvitationOutcome,
    SigningInvitation,
)
from app.registrations.service import expire_lapsed
from tests.conftest import ANNA, DAVID, EVA, approve_in_simulator, login
from tests.factories import david, public_base_url, registration_draft
from tests.support import csrf_token, wait_for, walk_registration
from workflows.runtime import Runtime
from workflows.states import ErrandState
from workflows.worker import run_maintenance

EVA_EMAIL = "eva.ek@provverket.example"


def _errand(session: Session, reference: str) -> Errand:
    session.expire_all()
    return session.scalars(select(Errand).where(Errand.reference == reference)).one()


def _post(client: FlaskClient, page: str, action: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **(data or {})})


def _emails(session: Session, template: str) -> list[EmailMessage]:
    return list(
        session.scalars(
            select(EmailMessage).where(EmailMessage.template == template).order_by(EmailMessage.id)
        )
    )


def _link(email: EmailMessage) -> str:
    found = re.search(r"(/underskrift/[A-Za-z0-9_-]+)", email.text_body)
    assert found, email.text_body
    return found.group(1)


def _sent_to_eva(client: FlaskClient, session: Session) -> tuple[str, str]:
    """David fills in the registration and sends it to Eva; returns (reference, link)."""
    login(client, session, DAVID)
    reference = walk_registration(client)
    review = f"/anmalan-behorig-bestallare/{reference}/granska"
    response = _post(
        client,
        review,
        f"/mina-arenden/{reference}/skicka-till-firmatecknaren",
        {"email": EVA_EMAIL},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    [email] = _emails(session, "signing_invitation")
    assert email.to_address == EVA_EMAIL and email.errand_id == _errand(session, reference).id
    return reference, _link(email)


def _other_browser(app: Flask, session: Session, personnummer: str) -> FlaskClient:
    browser = app.test_client()
    login(browser, session, personnummer)
    return browser


def test_eva_signs_later_in_her_own_session(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_SIGNATORY
    draft_expiry = errand.expires_dt
    assert draft_expiry is not None and draft_expiry > utcnow() + timedelta(days=29)
    # The token is stored hashed only; the email's link is the only copy.
    token = link.rsplit("/", 1)[-1]
    stored = session.scalars(select(SigningInvitation)).one()
    assert stored.token_sha256 == invitations.token_digest(token) and token not in str(
        stored.token_sha256
    )
    mine = client.get("/mina-arenden").get_data(as_text=True)
    assert "Väntar på firmatecknarens underskrift" in mine
    errand_page = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "Påminn firmatecknaren" in errand_page and EVA_EMAIL in errand_page

    eva = _other_browser(app, session, EVA)
    opened = eva.get(link)  # the link leads Eva on to the errand's page
    assert opened.status_code == 302 and opened.headers["Location"] == page
    invitation = eva.get(page)
    assert invitation.status_code == 200
    html = invitation.get_data(as_text=True)
    assert "Fredrik" in html and "Avböj att skriva under" in html
    pdf = eva.get(f"{page}/blankett.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    started = _post(eva, page, f"{page}/signera", {"device": "other"})
    assert started.headers["Location"] == f"{page}/signera"
    assert _errand(session, reference).state is ErrandState.AWAITING_SIGNATURE
    approve_in_simulator(app, EVA)
    finished = eva.get(f"{page}/signera")
    assert finished.headers["Location"] == "/underskrift/klar"

    errand = _errand(session, reference)
    assert errand.state is ErrandState.RECEIVED and errand.channel is Channel.E_SIGN
    assert stored.outcome is InvitationOutcome.SIGNED
    [told] = _emails(session, "signed_by_signatory")
    assert told.to_address == errand.submitted_by.email
    # The link has done its one job.
    assert eva.get(link).status_code == 404 and eva.get(page).status_code == 404
    assert "Mottagen" in client.get(f"/mina-arenden/{reference}").get_data(as_text=True)


def test_only_the_named_signatory_opens_the_link(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    # Not logged in: asked to log in first, nothing shown.
    anonymous = app.test_client().get(link)
    assert anonymous.status_code == 302 and "/logga-in" in anonymous.headers["Location"]
    # The submitter and anyone else: the link does not exist for them.
    assert client.get(link).status_code == 404
    anna = _other_browser(app, session, ANNA)
    assert client.get(page).status_code == 404
    for path in (link, page, f"{page}/blankett.pdf", "/underskrift/" + "A" * 43):
        response = anna.get(path)
        assert response.status_code == 404
        assert reference not in response.get_data(as_text=True)
    refused = _post(anna, "/mina-arenden", f"{page}/avboj", {"reason": "Nej"})
    assert refused.status_code == 404
    assert _errand(session, reference).state is ErrandState.AWAITING_SIGNATORY


def test_eva_declines_with_a_reason_and_david_can_change_and_send_again(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    eva = _other_browser(app, session, EVA)
    empty = _post(eva, page, f"{page}/avboj", {"reason": "  "})
    assert empty.status_code == 400
    assert "Skriv varför du inte skriver under." in empty.get_data(as_text=True)
    declined = _post(eva, page, f"{page}/avboj", {"reason": "Fel person, det ska vara Gustav."})
    assert declined.headers["Location"] == "/underskrift/klar"

    errand = _errand(session, reference)
    assert errand.state is ErrandState.DRAFT
    [told] = _emails(session, "signing_declined")
    assert "Fel person, det ska vara Gustav." in told.text_body
    review = client.get(f"/anmalan-behorig-bestallare/{reference}/granska").get_data(True)
    assert "Fel person, det ska vara Gustav." in review
    assert eva.get(link).status_code == 404 and eva.get(page).status_code == 404


def test_david_reminds_at_most_once_a_day(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    errand_page = f"/mina-arenden/{reference}"
    _post(client, errand_page, f"{errand_page}/paminn")
    assert "nyss fått en påminnelse" in client.get(errand_page).get_data(as_text=True)
    assert len(_emails(session, "signing_invitation")) == 1

    for sent in session.scalars(select(SigningInvitation)):
        sent.created_dt -= timedelta(days=1, minutes=1)
    session.flush()
    _post(client, errand_page, f"{errand_page}/paminn")
    _first, reminder = _emails(session, "signing_invitation")
    assert reminder.subject.startswith("Påminnelse")
    second_link = _link(reminder)
    assert second_link != link
    eva = _other_browser(app, session, EVA)
    assert eva.get(link).status_code == 302 and eva.get(second_link).status_code == 302


def test_taking_back_printing_or_withdrawing_ends_the_links(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    eva = _other_browser(app, session, EVA)
    mine = f"/mina-arenden/{reference}"
    taken_back = _post(client, mine, f"{mine}/ta-tillbaka")
    assert taken_back.headers["Location"].endswith("/granska")
    assert _errand(session, reference).state is ErrandState.DRAFT
    assert eva.get(link).status_code == 404 and eva.get(page).status_code == 404

    review = f"/anmalan-behorig-bestallare/{reference}/granska"
    _post(client, review, f"{mine}/skicka-till-firmatecknaren", {"email": EVA_EMAIL})
    second = _link(_emails(session, "signing_invitation")[-1])
    assert eva.get(second).status_code == 302 and eva.get(page).status_code == 200
    _post(client, mine, f"{mine}/skriv-ut")
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_POST and errand.channel is Channel.PAPER
    assert eva.get(second).status_code == 404 and eva.get(page).status_code == 404
    outcomes = [i.outcome for i in session.scalars(select(SigningInvitation))]
    assert sorted(outcomes) == sorted([InvitationOutcome.RECALLED, InvitationOutcome.PRINTED])


def test_the_invitation_reminds_before_it_expires_with_the_draft(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    reference, link = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    errand = _errand(session, reference)
    assert invitations.remind_before_expiry(session, base_url=public_base_url()) == 0
    errand.expires_dt = utcnow() + timedelta(days=2)
    session.flush()
    assert invitations.remind_before_expiry(session, base_url=public_base_url()) == 1
    assert invitations.remind_before_expiry(session, base_url=public_base_url()) == 0
    reminder = _emails(session, "signing_invitation")[-1]
    assert reminder.subject.startswith("Påminnelse") and reminder.to_address == EVA_EMAIL

    errand.expires_dt = utcnow() - timedelta(seconds=1)
    session.flush()
    assert expire_lapsed(session) == 1
    assert _errand(session, reference).state is ErrandState.EXPIRED
    assert {i.outcome for i in session.scalars(select(SigningInvitation))} == {
        InvitationOutcome.EXPIRED
    }
    eva = _other_browser(app, session, EVA)
    assert eva.get(link).status_code == 404 and eva.get(page).status_code == 404


def test_a_signing_abandoned_or_failed_at_bankid_can_be_signed_again(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    from devtools.bankid_simulator.app_actions import cancel_in_app

    reference, _link_sent = _sent_to_eva(client, session)
    page = f"/underskrift/arende/{reference}"
    expiry = _errand(session, reference).expires_dt
    eva = _other_browser(app, session, EVA)

    # Eva cancels in the BankID app: BankID's message (RFA6), and she can sign again.
    _post(eva, page, f"{page}/signera", {"device": "other"})
    order_ref = session.scalars(select(EidOrder.order_ref).order_by(EidOrder.id.desc())).first()
    assert order_ref is not None
    cancel_in_app(session, order_ref)
    failed = eva.get(f"{page}/signera").get_data(as_text=True)
    assert "Åtgärden avbruten." in failed and "Försök igen" in failed
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_SIGNATORY and errand.expires_dt == expiry

    # She starts again and closes the page: the sweep returns the errand to her.
    _post(eva, page, f"{page}/signera", {"device": "other"})
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_SIGNATURE
    errand.expires_dt = utcnow() - timedelta(seconds=1)
    session.flush()
    assert expire_lapsed(session) == 1
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_SIGNATORY and errand.expires_dt == expiry

    # And she signs after all.
    _post(eva, page, f"{page}/signera", {"device": "other"})
    approve_in_simulator(app, EVA)
    assert eva.get(f"{page}/signera").headers["Location"] == "/underskrift/klar"
    assert _errand(session, reference).state is ErrandState.RECEIVED


def test_the_hr_chief_who_left_the_signing_page_signs_again(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client)
    review = f"/anmalan-behorig-bestallare/{reference}/granska"
    _post(client, review, f"/mina-arenden/{reference}/signera", {"device": "other"})
    assert _errand(session, reference).state is ErrandState.AWAITING_SIGNATURE
    # Left the page: the errand page offers nothing stuck, and signing again works.
    page = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "påbörjats men inte avslutats" in page
    again = _post(
        client, f"/mina-arenden/{reference}", f"/mina-arenden/{reference}/signera", {"device": "x"}
    )
    assert again.headers["Location"] == f"/mina-arenden/{reference}/signera"
    orders = session.scalars(select(EidOrder).order_by(EidOrder.id)).all()
    assert [o.status.value for o in orders[-2:]] == ["failed", "pending"]
    approve_in_simulator(app, EVA)
    assert client.get(f"/mina-arenden/{reference}/signera").status_code == 302
    assert _errand(session, reference).state is ErrandState.RECEIVED


def test_the_scheduled_actor_reminds_the_signatory_before_expiry(
    runtime: Runtime, session: Session, worker: object
) -> None:
    errand = registration_draft(session)
    invitations.send_to_signatory(
        session, david(session), errand, EVA_EMAIL, base_url=public_base_url()
    )
    errand.expires_dt = utcnow() + timedelta(days=2)
    session.commit()
    run_maintenance(runtime, check_deadlines=True)

    def reminded() -> bool:
        session.expire_all()
        kinds = session.scalars(
            select(SigningInvitation.kind).where(SigningInvitation.errand_id == errand.id)
        ).all()
        return InvitationKind.EXPIRY_REMINDER in kinds

    wait_for(reminded, timeout=20, message="the remind_signatories actor to remind Eva")
    reminder = _emails(session, "signing_invitation")[-1]
    assert reminder.subject.startswith("Påminnelse") and reminder.to_address == EVA_EMAIL
