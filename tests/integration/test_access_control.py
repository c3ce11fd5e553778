"""Who may see and do what: login, CSRF, staff-only pages, one person's errands."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app
from app.registrations.models import Errand
from devtools.plugin import StandIns
from devtools.settings import StandInSettings
from tests.conftest import ANNA, DAVID, INGRID, KARIN, build_app, close_app, login, make_settings
from tests.integration.test_slice import file_and_sign_registration
from tests.support import REGISTRATION, csrf_token


def test_pages_need_login(client: FlaskClient) -> None:
    for path in (
        "/anmalan-behorig-bestallare",
        "/mina-arenden",
        "/hantera-behorigheter",
        "/handlaggning",
    ):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/logga-in")


def test_another_person_cannot_see_or_withdraw_an_errand(
    client: FlaskClient, session: Session
) -> None:
    reference = file_and_sign_registration(client, session)
    client.post("/logga-ut", data={"csrf_token": csrf_token(client.get("/").get_data(True))})
    login(client, session, ANNA)
    assert client.get(f"/mina-arenden/{reference}").status_code == 404
    token = csrf_token(client.get("/mina-arenden").get_data(True))
    assert (
        client.post(f"/mina-arenden/{reference}/aterkalla", data={"csrf_token": token}).status_code
        == 404
    )
    assert reference not in client.get("/mina-arenden").get_data(True)


def test_persons_and_intake_clerks_cannot_use_the_caseworker_queue(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    assert client.get("/handlaggning").status_code == 403
    login(client, session, KARIN, staff=True)
    assert client.get("/handlaggning").status_code == 403
    assert client.get("/anmalan-behorig-bestallare").status_code == 403


def test_post_without_csrf_token_changes_nothing(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    before = session.scalar(select(func.count(Errand.id)))
    response = client.post("/anmalan-behorig-bestallare", data=REGISTRATION)
    assert response.status_code == 400
    assert session.scalar(select(func.count(Errand.id))) == before


def test_login_renews_the_session(client: FlaskClient, session: Session) -> None:
    client.get("/?lang=en")
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    login(client, session, DAVID)
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after["lang"] == "en"
        assert after["agent"]["kind"] == "person"


def test_bankid_simulator_exists_only_when_plugged_in(database_url: str) -> None:
    app = build_app(database_url)  # no stand-ins plugged in
    try:
        assert app.extensions["behorighet"].settings.stand_ins == frozenset()
        client = app.test_client()
        assert client.get("/bankid-simulator/app").status_code == 404
        assert client.post("/bankid-simulator/rp/v6.0/auth", json={}).status_code == 404
        page = client.get("/logga-in").get_data(as_text=True)
        assert "BankID" in page
    finally:
        close_app(app)


def test_a_demo_page_is_served_only_as_a_declared_stand_in(database_url: str) -> None:
    """Production's checks stand down only for declared stand-ins: every /demo page a
    plugin serves is one, so none is served where the settings say none is plugged in."""
    others_off = StandInSettings(
        bankid_simulator=False,
        test_seal=False,
        mail_sink=False,
        demo_scanner=False,
        company_register=False,
    )
    app = create_app(make_settings(database_url), [StandIns(others_off)])
    try:
        settings = app.extensions["behorighet"].settings
        demo = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/demo/")}
        assert demo == {"/demo/granskning"}
        assert settings.stand_ins, "a /demo page is served, yet no stand-in is declared"
    finally:
        close_app(app)


def test_session_ends_after_idle_time(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    with client.session_transaction() as browser:
        browser["seen_ts"] = browser["seen_ts"] - 31 * 60
    response = client.get("/mina-arenden")
    assert response.status_code == 302 and response.headers["Location"].startswith("/logga-in")


def test_session_ends_after_absolute_time_even_if_used(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    with client.session_transaction() as browser:
        browser["login_ts"] = browser["login_ts"] - 11 * 3600
    assert client.get("/mina-arenden").status_code == 302


def test_caseworker_sees_errands_but_cannot_decide_twice(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, INGRID, staff=True)
    assert client.get("/handlaggning").status_code == 200
    assert client.get("/handlaggning/BB-NONE-XXXX").status_code == 404


def test_a_user_sees_the_employers_orderers_and_administrators(
    client: FlaskClient, session: Session
) -> None:
    """Rule 3: Cecilia, a user at Statens testmyndighet, sees its orderer and administrator
    with their email, and nothing of Provverket's people."""
    login(client, session, "197205119824")
    page = client.get("/hantera-behorigheter").get_data(as_text=True)
    assert "Statens testmyndighet" in page
    assert "Anna Andersson" in page and "anna.andersson@testmyndighet.example" in page
    assert "Bertil Berg" in page and "bertil.berg@testmyndighet.example" in page
    assert "David Dahl" not in page and "Provverket" not in page
