"""The process-wide wiring shared by web processes and workers: database, broker, outbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import dramatiq
import structlog
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import make_engine, make_sessionmaker, unit_of_work
from workflows.broker import declare_pipeline, make_broker
from workflows.failures import StepFailureRecorder
from workflows.outbox import OutboxAcknowledgement, OutboxRelay

log = structlog.get_logger(__name__)


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


def configure(settings: Settings) -> Runtime:
    """Build the runtime for ``settings`` and make it the one actors use in this process."""
    global _current
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    broker = make_broker(settings.broker_url)
    broker.add_middleware(StepFailureRecorder(factory))
    broker.add_middleware(OutboxAcknowledgement(factory))
    declare_pipeline(broker)
    dramatiq.set_broker(broker)
    relay = OutboxRelay(factory, broker, timedelta(seconds=settings.outbox_resend_after_s))
    relay.install()
    runtime = Runtime(settings, engine, factory, broker, relay)
    with _lock:
        _current = runtime
    return runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("workflows.runtime.configure() has not been called in this process")
    return _current
