"""A start page per role: after login caseworkers land on their queue, clerks on the
scanning page, and an employer's people on "Att göra", which lists what waits for them."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.casework import service as casework
from tests.conftest import ANNA, DAVID, INGRID, KARIN, approve_in_simulator
from tests.factories import caseworker, in_review, public_base_url, registration_draft
from tests.support import csrf_token

GRETA = "198703159817"


def _log_in(client: FlaskClient, personnummer: str, next_page: str = "") -> str:
    """Through the login pages; returns where the login sends the browser."""
    page = client.get("/logga-in").get_data(as_text=True)
    client.post(
        "/logga-in", data={"csrf_token": csrf_token(page), "device": "other", "next": next_page}
    )
    approve_in_simulator(client.application, personnummer)
    response = client.get("/logga-in/bankid")
    assert response.status_code == 302
    return response.headers["Location"]


def test_each_role_lands_on_its_own_start_page(client: FlaskClient) -> None:
    assert _log_in(client, INGRID) == "/handlaggning"
    assert _log_in(client, KARIN) == "/skanning"
    assert _log_in(client, DAVID) == "/att-gora"
    # A page asked for before the login wins; another site's never does.
    assert _log_in(client, DAVID, "/mina-arenden") == "/mina-arenden"
    assert _log_in(client, DAVID, "//evil.example/") == "/att-gora"


def test_att_gora_lists_what_waits_for_the_person(client: FlaskClient, session: Session) -> None:
    draft = registration_draft(session)
    asked = in_review(session, personnummer=GRETA)
    ingrid = caseworker(session, INGRID)
    casework.claim(session, ingrid, asked)
    casework.request_completion(
        session, ingrid, asked, "Bifoga fullmakten.", base_url=public_base_url()
    )
    session.commit()

    _log_in(client, DAVID)
    page = client.get("/att-gora").get_data(as_text=True)
    assert "Påbörjade blanketter" in page and draft.reference in page
    assert "SPV behöver kompletteringar" in page and asked.reference in page
    assert "Inaktiv" not in page  # David reviews Provverket, where nobody is inactive

    _log_in(client, ANNA)
    page = client.get("/att-gora").get_data(as_text=True)
    assert "1 inaktiv användare hos Statens testmyndighet" in page  # Cecilia, 600 days
    assert draft.reference not in page

    _log_in(client, GRETA)
    assert "Inget väntar på dig just nu." in client.get("/att-gora").get_data(as_text=True)
    # Only for an employer's people: staff are sent to the login.
    _log_in(client, KARIN)
    assert client.get("/att-gora").status_code in (302, 403, 404)


def test_att_gora_counts_the_requests_the_person_answers(
    client: FlaskClient, session: Session
) -> None:
    """A request counts for the administrators who answer it, never for its own asker."""
    from sqlalchemy import select

    from app.access import management as m
    from app.access.models import Employer, EmployerCode, SelfService
    from tests.conftest import person_id

    employer = session.scalars(select(Employer.id).where(Employer.orgnr == "2021005489")).one()
    code = session.scalars(select(EmployerCode.id).where(EmployerCode.code == "A1002")).one()
    for asker in (GRETA, "199001019810"):  # a user, and Bertil, an administrator himself
        actor = m.Actor(m.authority_at(session, person_id(session, asker), employer), "https://x")
        m.request_permission(session, actor, code, SelfService.STATISTICS, "")
    session.commit()
    _log_in(client, ANNA)
    assert "2 förfrågningar om behörighet hos Statens testmyndighet" in client.get(
        "/att-gora"
    ).get_data(as_text=True)
    _log_in(client, "199001019810")
    assert "1 förfrågan om behörighet hos Statens testmyndighet" in client.get(
        "/att-gora"
    ).get_data(as_text=True)
