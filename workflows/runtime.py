"""The process-wide wiring shared by web processes and workers: database, broker, outbox.

:func:`workflows.bootstrap.configure` builds it; actors and other composition roots find
it with :func:`current`. Domain code never does: it is handed what it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dramatiq
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work
from workflows.outbox import OutboxRelay


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    broker: dramatiq.Broker
    relay: OutboxRelay

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with unit_of_work(self.session_factory) as session:
            yield session

    def check_database(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def check_broker(self) -> None:
        client = getattr(self.broker, "client", None)  # Redis
        if client is not None:
            client.ping()
            return
        connection = getattr(self.broker, "connection", None)  # RabbitMQ
        if connection is not None and not connection.is_open:
            raise ConnectionError("RabbitMQ connection is closed")


_current: Runtime | None = None
_lock = threading.Lock()


def install(runtime: Runtime) -> Runtime:
    """Make ``runtime`` the one :func:`current` returns in this process."""
    global _current
    with _lock:
        _current = runtime
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("workflows.bootstrap.configure() has not been called in this process")
    return _current
