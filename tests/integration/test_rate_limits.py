"""Rate limits on the site's costly steps (issue 15): starting a login, polling a BankID
order, starting a signature and downloading a blank form, per address without a login and
per signed-in person, with the site's own 429 page in Swedish or English; and blank forms
rendered once per language and template version, then served from the database."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits import parse_many
from sqlalchemy.orm import Session

from app.config import Settings
from app.documents import render
from app.ratelimits import SITE_LIMITS
from tests.conftest import DAVID, login
from tests.support import REDIS_URL, csrf_token, walk_registration


def _limited(make_app: Callable[..., Flask], **limits: str) -> FlaskClient:
    """A client of an app with the site's limits on (small ones, counted for this test)."""
    return make_app(web_rate_limits=True, **limits).test_client()


def _start_login(client: FlaskClient) -> Any:
    page = client.get("/logga-in").get_data(as_text=True)
    return client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})


def test_the_login_start_over_the_limit_gets_the_swedish_page(
    make_app: Callable[..., Flask],
) -> None:
    client = _limited(make_app, login_rate_limit="3 per minute")
    assert [_start_login(client).status_code for _ in range(3)] == [302, 302, 302]
    refused = _start_login(client)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    page = refused.get_data(as_text=True)
    assert '<html lang="sv"' in page  # the site's layout
    assert "För många försök" in page and "Vänta en stund och försök igen" in page
    assert refused.mimetype == "text/html"


def test_the_429_page_is_english_in_english(make_app: Callable[..., Flask]) -> None:
    client = _limited(make_app, login_rate_limit="1 per minute")
    client.get("/?lang=en")
    assert _start_login(client).status_code == 302
    refused = _start_login(client)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    page = refused.get_data(as_text=True)
    assert '<html lang="en"' in page
    assert "Too many attempts" in page and "För många försök" not in page


def test_polling_a_login_is_limited_apart_from_starting_it(
    make_app: Callable[..., Flask],
) -> None:
    client = _limited(make_app, collect_rate_limit="3 per minute")
    assert _start_login(client).status_code == 302
    token = csrf_token(client.get("/logga-in").get_data(as_text=True))
    polls = [
        client.post("/logga-in/bankid/status", headers={"X-CSRFToken": token}).status_code
        for _ in range(4)
    ]
    assert polls == [200, 200, 200, 429]
    assert client.get("/logga-in/bankid").status_code == 429  # the page without script too
    assert _start_login(client).status_code == 302  # a login of its own count


def test_the_default_poll_limit_lets_the_pages_poll_every_second() -> None:
    """The login and signing pages poll once a second (bankid.js) for up to a minute or
    more: the default allows several people behind one address to do so side by side."""
    [per_minute] = [
        limit for limit in parse_many(Settings().collect_rate_limit) if limit.get_expiry() == 60
    ]
    assert per_minute.amount >= 5 * 60


def test_blank_forms_are_counted_per_address_and_per_person(
    make_app: Callable[..., Flask], session: Session
) -> None:
    app = make_app(web_rate_limits=True, blank_form_rate_limit="2 per minute")
    anonymous, david = app.test_client(), app.test_client()
    login(david, session, DAVID)  # from the same address as the anonymous one
    statuses = [anonymous.get("/blanketter/anmalan.pdf").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert "För många försök" in anonymous.get("/blanketter/borttag.pdf").get_data(as_text=True)
    # David, signed in, has a count of his own.
    assert [david.get("/blanketter/borttag.pdf").status_code for _ in range(3)] == [200, 200, 429]


def test_starting_a_signature_is_limited_per_person(
    make_app: Callable[..., Flask], session: Session
) -> None:
    client = _limited(make_app, signing_rate_limit="1 per minute")
    login(client, session, DAVID)
    reference = walk_registration(client)
    review = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(review), "device": "other"}
    assert client.post(f"/mina-arenden/{reference}/signera", data=data).status_code == 302
    refused = client.post(f"/mina-arenden/{reference}/signera", data=data)
    assert refused.status_code == 429 and "För många försök" in refused.get_data(as_text=True)


def test_the_site_counts_in_redis_when_configured(make_app: Callable[..., Flask]) -> None:
    limit = f"2 per {secrets.randbelow(10_000) + 100} seconds"  # a count of its own
    first, second = (
        _limited(make_app, blank_form_rate_limit=limit, rate_limit_storage_url=REDIS_URL)
        for _ in range(2)
    )
    assert first.get("/blanketter/anmalan.pdf").status_code == 200
    assert second.get("/blanketter/anmalan.pdf").status_code == 200
    assert first.get("/blanketter/anmalan.pdf").status_code == 429  # two processes, one count


