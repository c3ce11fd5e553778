"""Builds a process's runtime from its settings: database, broker, the pipeline's actors.

The composition root of the pipeline: the app factory, the command line and the tests
call :func:`configure` once; actors find the result with :func:`workflows.runtime.current`.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq

import workflows.actors  # noqa: F401  (its decorators register the pipeline's steps)
from app.audit.service import session_info
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from workflows import runtime
from workflows.broker import declare_pipeline, make_broker
from workflows.failures import StepFailureRecorder
from workflows.metrics import StepMetrics
from workflows.outbox import OutboxAcknowledgement, OutboxRelay
from workflows.request_context import RequestIdPropagation
from workflows.state_machine import lapse_info


def configure(settings: Settings) -> runtime.Runtime:
    """Build the runtime for ``settings`` and make it the one actors use in this process.
    Raises :class:`~app.config.MissingSecretError` in production without ``AUDIT_KEY``."""
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(
        engine, info={**session_info(settings.audit_chain_key()), **lapse_info(settings)}
    )
    broker = make_broker(settings.broker_url)
    broker.add_middleware(RequestIdPropagation())
    broker.add_middleware(StepMetrics())
    broker.add_middleware(StepFailureRecorder(factory))
    broker.add_middleware(OutboxAcknowledgement(factory))
    declare_pipeline(broker)
    dramatiq.set_broker(broker)
    relay = OutboxRelay(factory, broker, timedelta(seconds=settings.outbox_resend_after_s))
    relay.install()
    return runtime.install(runtime.Runtime(settings, engine, factory, broker, relay))
