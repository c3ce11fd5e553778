"""Running actors: a worker process, or the demo's worker inside the web process."""

from __future__ import annotations

import threading
import time

import dramatiq
import structlog
from dramatiq.brokers.redis import RedisBroker

from app.intake.reading import resume_stalled_batches
from app.registrations.service import expire_lapsed
from workflows.outbox import add_message
from workflows.runtime import Runtime

log = structlog.get_logger(__name__)

IDLE_POLL_MS = 100
"""How long an idle consumer waits for a message (dramatiq's default is 1 s)."""


def start_worker(runtime: Runtime, threads: int | None = None) -> dramatiq.Worker:
    threads = threads or runtime.settings.worker_threads
    runtime.broker.emit_after("process_boot")
    worker = dramatiq.Worker(runtime.broker, worker_threads=threads, worker_timeout=IDLE_POLL_MS)
    # One message in hand per thread: a killed worker then leaves little to redeliver.
    worker.queue_prefetch = threads
    if isinstance(runtime.broker, RedisBroker):
        runtime.broker.heartbeat_timeout = 15_000
    worker.start()
    return worker


def run_maintenance(runtime: Runtime, *, check_deadlines: bool = False) -> None:
    """What must happen now and then, in any one of many processes: re-send unacknowledged
    messages, expire drafts whose time ran out, resume scanned batches whose reader died
    and, when asked, schedule the deadline watch, the monthly inactivity summary and the
    invited signatories' reminders before their invitations expire, and the audit chain's
    checkpoint (each does nothing when it has nothing due). Safe to run anywhere at once."""
    runtime.relay.sweep()
    with runtime.unit_of_work() as session:
        expired = expire_lapsed(session)
        resume_stalled_batches(session)
        if check_deadlines:
            add_message(session, "watch_deadlines")
            add_message(session, "summarise_inactivity")
            add_message(session, "remind_signatories")
            add_message(session, "checkpoint_audit_chain")
    if expired:
        log.info("errands.expired", count=expired)


class Sweeper(threading.Thread):
    """Runs ``run_maintenance`` every ``interval_s`` seconds, and schedules the deadline
    watch and the inactivity summary every ``settings.deadline_check_interval_s``."""

    def __init__(self, runtime: Runtime, interval_s: float = 5.0) -> None:
        super().__init__(name="outbox-sweeper", daemon=True)
        self.runtime = runtime
        self.interval_s = interval_s
        self.stopped = threading.Event()

    def run(self) -> None:
        next_deadline_check = 0.0
        while not self.stopped.wait(self.interval_s):
            now = time.monotonic()
            check = now >= next_deadline_check
            try:
                run_maintenance(self.runtime, check_deadlines=check)
            except Exception:
                log.exception("maintenance.failed")
            else:
                if check:
                    next_deadline_check = now + self.runtime.settings.deadline_check_interval_s

    def stop(self) -> None:
        self.stopped.set()
