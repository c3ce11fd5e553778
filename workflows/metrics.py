"""The pipeline's Prometheus metrics: how long each step's message took and how often it
failed (counted where the actor runs, in the worker), and what is measured when the page is
read (queue depths from the broker, the outbox's age, the errands overdue and the step
attempts recorded on the errands, from the database).

Counters and histograms are prometheus_client's. With ``PROMETHEUS_MULTIPROC_DIR`` set (as
``behorighet serve`` does for its gunicorn workers, and as ``behorighet worker`` processes on
the same machine share), each process writes them to files in that folder and ``/metrics``
adds them up (``app.observability``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.casework.deadlines import NOT_DECIDED
from app.db import utcnow
from app.registrations.models import Errand
from workflows.broker import step_of
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.states import ErrandState

log = structlog.get_logger(__name__)

STEP_SECONDS = Histogram(
    "behorighet_step_duration_seconds",
    "How long an actor took with one message (every attempt), by actor and step.",
    ["actor", "step", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
STEP_FAILURES = Counter(
    "behorighet_step_failures_total",
    "Attempts of an actor that raised (each retry counts), by actor and step.",
    ["actor", "step"],
)


class StepMetrics(dramatiq.Middleware):
    """Times every message an actor runs in this process, counts the failed ones, and logs
    one line for each (``actor.done`` or ``actor.failed``, with the request id bound)."""

    def __init__(self) -> None:
        self._started = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started.at = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = getattr(self._started, "at", None)
        if started is None:
            return
        self._started.at = None
        step = step_of(message.actor_name) or "-"
        outcome = "failed" if exception is not None else "done"
        duration = time.perf_counter() - started
        STEP_SECONDS.labels(message.actor_name, step, outcome).observe(duration)
        if exception is not None:
            STEP_FAILURES.labels(message.actor_name, step).inc()
        (log.warning if exception is not None else log.info)(
            f"actor.{outcome}",
            actor=message.actor_name,
            message_id=message.message_id,
            errand_id=message.kwargs.get("errand_id"),
            duration=round(duration, 4),
        )


def queue_depths(broker: dramatiq.Broker) -> Iterator[tuple[str, str, int]]:
    """(queue, ready|delayed|dead, messages) for each queue declared on ``broker``."""
    queues = sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ")))
    if isinstance(broker, RabbitmqBroker):
        for queue in queues:
            ready, delayed, dead = broker.get_queue_message_counts(queue)
            yield from ((queue, "ready", ready), (queue, "delayed", delayed), (queue, "dead", dead))
    elif isinstance(broker, RedisBroker):
        client, namespace = broker.client, broker.namespace
        for queue in queues:
            yield queue, "ready", int(client.llen(f"{namespace}:{queue}"))
            yield queue, "delayed", int(client.llen(f"{namespace}:{queue}.DQ"))
            yield queue, "dead", int(client.zcard(f"{namespace}:{queue}.XQ"))
    elif isinstance(broker, StubBroker):
        for queue in queues:
            yield queue, "ready", broker.queues[queue].qsize()
            yield queue, "delayed", broker.queues[f"{queue}.DQ"].qsize()
            yield queue, "dead", len(broker.dead_letters_by_queue[queue])


class PipelineCollector(Collector):
    """What is measured when ``/metrics`` is read: the broker's queues and the database."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._database()

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "behorighet_queue_messages",
            "Messages in the broker's queue, by queue and state (ready, delayed, dead).",
            labels=["queue", "state"],
        )
        up = GaugeMetricFamily("behorighet_broker_up", "Whether the broker answered (1) or not.")
        try:
            for queue, state, count in queue_depths(self.runtime.broker):
                depth.add_metric([queue, state], count)
        except Exception:
            log.warning("metrics.broker_unreachable", exc_info=True)
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            yield depth
        yield up

    def _database(self) -> Iterator[Metric]:
        now = utcnow()
        with self.runtime.session_factory() as session:
            undone, oldest = session.execute(
                select(func.count(), func.min(OutboxMessage.created_dt)).where(
                    OutboxMessage.done_dt.is_(None)
                )
            ).one()
            overdue = session.scalar(
                select(func.count()).where(
                    Errand.state.in_(NOT_DECIDED),
                    Errand.due_dt <= now,
                )
            )
            retrying = session.execute(
                select(Errand.retrying_step, func.count())
                .where(Errand.retrying_step.is_not(None))
                .group_by(Errand.retrying_step)
            ).all()
            failed = session.execute(
                select(Errand.failed_step, func.count())
                .where(Errand.state == ErrandState.FAILED)
                .group_by(Errand.failed_step)
            ).all()
        yield GaugeMetricFamily(
            "behorighet_outbox_undone_messages",
            "Outbox messages not yet done (sent or not).",
            value=undone,
        )
        yield GaugeMetricFamily(
            "behorighet_outbox_oldest_undone_age_seconds",
            "Age of the oldest outbox message not yet done (0 when there is none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "behorighet_errands_overdue",
            "Errands received and not decided whose due date has passed.",
            value=overdue or 0,
        )
        yield _by_step(
            "behorighet_errands_retrying",
            "Errands whose step failed an attempt and will be tried again, by step.",
            retrying,
        )
        yield _by_step(
            "behorighet_errands_failed", "Errands in 'failed' (a step given up), by step.", failed
        )


def _by_step(name: str, documentation: str, rows: Sequence[Any]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["step"])
    for step, count in rows:
        gauge.add_metric([step or "-"], count)
    return gauge
