"""When a step's message is given up on, the errand moves to ``failed`` (visible, retryable).

dramatiq rejects ("nacks") a message once its retries are used up, it is too old
(``max_age``) or it raised an exception listed in ``throws``; that is the one signal
that the step will not run again by itself.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from sqlalchemy.orm import Session, sessionmaker

from app.core.agents import Agent
from app.db import unit_of_work
from workflows.broker import step_of
from workflows.outbox import mark_done
from workflows.pipeline import record_step_failure

log = structlog.get_logger(__name__)

TOO_OLD = "the message was too old to run (max_age)"


def _failure_reason(options: dict[str, Any]) -> str:
    traceback = (options.get("traceback") or "").strip()
    return traceback.splitlines()[-1] if traceback else TOO_OLD


class StepFailureRecorder(dramatiq.Middleware):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.record(message.actor_name, message.kwargs, _failure_reason(message.options))
        outbox_id = message.options.get("outbox_id")
        if outbox_id is not None:
            mark_done(self.factory, int(outbox_id))

    def record(self, actor_name: str, kwargs: dict[str, Any], reason: str) -> None:
        errand_id = kwargs.get("errand_id")
        step = step_of(actor_name)
        if errand_id is None or step is None:
            log.error("pipeline.message_dead", actor=actor_name, reason=reason)
            return
        with unit_of_work(self.factory) as session:
            record_step_failure(session, int(errand_id), step, reason, Agent.system(actor_name))
