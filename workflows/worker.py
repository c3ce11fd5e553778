"""Running actors: a worker process, or the demo's worker inside the web process."""

from __future__ import annotations

import logging
import threading
import time

import dramatiq
import structlog
from dramatiq.brokers.redis import RedisBroker

from app.config import Settings
from app.intake.decoder import warm_decoder
from app.intake.reading import resume_stalled_batches
from app.registrations.service import expire_lapsed
from workflows.broker import EMAIL, INTAKE, QUEUES, SCHEDULED, STEPS
from workflows.outbox import add_message
from workflows.runtime import Runtime

log = structlog.get_logger(__name__)

IDLE_POLL_MS = 100
"""How long an idle consumer waits for a message (dramatiq's default is 1 s)."""


def queue_threads(settings: Settings, spec: str | None = None) -> dict[str, int]:
    """The queues a worker process consumes and the threads of each: ``spec`` (else
    ``WORKER_QUEUES``), comma-separated names each optionally with its threads
    (``steps=4,email``: the email queue with ``WORKER_EMAIL_THREADS``); empty: all of
    :data:`~workflows.broker.QUEUES` with their settings (``WORKER_THREADS`` for the steps).
    Raises ``ValueError`` for an unknown queue or fewer than one thread."""
    defaults = {
        STEPS: settings.worker_threads,
        EMAIL: settings.worker_email_threads,
        INTAKE: settings.worker_intake_threads,
        SCHEDULED: settings.worker_scheduled_threads,
    }
    spec = settings.worker_queues if spec is None else spec
    chosen = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, threads = (part.strip() for part in item.partition("="))
        if name not in defaults:
            raise ValueError(f"unknown queue {name!r}: the queues are {', '.join(QUEUES)}")
        count = int(threads) if threads else defaults[name]
        if count < 1:
            raise ValueError(f"queue {name!r} needs at least one thread, not {count}")
        chosen[name] = count
    return chosen or {name: count for name, count in defaults.items() if count > 0}


class _OneWorkerPerQueue(logging.Filter):
    """dramatiq warns of a second worker on one broker; here there is one per queue."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_WorkerMiddleware" not in record.getMessage()


class WorkerPool:
    """A process's workers: one dramatiq worker per queue, each with its own threads, so
    that a queue's backlog (a flood of email) never holds up another queue's messages."""

    def __init__(self, workers: dict[str, dramatiq.Worker]) -> None:
        self.workers = workers

    @property
    def worker_threads(self) -> int:
        return sum(worker.worker_threads for worker in self.workers.values())

    def describe(self) -> str:
        return ", ".join(f"{name} {w.worker_threads}" for name, w in self.workers.items())

    def stop(self, timeout: int = 600_000) -> None:
        for worker in self.workers.values():
            worker.stop(timeout=timeout)


def start_worker(
    runtime: Runtime, threads: int | None = None, queues: dict[str, int] | None = None
) -> WorkerPool:
    """Consume ``queues`` (name: threads; default :func:`queue_threads` of the settings),
    the steps queue with ``threads`` when given."""
    chosen = dict(queues or queue_threads(runtime.settings))
    if threads and STEPS in chosen:
        chosen[STEPS] = threads
    runtime.broker.emit_after("process_boot")
    if isinstance(runtime.broker, RedisBroker):
        runtime.broker.heartbeat_timeout = 15_000
    if not any(isinstance(f, _OneWorkerPerQueue) for f in runtime.broker.logger.filters):
        runtime.broker.logger.addFilter(_OneWorkerPerQueue())
    if INTAKE in chosen:  # its first batch does not wait for the decoder's start
        warm_decoder()
    workers = {}
    for name, count in chosen.items():
        worker = dramatiq.Worker(
            runtime.broker, queues={name}, worker_threads=count, worker_timeout=IDLE_POLL_MS
        )
        # One message in hand per thread: a killed worker then leaves little to redeliver.
        worker.queue_prefetch = count
        worker.start()
        workers[name] = worker
    return WorkerPool(workers)


def run_maintenance(
    runtime: Runtime, *, check_deadlines: bool = False, apply_retention: bool = False
) -> None:
    """What must happen now and then, in any one of many processes: re-send unacknowledged
    messages, expire drafts whose time ran out, resume scanned batches whose reader died
    and, when asked, schedule the deadline watch, the monthly inactivity summary, the recurring
    review's campaigns and the
    invited signatories' reminders before their invitations expire, the posted
    registrations whose waiting period is over, the time-limited roles and permissions
    that end (reminders first), the audit chain's checkpoint and the
    archive's re-timestamping, and (when asked) the retention rules (each does nothing
    when it has nothing due). Safe to run anywhere at once."""
    runtime.relay.sweep()
    with runtime.unit_of_work() as session:
        expired = expire_lapsed(session)
        resume_stalled_batches(session)
        if check_deadlines:
            add_message(session, "watch_deadlines")
            add_message(session, "summarise_inactivity")
            add_message(session, "run_review_campaigns")
            add_message(session, "remind_signatories")
            add_message(session, "apply_waiting_periods")
            add_message(session, "end_mandates")
            add_message(session, "checkpoint_audit_chain")
            add_message(session, "keep_archive_valid")
        if apply_retention:
            add_message(session, "apply_retention")
    if expired:
        log.info("errands.expired", count=expired)


class Sweeper(threading.Thread):
    """Runs ``run_maintenance`` every ``interval_s`` seconds, and schedules the deadline
    watch and the inactivity summary every ``settings.deadline_check_interval_s`` and the
    retention rules every ``settings.retention_interval_s``."""

    def __init__(self, runtime: Runtime, interval_s: float = 5.0) -> None:
        super().__init__(name="outbox-sweeper", daemon=True)
        self.runtime = runtime
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        next_deadline_check = next_retention = 0.0
        settings = self.runtime.settings
        while not self.stopped.wait(self.interval_s):
            now = time.monotonic()
            check = now >= next_deadline_check
            retain = now >= next_retention
            try:
                run_maintenance(self.runtime, check_deadlines=check, apply_retention=retain)
            except Exception:
                log.exception("maintenance.failed")
            else:
                if check:
                    next_deadline_check = now + settings.deadline_check_interval_s
                if retain:
                    next_retention = now + settings.retention_interval_s

    def stop(self) -> None:
        self.stopped.set()
