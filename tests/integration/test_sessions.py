"""Sessions that end (issue 15): kept on the server (the database, or Redis), ended there by
logout, the idle and absolute limits and a change of the person's roles; a copied cookie is
worth nothing after; the cookie is ``Secure`` and ``__Host-`` over https, with HSTS."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask, Response, request
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.models import Employer, Role, RoleGrant
from app.cli import migrate_database
from app.db import utcnow
from app.eid.models import WebSession
from app.eid.sessions import KEY_PREFIX
from devtools import models as devtools_models
from devtools.seed import seed_demo
from tests.conftest import ANNA, DAVID, build_app, close_app, login, person_id
from tests.support import REDIS_URL, csrf_token

BERTIL = "199001019810"  # administrator at Statens testmyndighet
CECILIA = "197205119824"  # a user at Statens testmyndighet


def _sid(client: FlaskClient, name: str = "session") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    return cookie.value


def _replayed(app: Flask, sid: str, name: str = "session") -> FlaskClient:
    """Another browser holding a copy of the cookie."""
    thief = app.test_client()
    thief.set_cookie(name, sid)
    return thief


def _signed_in(client: FlaskClient) -> bool:
    response = client.get("/mina-arenden")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/logga-in")
        return False
    assert response.status_code == 200
    return True


def _log_out(client: FlaskClient) -> None:
    page = client.get("/mina-arenden").get_data(as_text=True)
    assert client.post("/logga-ut", data={"csrf_token": csrf_token(page)}).status_code == 302


def test_a_cookie_replayed_after_logout_is_not_signed_in(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    sid = _sid(client)
    assert _signed_in(_replayed(app, sid))  # the copy works while the session lives
    _log_out(client)
    assert not _signed_in(client)
    assert not _signed_in(_replayed(app, sid))
    assert session.get(WebSession, KEY_PREFIX + sid) is None  # gone from the server


def test_login_gives_the_browser_a_new_session_id(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    client.get("/logga-in")  # an anonymous session (its CSRF token)
    before = _sid(client)
    login(client, session, DAVID)
    after = _sid(client)
    assert after != before
    assert session.get(WebSession, KEY_PREFIX + before) is None
    assert not _signed_in(_replayed(app, before))  # a planted id is not signed in by login


def _finish_in_flight_request(app: Flask, sid: str, end_meanwhile: Callable[[], None]) -> Response:
    """A request of the browser that read its session ``sid`` before another request of the
    same browser (another tab) ended it, and changes the session after: what it saves."""
    interface = app.session_interface
    with app.test_request_context("/mina-arenden", headers={"Cookie": f"session={sid}"}):
        browser = interface.open_session(app, request)
        assert browser is not None and browser.sid == sid  # read from the store
        end_meanwhile()
        browser["seen_ts"] = int(time.time())  # the idle check notes its use
        response = app.response_class()
        interface.save_session(app, browser, response)
    return response


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_request_in_flight_when_another_tab_logs_out_does_not_bring_the_session_back(
    make_app: Callable[..., Flask], session: Session, store: str
) -> None:
    app = make_app(session_redis_url=REDIS_URL if store == "redis" else None)
    client = app.test_client()
    login(client, session, DAVID)
    sid = _sid(client)

    response = _finish_in_flight_request(app, sid, lambda: _log_out(client))

    assert "Set-Cookie" not in response.headers  # the browser keeps what logging out sent
    assert not _signed_in(_replayed(app, sid))
    assert session.get(WebSession, KEY_PREFIX + sid) is None
    assert not redis.Redis.from_url(REDIS_URL).exists(KEY_PREFIX + sid)


def test_a_request_in_flight_when_another_tab_logs_in_keeps_that_login(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    client.get("/logga-in")  # an anonymous session (its CSRF token), as the login tab has
    sid = _sid(client)
    response = _finish_in_flight_request(app, sid, lambda: login(client, session, ANNA))
    assert "Set-Cookie" not in response.headers
    assert _sid(client) != sid
    assert _signed_in(client)  # the new login stands
    assert session.get(WebSession, KEY_PREFIX + sid) is None


def test_the_idle_and_absolute_limits_end_the_session_on_the_server(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    sid = _sid(client)
    with client.session_transaction() as browser:
        browser["seen_ts"] = browser["seen_ts"] - 31 * 60
    assert not _signed_in(client)
    assert not _signed_in(_replayed(app, sid))  # the copy ended with it

    login(client, session, DAVID)
    sid = _sid(client)
    with client.session_transaction() as browser:
        browser["login_ts"] = browser["login_ts"] - 11 * 3600
    assert not _signed_in(client)
    assert not _signed_in(_replayed(app, sid))

    # The store keeps a session no longer than the idle time after its last use, whatever
    # the browser sends.
    login(client, session, DAVID)
    sid = _sid(client)
    session.execute(
        update(WebSession)
        .where(WebSession.id == KEY_PREFIX + sid)
        .values(expires_dt=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    assert not _signed_in(client)


def test_the_session_is_kept_as_long_as_the_idle_time(app: Flask, session: Session) -> None:
    client = app.test_client()
    login(client, session, DAVID)
    row = session.get(WebSession, KEY_PREFIX + _sid(client))
    assert row is not None
    left = row.expires_dt - utcnow()
    idle = timedelta(minutes=app.extensions["behorighet"].settings.session_idle_minutes)
    assert idle - timedelta(minutes=1) < left <= idle


def _actor(session: Session, personnummer: str) -> m.Actor:
    employer = session.scalars(select(Employer).where(Employer.orgnr == "2021005489")).one()
    authority = m.authority_at(session, person_id(session, personnummer), employer.id)
    return m.Actor(authority, "https://behorighet.example")


def test_a_change_of_a_persons_roles_or_permissions_ends_their_sessions(
    app: Flask, session: Session
) -> None:
    cecilia, bertil, anna = (app.test_client() for _ in range(3))
    login(cecilia, session, CECILIA)
    login(bertil, session, BERTIL)
    login(anna, session, ANNA)
    cecilia_sid = _sid(cecilia)

    # Bertil (administrator) ends Cecilia's service permissions: her sessions end.
    m.remove_all_permissions(session, _actor(session, BERTIL), person_id(session, CECILIA))
    session.commit()
    response = cecilia.get("/mina-arenden")
    assert response.status_code == 302 and response.headers["Location"].startswith("/logga-in")
    assert "Dina behörigheter har ändrats" in cecilia.get("/logga-in").get_data(as_text=True)
    assert not _signed_in(_replayed(app, cecilia_sid))
    assert _signed_in(bertil) and _signed_in(anna)  # nobody else's

    # Anna (orderer) ends Bertil's administrator role: his sessions end.
    grant = session.scalars(
        select(RoleGrant).where(
            RoleGrant.person_id == person_id(session, BERTIL),
            RoleGrant.role == Role.ADMINISTRATOR,
            RoleGrant.valid_to_dt.is_(None),
        )
    ).one()
    m.remove_administrator(session, _actor(session, ANNA), grant.id, reason="Slutat")
    session.commit()
    assert not _signed_in(bertil)
    assert _signed_in(anna)

    # Logged in again after the change, the person stays signed in.
    login(cecilia, session, CECILIA)
    assert _signed_in(cecilia)


def test_the_cookie_over_http_is_httponly_and_lax(client: FlaskClient) -> None:
    response = client.get("/logga-in")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert "Strict-Transport-Security" not in response.headers


def test_over_https_the_cookie_is_secure_and_host_only_and_hsts_is_sent(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(public_base_url="https://behorighet.spv.example")
    client = app.test_client()
    response = client.get("/logga-in", base_url="https://behorighet.spv.example")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain=" not in cookie  # __Host-: no Domain, or browsers refuse it
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert client.get("/healthz").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_sessions_in_redis_end_on_logout_too(
    make_app: Callable[..., Flask], session: Session
) -> None:
    app = make_app(session_redis_url=REDIS_URL)
    client = app.test_client()
    store = redis.Redis.from_url(REDIS_URL)
    login(client, session, DAVID)
    sid = _sid(client)
    assert store.exists(KEY_PREFIX + sid)
    assert session.get(WebSession, KEY_PREFIX + sid) is None  # not in the database
    ttl = store.ttl(KEY_PREFIX + sid)
    assert 29 * 60 < ttl <= 30 * 60  # it ends there by itself after the idle time
    _log_out(client)
    assert not store.exists(KEY_PREFIX + sid)
    assert not _signed_in(_replayed(app, sid))


def test_sessions_and_blank_forms_on_sqlite_as_in_the_demo(tmp_path: Path, pki_dir: Path) -> None:
    """The demo's database (SQLite: one writer at a time, each transaction takes the lock):
    the store writes after the request's own transaction ends, never waiting on it."""
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    migrate_database(url)
    app = build_app(url, pki_dir)
    runtime = app.extensions["behorighet"]
    devtools_models.create_tables(runtime.engine)
    try:
        with runtime.unit_of_work() as seeding:
            seed_demo(seeding)
        client = app.test_client()
        with runtime.session_factory() as session:
            started = time.monotonic()
            login(client, session, DAVID)
            sid = _sid(client)
            assert _signed_in(_replayed(app, sid))
            assert client.get("/blanketter/anmalan.pdf").status_code == 200
            _log_out(client)
            assert not _signed_in(_replayed(app, sid))
            assert session.get(WebSession, KEY_PREFIX + sid) is None
            assert time.monotonic() - started < 20  # no request waited out SQLite's lock
    finally:
        close_app(app)
