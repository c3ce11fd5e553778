"""Hostile requests get a clear, bounded answer: the login's ``next`` sends only to a page
of this site, every id in a URL is bounded (404, never a 500), a BankID outage is BankID's
message, every error page is in the site's layout in Swedish and English, and nothing
private is kept in a browser's or proxy's cache."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter

from app.eid.bankid import make_bankid_client
from app.web import MAX_ID, safe_next
from tests.conftest import DAVID, INGRID, KARIN, approve_in_simulator, login
from tests.support import csrf_token, free_port

HOSTILE_NEXT = [
    "//evil.example",
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%252F%252Fevil.example",  # encoded twice
    "/%25252F%25252Fevil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "evil.example",
    " /mina-arenden",
    "/mina-arenden\r\nSet-Cookie: x=1",
    "/mina-arenden%0d%0aSet-Cookie:%20x=1",
    "/\x00evil",
    "/%00evil",
    "/\tevil",
    "/\u202eevil",  # a right-to-left override
    "/\u200bevil",  # zero-width space
    "/ok//evil.example",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_is_only_a_path_of_this_site(target: str) -> None:
    assert safe_next(target) == ""


@pytest.mark.parametrize(
    "target",
    ["/mina-arenden", "/hantera-behorigheter?q=Gr%C3%B6n&page=2", "/handlaggning/BB-1#x", "/"],
)
def test_paths_of_this_site_are_kept(target: str) -> None:
    assert safe_next(target) == target


def _log_in(client: FlaskClient, personnummer: str, next_page: str) -> tuple[str, str]:
    """Through the login pages, with ``next`` in the login page's address; returns the
    login page's hidden ``next`` and where the script is sent when the order completes."""
    page = client.get("/logga-in", query_string={"next": next_page}).get_data(as_text=True)
    hidden = re.search(r'name="next" value="([^"]*)"', page)
    assert hidden is not None
    client.post(
        "/logga-in",
        data={"csrf_token": csrf_token(page), "device": "other", "next": next_page},
    )
    approve_in_simulator(client.application, personnummer)
    pending = client.get("/logga-in")  # any page, for a fresh CSRF token
    status = client.post(
        "/logga-in/bankid/status",
        headers={"X-CSRFToken": csrf_token(pending.get_data(as_text=True))},
    )
    assert status.status_code == 200, status.get_data(as_text=True)
    return hidden.group(1), status.get_json()["done"]


@pytest.mark.parametrize("target", ["/\\evil.example", "/%5Cevil.example", "/%2F%2Fevil"])
def test_the_login_and_its_script_get_only_the_checked_next(
    client: FlaskClient, target: str
) -> None:
    hidden, done = _log_in(client, DAVID, target)
    assert hidden == ""
    assert done == "/att-gora"  # the start page, never the other site
    hidden, done = _log_in(client, DAVID, "/mina-arenden")
    assert (hidden, done) == ("/mina-arenden", "/mina-arenden")


def test_the_employer_switch_goes_back_only_to_a_path_of_this_site(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, "198703159817")  # Greta: two employers
    page = client.get("/hantera-behorigheter").get_data(as_text=True)
    employer = re.search(r'<option value="(\d+)"', page)
    assert employer is not None
    for target in ("/\\evil.example", "/%5Cevil.example", "//evil.example"):
        response = client.post(
            "/hantera-behorigheter/arbetsgivare",
            data={"csrf_token": csrf_token(page), "employer_id": employer.group(1), "next": target},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/hantera-behorigheter"


# --- ids in URLs ------------------------------------------------------------------------


def _int_routes(app: Flask) -> list[tuple[str, str, dict[str, str]]]:
    """Every route with an ``<int:…>``: its rule, a method, and its other values."""
    routes = []
    for rule in app.url_map.iter_rules():
        converters = rule._converters
        if not any(isinstance(c, IntegerConverter) for c in converters.values()):
            continue
        method = "GET" if "GET" in (rule.methods or ()) else "POST"
        routes.append((rule.rule, method, {name: "x" for name in converters}))
    return routes


def _path(rule: str, number: int) -> str:
    return re.sub(
        r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
        lambda m: str(number) if m.group(1) == "int" else "BB-00000-X",
        rule,
    )


def test_every_id_in_a_url_is_bounded(app: Flask, client: FlaskClient, session: Session) -> None:
    routes = _int_routes(app)
    assert len(routes) >= 20  # the walk found the routes
    for personnummer, staff in ((DAVID, False), (INGRID, True), (KARIN, True)):
        login(client, session, personnummer, staff=staff)
        token = csrf_token(client.get("/logga-in").get_data(as_text=True))
        for rule, method, _values in routes:
            for number in (99999999999999999999, 2**31, MAX_ID + 10**12):
                response = client.open(_path(rule, number), method=method)
                assert response.status_code == 404, (rule, number, response.status_code)
            response = client.open(_path(rule, MAX_ID), method=method, data={"csrf_token": token})
            assert response.status_code < 500, (rule, personnummer, response.status_code)


# --- BankID outage ----------------------------------------------------------------------


class _BankIdDown:
    """A BankID client whose every call meets an outage."""

    def __getattr__(self, name: str) -> Any:
        def call(*_args: Any, **_kwargs: Any) -> Any:
            raise httpx.ConnectError("connection refused")

        return call


def test_a_bankid_outage_gives_bankids_message_not_a_500(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = client.get("/logga-in").get_data(as_text=True)
    monkeypatch.setitem(app.extensions, "bankid_client", _BankIdDown())
    response = client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})
    assert response.status_code == 302
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Internt tekniskt fel. Försök igen." in shown


