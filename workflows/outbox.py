"""Transactional outbox: pipeline messages are rows written with the state change.

A message row is added in the same transaction as the change that calls for it,
sent to the broker after that transaction commits, marked done by the worker when
the actor has finished, and sent again by the sweeper while it is not done.
Actors are idempotent, so a message sent twice does no harm.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from sqlalchemy import JSON, ForeignKey, Index, String, event, inspect, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from app.db import Base, utcnow
from app.logging import REQUEST_ID, current_request_id

log = structlog.get_logger(__name__)

_PENDING_KEY = "outbox_pending"


class OutboxMessage(Base):
    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), index=True)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    last_sent_dt: Mapped[datetime | None]
    send_count: Mapped[int] = mapped_column(default=0)
    done_dt: Mapped[datetime | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
    """The web request that queued it, directly or through the actors before it."""

    __table_args__ = (Index("ix_outbox_message_undone", "done_dt", "created_dt"),)


def add_message(
    session: Session, actor_name: str, *, errand_id: int | None = None, **kwargs: Any
) -> OutboxMessage:
    """Queue ``actor_name(**kwargs)`` to run once the current transaction commits."""
    if errand_id is not None:
        kwargs["errand_id"] = errand_id
    message = OutboxMessage(
        actor_name=actor_name,
        kwargs=kwargs,
        errand_id=errand_id,
        request_id=current_request_id(),
    )
    session.add(message)  # inserted at the next flush (its id known from then)
    session.info.setdefault(_PENDING_KEY, []).append(message)
    return message


def _to_dramatiq(message: OutboxMessage, broker: dramatiq.Broker) -> dramatiq.Message[Any]:
    actor = broker.get_actor(message.actor_name)
    options: dict[str, Any] = {"outbox_id": message.id}
    if message.request_id:
        options[REQUEST_ID] = message.request_id
    return actor.message_with_options(kwargs=message.kwargs, **options)


class OutboxRelay:
    """Sends the messages of each committed transaction, and sweeps up the ones left over."""

    def __init__(
        self, factory: sessionmaker[Session], broker: dramatiq.Broker, resend_after: timedelta
    ) -> None:
        self.factory = factory
        self.broker = broker
        self.resend_after = resend_after

    def install(self) -> None:
        """Send after every commit of a session made by this factory."""
        event.listen(self.factory, "after_commit", self._after_commit)
        event.listen(self.factory, "after_soft_rollback", self._after_rollback)

    def _after_rollback(self, session: Session, previous: Any) -> None:
        if previous.nested:  # a savepoint: the transaction (and its messages) goes on
            return
        session.info.pop(_PENDING_KEY, None)

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint released, not the real commit
            return
        # A savepoint rolled back took its messages' rows with it: they are transient again.
        messages = [m for m in session.info.pop(_PENDING_KEY, []) if inspect(m).has_identity]
        if messages:
            self.send(messages)

    def send(self, messages: list[OutboxMessage]) -> None:
        """Send the messages a transaction just committed (as it wrote them: none can be
        done yet), then count the sends the broker took in one statement."""
        sent = [message.id for message in messages if self._enqueue(message)]
        if not sent:
            return
        try:
            with self.factory() as session:
                bookkeeping(session)
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(sent))
                    .values(last_sent_dt=utcnow(), send_count=OutboxMessage.send_count + 1)
                )
                session.commit()
        except SQLAlchemyError:
            # This runs after the caller's commit: its change is in, and an error here would
            # reach it as if it had failed. Unmarked, the messages are swept and sent again
            # (the actors are idempotent).
            log.warning("outbox.mark_sent_failed", messages=len(sent), exc_info=True)

    def _enqueue(self, message: OutboxMessage) -> bool:
        """True when the broker took ``message``."""
        try:
            self.broker.enqueue(_to_dramatiq(message, self.broker))
        except Exception:  # the broker is down: the sweeper sends it later
            log.warning("outbox.send_failed", outbox_id=message.id, exc_info=True)
            return False
        return True

    def sweep(self, limit: int = 500, older_than: timedelta | None = None) -> int:
        """Send every message that is not done and was not sent recently. Returns how many."""
        cutoff = utcnow() - (self.resend_after if older_than is None else older_than)
        with self.factory() as session:
            due = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.done_dt.is_(None),
                    (OutboxMessage.last_sent_dt.is_(None) & (OutboxMessage.created_dt <= cutoff))
                    | (OutboxMessage.last_sent_dt <= cutoff),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for message in due:
                if self._enqueue(message):
                    message.last_sent_dt = utcnow()
                    message.send_count += 1
            session.commit()
        if due:
            log.info("outbox.swept", count=len(due))
        return len(due)


def bookkeeping(session: Session) -> None:
    """The session's transaction only counts a send or marks a message done: on PostgreSQL
    it commits without waiting for the WAL to reach the disk (``synchronous_commit`` off for
    it alone). A crash of the database server may lose the last fraction of a second of
    these marks, never a change: a message then looks unsent or undone, the sweeper sends
    it again, and the actor, idempotent, finds its work done."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def mark_done(factory: sessionmaker[Session], outbox_id: int) -> None:
    with factory() as session:
        bookkeeping(session)
        mark_done_in(session, outbox_id)
        session.commit()


def mark_done_in(session: Session, outbox_id: int) -> None:
    """The message's row is done, in the caller's transaction."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id, OutboxMessage.done_dt.is_(None))
        .values(done_dt=utcnow())
    )


class OutboxAcknowledgement(dramatiq.Middleware):
    """Marks a message's outbox row done once its actor has finished without error."""

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
        outbox_id = message.options.get("outbox_id")
        if exception is None and outbox_id is not None:
            mark_done(self.factory, int(outbox_id))