def test_unreachable_counters_leave_the_site_and_the_api_working(
    make_app: Callable[..., Flask],
) -> None:
    """Redis restarting under the counters: pages and checks go on, uncounted, not a 500."""
    nowhere = "redis://127.0.0.1:9/0"  # nothing listens there
    client = _limited(
        make_app, blank_form_rate_limit="1 per minute", rate_limit_storage_url=nowhere
    )
    assert [client.get("/blanketter/anmalan.pdf").status_code for _ in range(2)] == [200, 200]
    api = make_app(api_rate_limit="1 per minute", rate_limit_storage_url=nowhere).test_client()
    assert [api.post("/api/v1/check", json={}).status_code for _ in range(2)] == [401, 401]


def test_an_api_path_over_the_limit_gets_a_problem(make_app: Callable[..., Flask]) -> None:
    client = make_app(api_rate_limit="1 per minute").test_client()
    assert client.post("/api/v1/check", json={}).status_code == 401  # no client: by address
    refused = client.post("/api/v1/check", json={})
    assert refused.status_code == 429
    assert refused.content_type == "application/problem+json"
    assert "Retry-After" in refused.headers


def test_every_limited_page_exists(app: Flask) -> None:
    for endpoints in SITE_LIMITS.values():
        for endpoint in endpoints:
            assert endpoint in app.view_functions, endpoint


def test_off_the_site_limits_count_nothing(make_app: Callable[..., Flask]) -> None:
    client = make_app(web_rate_limits=False, login_rate_limit="1 per minute").test_client()
    assert [_start_login(client).status_code for _ in range(3)] == [302, 302, 302]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, str]]:
    """Every blank form rendered during the test: (kind, language)."""
    made: list[tuple[Any, str]] = []
    real = render.render_blank_form

    def counted(kind: Any, *, lang: str, key: bytes) -> bytes:
        made.append((kind, lang))
        return real(kind, lang=lang, key=key)

    monkeypatch.setattr(render, "render_blank_form", counted)
    return made


def test_a_blank_form_is_rendered_once_per_language_and_template_version(
    client: FlaskClient, renders: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.get("/blanketter/anmalan.pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    second = client.get("/blanketter/anmalan.pdf")
    assert second.data == first.data
    assert len(renders) == 1  # the second came from the database
    english = client.get("/blanketter/anmalan.pdf?lang=en")
    assert english.data != first.data and len(renders) == 2
    client.get("/blanketter/anmalan.pdf?lang=en")
    assert len(renders) == 2
    client.get("/blanketter/borttag.pdf?lang=sv")
    assert len(renders) == 3
    monkeypatch.setattr(render, "TEMPLATE_VERSION", render.TEMPLATE_VERSION + 1)
    renewed = client.get("/blanketter/anmalan.pdf")
    assert len(renders) == 4 and renewed.data != first.data
    client.get("/blanketter/anmalan.pdf")
    assert len(renders) == 4


def test_a_new_qr_key_renders_the_blank_form_anew(
    make_app: Callable[..., Flask], renders: list[tuple[Any, str]]
) -> None:
    make_app(qr_secret="one").test_client().get("/blanketter/anmalan.pdf")
    make_app(qr_secret="two").test_client().get("/blanketter/anmalan.pdf")
    assert len(renders) == 2  # forms keyed with another key are not served


def test_the_limits_and_the_session_store_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_RATE_LIMITS", "0")
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "5 per minute")
    monkeypatch.setenv("COLLECT_RATE_LIMIT", "100 per minute")
    monkeypatch.setenv("SIGNING_RATE_LIMIT", "2 per minute")
    monkeypatch.setenv("BLANK_FORM_RATE_LIMIT", "3 per minute")
    monkeypatch.setenv("SESSION_REDIS_URL", "redis://sessions.example:6379/3")
    settings = Settings.from_env()
    assert not settings.web_rate_limits
    assert (
        settings.login_rate_limit,
        settings.collect_rate_limit,
        settings.signing_rate_limit,
        settings.blank_form_rate_limit,
    ) == ("5 per minute", "100 per minute", "2 per minute", "3 per minute")
    assert settings.session_redis_url == "redis://sessions.example:6379/3"
    monkeypatch.setenv("WEB_RATE_LIMITS", "1")
    assert Settings.from_env().web_rate_limits
    assert Settings().web_rate_limits  # on unless turned off
