"""The check's hot path on PostgreSQL: connections of its own, on which a check and its
access-log row are one statement and one transaction.

- Autocommit: the statement is its own transaction (no BEGIN and COMMIT round trips).
- No ping when a connection is taken from the pool: a connection found dropped is given up
  and the statement run once more on a new one.
- ``synchronous_commit`` off: the log row is committed without waiting for the WAL to reach
  the disk. A crash of the database server (not of the app) may lose the last fraction of a
  second of log rows; it never makes them wrong. Nothing else is written on these
  connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
APPLICATION_NAME = "behorighet-api-check"
"""How the hot path's connections are named in ``pg_stat_activity``."""


class HotPath:
    """One per app: its engine, made when first needed (in each web process)."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def engine_for(self, factory: sessionmaker[Session]) -> Engine | None:
        """The hot path's engine for the database ``factory``'s sessions use; None where the
        check must run in the request's session: not PostgreSQL, or sessions bound to one
        connection (the tests' rolled-back transaction)."""
        bind = factory.kw.get("bind")
        if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
            return None
        with self._lock:
            if self._engine is None or self._engine.url != bind.url:
                self._engine = create_engine(
                    bind.url,
                    isolation_level="AUTOCOMMIT",
                    pool_size=self.pool_size,
                    max_overflow=self.pool_size,
                    connect_args={
                        "options": "-c synchronous_commit=off",
                        "application_name": APPLICATION_NAME,
                    },
                )
            return self._engine

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def run_raw(engine: Engine, work: Callable[[Any], T]) -> T:
    """``work`` on a driver cursor of ``engine`` (for the one statement of the hot path);
    once more on a new connection if the connection turns out dropped."""
    for attempt in (1, 2):
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                return work(cursor)
            finally:
                cursor.close()
        except psycopg.OperationalError:
            if attempt == 2 or not getattr(connection.driver_connection, "closed", True):
                raise
            connection.invalidate()
        finally:
            connection.close()
    raise AssertionError("unreachable")


def run(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` on a connection of ``engine``; once more on a new one if the connection
    turns out dropped (the database restarted)."""
    try:
        with engine.connect() as connection:
            return work(connection)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    with engine.connect() as connection:
        return work(connection)
