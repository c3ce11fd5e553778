"""When a step has used up its retries, the submission moves to ``failed`` (visible, retryable)."""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from sqlalchemy.orm import Session, sessionmaker

from app.core.agents import Agent
from app.db import unit_of_work
from workflows.outbox import mark_done

log = structlog.get_logger(__name__)


class StepFailureRecorder(dramatiq.Middleware):
    """Runs after dramatiq's Retries middleware has decided a message is dead."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not getattr(message, "failed", False):
            return
        self.record(message.actor_name, message.kwargs, repr(exception))
        outbox_id = message.options.get("outbox_id")
        if outbox_id is not None:
            mark_done(self.factory, int(outbox_id))

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # max_age passed: the message is dropped, so the errand must not wait silently.
        self.record(message.actor_name, message.kwargs, "the message was too old to run")

    def record(self, actor_name: str, kwargs: dict[str, Any], reason: str) -> None:
        from workflows.broker import step_of
        from workflows.pipeline import record_step_failure

        submission_id = kwargs.get("submission_id")
        step = step_of(actor_name)
        if submission_id is None or step is None:
            log.error("pipeline.message_dead", actor=actor_name)
            return
        with unit_of_work(self.factory) as session:
            record_step_failure(session, int(submission_id), step, reason, Agent.system(actor_name))
