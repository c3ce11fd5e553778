"""Both forms as an HR chief uses them: save as you go, resume, review, print and post, sign,
remove an orderer with a replacement, drafts that expire, in Swedish and English."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import RoleGrant
from app.core.agents import Agent
from app.db import utcnow
from app.documents.scan import decode_pdf_pages
from app.registrations.models import Channel, DocumentKind, Errand
from app.registrations.service import expire_lapsed
from tests.conftest import ANNA, DAVID, login, person_id, sign_with_bankid
from tests.factories import claim_and_approve, public_base_url, verifiers
from tests.support import csrf_token, post_step, wait_for, walk_registration
from workflows import pipeline
from workflows.runtime import Runtime
from workflows.states import ErrandState

GUNILLA = "196408239868"  # Statens testmyndighet's signatory (in the signatory register)
BERTIL = {
    "personnummer": "199001019810",
    "given_name": "Bertil",
    "family_name": "Berg",
    "email": "bertil.berg@testmyndighet.example",
    "title": "Administrativ chef",
    "phone": "070-123 45 67",
    "role": "orderer",
}


def _errand(session: Session, reference: str) -> Errand:
    session.expire_all()
    return session.scalars(select(Errand).where(Errand.reference == reference)).one()


def test_draft_is_saved_and_resumed_from_mina_arenden(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    response = post_step(client, "/anmalan-behorig-bestallare", {"orgnr": "2021004920"})
    base = response.headers["Location"].rsplit("/", 1)[0]
    response = post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all", "save_and_exit": "1"})
    assert response.headers["Location"] == "/mina-arenden"
    listing = client.get("/mina-arenden").get_data(as_text=True)
    assert f'href="{base}/person"' in listing  # "Fortsätt" goes to the first missing step
    # Steps ahead of the first missing one are not reachable yet; review neither.
    assert client.get(f"{base}/underskrift").headers["Location"] == f"{base}/person"
    assert client.get(f"{base}/granska").headers["Location"] == f"{base}/person"
    # A done step shows what was saved.
    assert 'value="2021004920"' in client.get(f"{base}/arbetsgivare").get_data(as_text=True)


def test_printed_form_waits_for_the_post_and_can_be_downloaded_again(
    client: FlaskClient, session: Session, runtime: Runtime
) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client)
    review = client.get(f"/anmalan-behorig-bestallare/{reference}/granska").get_data(True)
    assert "Fredrik Falk" in review and "19850704-9859" in review
    response = client.post(
        f"/mina-arenden/{reference}/skriv-ut", data={"csrf_token": csrf_token(review)}
    )
    assert response.status_code == 302
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_POST
    assert errand.channel is Channel.PAPER
    assert errand.expires_dt and errand.expires_dt > utcnow() + timedelta(days=50)

    page = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "Väntar på post" in page and "851 90 Sundsvall" in page
    pdf = client.get(f"/mina-arenden/{reference}/blankett.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    pages = decode_pdf_pages(pdf.data, runtime.settings.qr_key)
    assert pages and all(p.payload and p.payload.errand_id == errand.id for p in pages)
    # The draft can no longer be edited.
    edit = client.get(f"/anmalan-behorig-bestallare/{reference}/person")
    assert edit.headers["Location"] == f"/mina-arenden/{reference}"


def test_receipt_is_issued_when_received(
    client: FlaskClient, session: Session, worker: dramatiq.Worker
) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client)
    sign_with_bankid(client, reference)
    wait_for(
        lambda: any(d.kind is DocumentKind.RECEIPT for d in _errand(session, reference).documents),
        message="the receipt",
    )
    receipt = client.get(f"/mina-arenden/{reference}/kvittens.pdf")
    assert receipt.status_code == 200 and receipt.data.startswith(b"%PDF")


def test_removal_with_replacement_ends_one_grant_and_starts_another(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, ANNA)
    response = post_step(client, "/ta-bort-behorig-bestallare", {"orgnr": "202100-5489"})
    base = response.headers["Location"].rsplit("/", 1)[0]
    assert response.headers["Location"] == f"{base}/bestallare"
    response = post_step(
        client,
        f"{base}/bestallare",
        {"reason": "self", "personnummer": ANNA, "given_name": "Anna", "family_name": "Andersson"},
    )
    assert response.headers["Location"] == f"{base}/ersattare"
    # Anna is the only orderer: the form warns before she goes on.
    assert "ingen behörig beställare kvar" in client.get(f"{base}/ersattare").get_data(True)
    response = post_step(client, f"{base}/ersattare", {"wants_replacement": "yes", **BERTIL})
    assert response.headers["Location"] == f"{base}/underskrift"
    signatory = client.get(f"{base}/underskrift").get_data(True)
    # A new orderer is registered only with the signatory's signature (not Anna's own).
    assert 'value="Anna Andersson"' not in signatory
    response = post_step(
        client,
        f"{base}/underskrift",
        {
            "signatory_name": "Gunilla Generaldirektör",
            "signatory_personnummer": GUNILLA,
            "signatory_title": "Generaldirektör",
        },
    )
    review = client.get(f"{base}/granska").get_data(True)
    assert "Bertil Berg" in review and "ingen behörig beställare kvar" not in review
    reference = base.rsplit("/", 1)[-1]
    sign_with_bankid(client, reference, GUNILLA)

    errand = _errand(session, reference)
    system = Agent.system("test")
    pipeline.verify(session, errand.id, system, verifiers(session))
    checks = {c.name: c.outcome.value for c in errand.checks}
    assert checks == {
        "id_numbers": "passed",
        "employer": "passed",
        "signatory": "passed",
        "signature": "passed",
        "conflicts": "passed",
    }
    claim_and_approve(session, errand)
    pipeline.apply(session, errand.id, system, base_url=public_base_url())
    session.commit()
    grants = session.scalars(
        select(RoleGrant).where(RoleGrant.employer_id == 1, RoleGrant.role == "orderer")
    ).all()
    active = {g.person.given_name for g in grants if g.valid_to_dt is None}
    assert active == {"Bertil"}
    ended = [g for g in grants if g.person.given_name == "Anna"]
    assert ended[0].revoked_by_errand_id == errand.id


def test_removal_rules(client: FlaskClient, session: Session) -> None:
    login(client, session, ANNA)
    response = post_step(client, "/ta-bort-behorig-bestallare", {"orgnr": "202100-5489"})
    base = response.headers["Location"].rsplit("/", 1)[0]
    someone_else = {
        "reason": "self",
        "personnummer": "199001019810",
        "given_name": "Bertil",
        "family_name": "Berg",
    }
    # "Jag tar bort mig själv": the person is the one logged in, whatever was typed.
    response = post_step(client, f"{base}/bestallare", someone_else)
    assert response.headers["Location"] == f"{base}/ersattare"
    orderer = _errand(session, base.rsplit("/", 1)[-1]).progress.orderer  # type: ignore[union-attr]
    assert (orderer.personnummer, orderer.full_name) == (ANNA, "Anna Andersson")
    page = post_step(client, f"{base}/bestallare", {**someone_else, "reason": "left"})
    assert "Personen är inte behörig beställare hos arbetsgivaren." in page.get_data(True)
    post_step(
        client,
        f"{base}/bestallare",
        {"reason": "self", "personnummer": ANNA, "given_name": "Anna", "family_name": "Andersson"},
    )
    page = post_step(
        client, f"{base}/ersattare", {"wants_replacement": "yes", **BERTIL, "personnummer": ANNA}
    )
    assert "kan inte vara den som tas bort" in page.get_data(True)
    # No replacement: allowed, but flagged on the review page and for the caseworker.
    post_step(client, f"{base}/ersattare", {"wants_replacement": "no"})
    post_step(
        client,
        f"{base}/underskrift",
        {
            "signatory_name": "Anna Andersson",
            "signatory_personnummer": ANNA,
            "signatory_title": "Personalchef",
        },
    )
    assert "ingen behörig beställare kvar" in client.get(f"{base}/granska").get_data(True)


def test_lapsed_draft_expires(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client)
    errand = _errand(session, reference)
    errand.expires_dt = utcnow() - timedelta(seconds=1)
    session.commit()
    # Lapsed but not yet swept: no longer editable.
    edit = client.get(f"/anmalan-behorig-bestallare/{reference}/person")
    assert edit.headers["Location"] == f"/mina-arenden/{reference}"
    assert expire_lapsed(session) == 1
    session.commit()
    assert _errand(session, reference).state is ErrandState.EXPIRED
    assert expire_lapsed(session) == 0


def test_blank_forms_need_no_login(client: FlaskClient, runtime: Runtime) -> None:
    for path in ("/blanketter/anmalan.pdf", "/blanketter/borttag.pdf"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        pages = decode_pdf_pages(response.data, runtime.settings.qr_key)
        assert pages and all(p.payload and p.payload.errand_id is None for p in pages)


def test_the_form_in_english(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    page = client.get("/anmalan-behorig-bestallare?lang=en").get_data(as_text=True)
    assert '<html lang="en"' in page and "Organisation number" in page
    response = post_step(client, "/anmalan-behorig-bestallare", {"orgnr": "123"})
    assert "Enter a valid organisation number" in response.get_data(as_text=True)


def test_another_person_cannot_open_a_draft(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client)
    login(client, session, ANNA)
    for path in (
        f"/anmalan-behorig-bestallare/{reference}/person",
        f"/anmalan-behorig-bestallare/{reference}/granska",
        f"/mina-arenden/{reference}/blankett.pdf",
        f"/ta-bort-behorig-bestallare/{reference}/bestallare",
    ):
        assert client.get(path).status_code == 404, path
    assert person_id(session, ANNA) != person_id(session, DAVID)