def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="<html>Service Unavailable</html>")


def _maintenance(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"errorCode": "maintenance", "details": "Service down"})


@pytest.mark.parametrize("outage", ["connection refused", "503 page", "503 maintenance"])
def test_bankid_at_its_address_refusing_or_503_gives_bankids_message(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, outage: str
) -> None:
    """The real client at ``BANKID_URL``: nothing listening there, a proxy's 503 page, or
    BankID's own 503 (maintenance) gives BankID's message, not a 500."""
    transport = {"503 page": _unavailable, "503 maintenance": _maintenance}.get(outage)
    settings = dataclasses.replace(
        app.extensions["behorighet"].settings,
        bankid_url=f"http://127.0.0.1:{free_port()}/rp/v6.0/",
    )
    down = make_bankid_client(settings, httpx.MockTransport(transport) if transport else None)
    page = client.get("/logga-in").get_data(as_text=True)
    monkeypatch.setitem(app.extensions, "bankid_client", down)
    response = client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})
    assert response.status_code == 302
    shown = client.get(response.headers["Location"])
    assert shown.status_code == 200
    assert "Internt tekniskt fel. Försök igen." in shown.get_data(as_text=True)
    down.close()


def test_bankid_going_down_while_the_order_is_followed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = client.get("/logga-in").get_data(as_text=True)
    client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})
    monkeypatch.setitem(app.extensions, "bankid_client", _BankIdDown())
    response = client.get("/logga-in/bankid")
    assert response.status_code == 200
    assert "Internt tekniskt fel. Försök igen." in response.get_data(as_text=True)


# --- error pages --------------------------------------------------------------------------


def _in_layout(response: Any, lang: str) -> str:
    page = str(response.get_data(as_text=True))
    assert f'<html lang="{lang}">' in page and 'class="site-header' in page, page[:300]
    return page


def test_error_pages_are_in_the_sites_layout_in_swedish_and_english(
    app: Flask, client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 400: a form posted without its CSRF token (say, a page left open past the session)
    page = _in_layout(client.post("/logga-in", data={"device": "other"}), "sv")
    assert "Sidan har varit öppen för länge. Ladda om sidan och försök igen." in page
    # 404
    response = client.get("/finns-inte")
    assert response.status_code == 404
    assert "Sidan finns inte" in _in_layout(response, "sv")
    # 413
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    response = client.post("/logga-in", data={"device": "x" * 2000})
    assert response.status_code == 413
    assert "Filen är för stor" in _in_layout(response, "sv")
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64 * 1024 * 1024)
    # 403
    login(client, session, DAVID)
    response = client.get("/handlaggning")
    assert response.status_code == 403
    assert "Du har inte behörighet" in _in_layout(response, "sv")
    # 500: an unforeseen failure in a view
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)

    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(app.view_functions, "core.todo", broken)
    response = client.get("/att-gora")
    assert response.status_code == 500
    assert "Något gick fel" in _in_layout(response, "sv")

    client.get("/?lang=en")
    assert "Something went wrong" in _in_layout(client.get("/att-gora"), "en")
    assert "You are not authorised" in _in_layout(client.get("/handlaggning"), "en")
    assert "The page does not exist" in _in_layout(client.get("/finns-inte"), "en")
    response = client.post("/logga-ut", data={})
    assert "The page has been open too long. Reload the page and try again." in _in_layout(
        response, "en"
    )


# --- caching --------------------------------------------------------------------------------


def test_nothing_private_is_cached(client: FlaskClient, session: Session) -> None:
    blank = client.get("/blanketter/anmalan.pdf")  # a document download, signed in or not
    assert blank.status_code == 200 and blank.headers["Cache-Control"] == "no-store"
    login(client, session, DAVID)
    for path in ("/att-gora", "/mina-arenden", "/blanketter/borttag.pdf"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/static/spv.css").headers.get("Cache-Control", "")
