"""The change feed (issue 12): a cache built from it equals the permission store after
random changes, and it follows commit order when transactions commit out of order."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from app.access import management as m
from app.access.models import Employer, EmployerCode, RoleGrant, SelfService, ServicePermission
from app.api import clients
from app.api.models import Scope
from app.cli import migrate_database
from devtools.seed import seed_demo
from tests.conftest import ANNA, DAVID, make_settings, person_id

CECILIA, GRETA, BERTIL = "197205119824", "198703159817", "199001019810"
BASE_URL = "https://spv.example"

Cache = tuple[set[tuple[str, str, str]], dict[tuple[str, str, str], Any]]


def _token(session: Session) -> str:
    _client, token = clients.add_client(session, "cache", frozenset({Scope.CHANGES}))
    session.commit()
    assert token
    return token


def follow(client: FlaskClient, token: str, cache: Cache, cursor: str | None) -> str | None:
    """Read the feed from ``cursor`` to its end into ``cache``; the cursor to go on from."""
    permissions, roles = cache
    while True:
        query = {"limit": "7"} | ({"after": cursor} if cursor else {})
        response = client.get(
            "/api/v1/changes", query_string=query, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        for change in page["changes"]:
            if change["kind"] == "service_permission":
                key = (change["subject"], change["employer_code"], change["service"])
                if change["action"] == "granted":
                    permissions.add(key)
                else:
                    permissions.discard(key)
            else:
                key = (change["subject"], change["employer"], change["role"])
                if change["action"] == "revoked":
                    roles.pop(key, None)
                else:
                    roles[key] = change["codes"]
        cursor = page["next"]
        if not page["changes"]:
            return cursor


def store(session: Session) -> Cache:
    session.expire_all()
    permissions = {
        (p.person.personnummer, p.employer_code.code, p.service.value)
        for p in session.scalars(
            select(ServicePermission).where(ServicePermission.valid_to_dt.is_(None))
        )
    }
    roles = {
        (g.person.personnummer, g.employer.orgnr, g.role.value): (
            None if g.is_all_codes else sorted(c.code for c in g.codes)
        )
        for g in session.scalars(select(RoleGrant).where(RoleGrant.valid_to_dt.is_(None)))
    }
    session.commit()  # read, and let go (SQLite: one transaction at a time)
    return permissions, roles


def _actor(session: Session, personnummer: str, orgnr: str = "2021005489") -> m.Actor:
    employer = session.scalars(select(Employer).where(Employer.orgnr == orgnr)).one()
    return m.Actor(m.authority_at(session, person_id(session, personnummer), employer.id), BASE_URL)


def random_change(session: Session, rng: random.Random) -> None:
    """One change at Statens testmyndighet, by its orderer Anna: a service permission of
    one of three users granted or revoked, or Bertil appointed as administrator, his codes
    changed, or removed."""
    anna = _actor(session, ANNA)
    codes = {c.code: c.id for c in session.scalars(select(EmployerCode))}
    myndighet = [codes[c] for c in ("A1001", "A1002", "A1003")]
    if rng.random() < 0.7:
        code_id = rng.choice(myndighet)
        service = rng.choice(
            [SelfService.INVOICES] if code_id == myndighet[2] else list(SelfService)
        )
        who = person_id(session, rng.choice([CECILIA, GRETA, DAVID]))
        if rng.random() < 0.6:
            m.change_permissions(session, anna, who, grant=[(service, code_id)])
        else:
            m.change_permissions(session, anna, who, revoke=[(service, code_id)])
        return
    grant = session.scalars(
        select(RoleGrant).where(
            RoleGrant.person_id == person_id(session, BERTIL), RoleGrant.valid_to_dt.is_(None)
        )
    ).first()
    if grant is None:
        details = m.check_person(BERTIL, "Bertil", "Berg", "bertil@example.se")
        m.appoint_administrator(session, anna, details, all_codes=True)
    elif rng.random() < 0.5:
        m.remove_administrator(session, anna, grant.id)
    else:
        chosen = rng.sample(myndighet, rng.randint(1, 3))
        m.change_administrator_scope(session, anna, grant.id, all_codes=False, code_ids=chosen)


def cache_follows_store(client: FlaskClient, session: Session, rounds: int) -> None:
    token = _token(session)
    cache: Cache = (set(), {})
    cursor = follow(client, token, cache, None)
    assert cache == store(session)  # the seed is in the feed from its start
    rng = random.Random(12)
    for round_ in range(rounds):
        random_change(session, rng)
        session.commit()
        if round_ % 4 == 0:  # a caller that reads now and then, from where it was
            cursor = follow(client, token, cache, cursor)
    follow(client, token, cache, cursor)
    assert cache == store(session)
    fresh: Cache = (set(), {})
    follow(client, token, fresh, None)
    assert fresh == cache


def test_a_cache_built_from_the_feed_equals_the_store(
    client: FlaskClient, session: Session
) -> None:
    cache_follows_store(client, session, rounds=50)


def test_the_feed_on_sqlite_as_in_the_demo(tmp_path: Path) -> None:
    """The demo's database: migrated, seeded, changed, followed."""
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    migrate_database(url)
    app = create_app(make_settings(url))
    runtime = app.extensions["behorighet"]
    try:
        with runtime.unit_of_work() as session:
            seed_demo(session)
        with runtime.session_factory() as session:
            cache_follows_store(app.test_client(), session, rounds=20)
    finally:
        runtime.engine.dispose()


def test_the_feed_follows_commit_order(committed_db: None, app: Flask) -> None:
    """Two transactions side by side: the first to log a change holds the log until it
    commits, so the second's change comes after it in the feed; a reader in between sees
    neither, and a cursor taken then misses nothing."""
    factory = app.extensions["behorighet"].session_factory
    client = app.test_client()
    with factory() as setup:
        token = _token(setup)
        codes = {c.code: c.id for c in setup.scalars(select(EmployerCode))}
        cecilia, greta = person_id(setup, CECILIA), person_id(setup, GRETA)
    cache: Cache = (set(), {})
    cursor = follow(client, token, cache, None)

    first = factory()
    m.change_permissions(
        first, _actor(first, ANNA), cecilia, grant=[(SelfService.STATISTICS, codes["A1002"])]
    )  # logged, not committed
    second_done = threading.Event()

    def second() -> None:
        with factory() as session:
            actor = _actor(session, DAVID, "2021004920")
            m.change_permissions(
                session, actor, greta, grant=[(SelfService.STATISTICS, codes["B2001"])]
            )
            session.commit()
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not second_done.wait(1.0), "the second transaction waits for the first"
    before = follow(client, token, cache, cursor)
    assert before == cursor  # nothing committed yet, nothing read
    first.commit()
    first.close()
    thread.join(10)
    assert second_done.is_set()
    response = client.get(
        "/api/v1/changes",
        query_string={"after": before},
        headers={"Authorization": f"Bearer {token}"},
    )
    changes = response.get_json()["changes"]
    assert [(c["subject"], c["employer_code"]) for c in changes] == [
        (CECILIA, "A1002"),
        (GRETA, "B2001"),
    ]
