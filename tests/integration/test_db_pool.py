"""PostgreSQL connections that were dropped (a restart, an idle timeout) are replaced: an
idle one is pinged before use, and a busy one that fails replaces the pool's others."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app import db
from app.db import make_engine
from tests.support import PG_ADMIN_URL


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(*pids: int) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_an_idle_connection_that_was_dropped_is_pinged_and_replaced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _backend(engine)
    _terminate(before)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # idle "long enough" at once
    after = _backend(engine)  # no error: the ping found it gone
    assert after != before


def test_a_busy_connection_that_was_dropped_fails_once_and_the_pool_recovers(
    engine: Engine,
) -> None:
    with engine.connect() as a, engine.connect() as b:  # two pooled connections
        pids = [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in (a, b)]
    _terminate(*pids)  # as a restart does: both gone, used a moment ago (not pinged)
    with pytest.raises(DBAPIError) as failed, engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert failed.value.connection_invalidated
    with engine.connect() as c, engine.connect() as d:  # the other one was replaced too
        fresh = {c.execute(text("SELECT 1")).scalar_one(), d.execute(text("SELECT 1")).scalar_one()}
    assert fresh == {1}
    assert _backend(engine) not in pids
