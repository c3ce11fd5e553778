"""Separate queues on the real brokers: a flood of email to a slow SMTP relay never holds up
an errand's steps (each queue has its own worker threads)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.agents import Agent
from app.notifications.models import EmailMessage
from app.notifications.queue import queue_email
from app.registrations.models import Errand
from tests.factories import (
    claim_and_approve,
    public_base_url,
    received_by_esignature,
    registration_draft,
    verifiers,
)
from tests.support import RABBITMQ_URL, REDIS_URL, free_port, require_service, wait_for
from workflows import pipeline
from workflows.broker import EMAIL, INTAKE, PIPELINE_STEPS, SCHEDULED, STEPS
from workflows.runtime import Runtime
from workflows.states import ErrandState
from workflows.worker import WorkerPool, queue_threads

FLOOD = 500
SMTP_DELAY_S = 0.5
"""How long the slow relay takes to accept each message."""


SLOW_SMTP_PORT = free_port()


class _SlowRelay:
    """An SMTP relay that takes :data:`SMTP_DELAY_S` to accept each message."""

    def __init__(self) -> None:
        self.received = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        await asyncio.sleep(SMTP_DELAY_S)
        with self.lock:
            self.received += 1
        return "250 OK"


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    return {"mail_url": f"smtp://127.0.0.1:{SLOW_SMTP_PORT}"}


@pytest.fixture(
    params=[
        pytest.param(REDIS_URL, id="redis"),
        pytest.param(RABBITMQ_URL, id="rabbitmq"),
    ]
)
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = request.param
    require_service("Redis" if url.startswith("redis") else "RabbitMQ")
    return url


@pytest.fixture
def slow_relay() -> Iterator[_SlowRelay]:
    relay = _SlowRelay()
    controller = Controller(relay, hostname="127.0.0.1", port=SLOW_SMTP_PORT)
    controller.start()
    yield relay
    controller.stop()


def _flood_of_email(runtime: Runtime) -> None:
    with runtime.unit_of_work() as s:
        for i in range(FLOOD):
            queue_email(
                s,
                base_url=public_base_url(),
                dedupe_key=f"flood:{i}",
                to=f"user{i}@example.org",
                name=f"User {i}",
                language="sv",
                template="permissions_changed",
                context={
                    "employer": "Provverket",
                    "orgnr": "202100-4920",
                    "granted": ["Lönekartläggning"],
                    "revoked": [],
                    "reason": None,
                    "actor": None,
                    "reference": None,
                    "path": "/",
                },
            )


def _state(runtime: Runtime, errand_id: int) -> ErrandState:
    with runtime.session_factory() as s:
        return s.scalars(select(Errand.state).where(Errand.id == errand_id)).one()


def test_a_flood_of_email_to_a_slow_relay_never_delays_a_decision(
    runtime: Runtime, session: Session, slow_relay: _SlowRelay, worker: WorkerPool
) -> None:
    _flood_of_email(runtime)
    wait_for(lambda: slow_relay.received >= 2, message="the email threads to be sending")
    with runtime.unit_of_work() as s:
        errand = received_by_esignature(s, registration_draft(s))
        pipeline.verify(s, errand.id, Agent.system("test"), verifiers(s))
        claim_and_approve(s, errand)
        errand_id = errand.id
    approved = time.monotonic()
    wait_for(
        lambda: _state(runtime, errand_id) is ErrandState.CLOSED,
        timeout=15,
        message="the apply and archive steps while 500 emails wait",
    )
    took = time.monotonic() - approved
    unsent = session.scalar(
        select(func.count(EmailMessage.id)).where(
            EmailMessage.dedupe_key.like("flood:%"), EmailMessage.sent_dt.is_(None)
        )
    )
    # Sent in order, the flood would take minutes: most of it still waits.
    assert unsent is not None and unsent > FLOOD - 100, unsent
    assert took < 10, f"the decision took {took:.1f} s behind the email"


def test_each_kind_of_work_has_its_own_queue() -> None:
    import workflows.actors  # noqa: F401  (registers the steps, also when this test runs alone)

    queues = {name: step.options["queue_name"] for name, step in PIPELINE_STEPS.items()}
    assert {queues[n] for n in ("verify_errand", "apply_errand", "archive_errand")} == {STEPS}
    assert queues["issue_receipt"] == queues["start_waiting_period"] == STEPS
    assert queues["send_email"] == queues["notify_stopped"] == EMAIL
    assert queues["read_scan_batch"] == INTAKE
    assert {
        queues[n]
        for n in (
            "watch_deadlines",
            "summarise_inactivity",
            "run_review_campaigns",
            "remind_signatories",
            "apply_waiting_periods",
            "end_mandates",
            "checkpoint_audit_chain",
            "keep_archive_valid",
            "apply_retention",
        )
    } == {SCHEDULED}


def test_a_worker_takes_the_queues_and_threads_it_is_given() -> None:
    settings = Settings(worker_threads=4, worker_email_threads=3)
    assert queue_threads(settings) == {STEPS: 4, EMAIL: 3, INTAKE: 1, SCHEDULED: 1}
    assert queue_threads(settings, "email=6, steps") == {EMAIL: 6, STEPS: 4}
    chosen = Settings(worker_queues="scheduled=2")
    assert queue_threads(chosen) == {SCHEDULED: 2}
    with pytest.raises(ValueError, match="unknown queue 'mail'"):
        queue_threads(settings, "mail=2")
    with pytest.raises(ValueError, match="at least one thread"):
        queue_threads(settings, "steps=0")
