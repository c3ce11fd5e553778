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
from app.core.text import mask_numbers, without_unsafe_characters
from app.db import unit_of_work
from workflows.broker import step_of
from workflows.outbox import mark_done_in
from workflows.pipeline import clear_failed_attempts, record_failed_attempt, record_step_failure

log = structlog.get_logger(__name__)

TOO_OLD = "the message was too old to run (max_age)"


def _failure_reason(options: dict[str, Any]) -> str:
    traceback = (options.get("traceback") or "").strip()
    return traceback.splitlines()[-1] if traceback else TOO_OLD


def describe(exception: BaseException) -> str:
    """The error as the errand shows it: its kind and message, one line, with no
    character the database cannot store and no personnummer in full."""
    text = " ".join(mask_numbers(without_unsafe_characters(str(exception))).split())
    return (f"{type(exception).__name__}: {text}" if text else type(exception).__name__)[:1000]


class StepFailureRecorder(dramatiq.Middleware):
    """Records each failed attempt of an errand's step on the errand as it happens (its
    number, of how many, the error), clears it when the step succeeds, and moves the
    errand to ``failed`` when dramatiq gives up on the message.

    Added after dramatiq's ``Retries``, its ``after_process_message`` runs before that
    one's (dramatiq calls them in reverse), so ``retries`` still counts the attempts before
    this one. It runs outside the actor's own transaction (rolled back by then), in a
    short transaction of its own."""

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
        errand_id = message.kwargs.get("errand_id")
        step = step_of(message.actor_name)
        if errand_id is None or step is None:
            return
        try:
            self._record(broker, message, int(errand_id), step, exception)
        except Exception:  # the database may be what failed; the nack still comes
            log.exception("pipeline.attempt_not_recorded", actor=message.actor_name)

    def _record(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        errand_id: int,
        step: str,
        exception: BaseException | None,
    ) -> None:
        with unit_of_work(self.factory) as session:
            if exception is None:
                clear_failed_attempts(session, errand_id, step)
                return
            actor = broker.get_actor(message.actor_name)
            max_retries = message.options.get("max_retries", actor.options.get("max_retries"))
            record_failed_attempt(
                session,
                errand_id,
                step,
                attempt=int(message.options.get("retries", 0)) + 1,
                max_attempts=int(max_retries if max_retries is not None else 20) + 1,
                error=describe(exception),
                agent=Agent.system(message.actor_name),
            )

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """The message is given up on: the errand fails and the outbox row is done, in one
        transaction (nobody sees the one without the other)."""
        outbox_id = message.options.get("outbox_id")
        with unit_of_work(self.factory) as session:
            self._fail(session, message.actor_name, message.kwargs, message.options)
            if outbox_id is not None:
                mark_done_in(session, int(outbox_id))

    def record(self, actor_name: str, kwargs: dict[str, Any], reason: str) -> None:
        with unit_of_work(self.factory) as session:
            self._fail(session, actor_name, kwargs, {"traceback": reason})

    def _fail(
        self, session: Session, actor_name: str, kwargs: dict[str, Any], options: dict[str, Any]
    ) -> None:
        errand_id = kwargs.get("errand_id")
        step = step_of(actor_name)
        reason = _failure_reason(options)
        if errand_id is None or step is None:
            log.error("pipeline.message_dead", actor=actor_name, reason=reason)
            return
        record_step_failure(session, int(errand_id), step, reason, Agent.system(actor_name))
