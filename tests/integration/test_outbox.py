"""The transactional outbox: sent after commit, never for a rollback, re-sent until done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import utcnow
from workflows.outbox import OutboxMessage, add_message, bookkeeping
from workflows.runtime import Runtime


class RecordingBroker:
    """Stands between the relay and the real broker to count or refuse sends."""

    def __init__(self, inner: dramatiq.Broker) -> None:
        self.inner = inner
        self.sent: list[Any] = []
        self.down = False

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent.append(message)
        return message

    def get_actor(self, name: str) -> Any:
        return self.inner.get_actor(name)


@pytest.fixture
def recording(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> RecordingBroker:
    broker = RecordingBroker(runtime.broker)
    monkeypatch.setattr(runtime.relay, "broker", broker)
    return broker


def test_message_is_sent_only_after_commit(runtime: Runtime, recording: RecordingBroker) -> None:
    with runtime.session_factory() as session:
        message = add_message(session, "verify_errand", errand_id=None, marker=1)
        assert recording.sent == []
        session.commit()
    assert [m.options["outbox_id"] for m in recording.sent] == [message.id]
    assert recording.sent[0].kwargs == {"marker": 1}


def test_rolled_back_change_sends_nothing(
    runtime: Runtime, recording: RecordingBroker, session: Session
) -> None:
    with runtime.session_factory() as other:
        add_message(other, "verify_errand", marker=2)
        other.rollback()
    assert recording.sent == []
    assert session.scalars(select(OutboxMessage)).all() == []


def test_sweeper_resends_what_the_broker_did_not_take(
    runtime: Runtime, recording: RecordingBroker, session: Session
) -> None:
    recording.down = True
    with runtime.session_factory() as s:
        add_message(s, "verify_errand", marker=3)
        s.commit()  # the broker is down: the row stays, unsent
    assert recording.sent == []
    recording.down = False
    assert runtime.relay.sweep(older_than=timedelta(0)) == 1
    assert len(recording.sent) == 1
    row = session.scalars(select(OutboxMessage)).one()
    assert row.send_count == 1 and row.done_dt is None


def test_sweeper_leaves_done_and_recent_messages_alone(
    runtime: Runtime, recording: RecordingBroker, session: Session
) -> None:
    with runtime.session_factory() as s:
        done = add_message(s, "verify_errand", marker=4)
        add_message(s, "verify_errand", marker=5)
        s.commit()
        s.get(OutboxMessage, done.id).done_dt = utcnow()  # type: ignore[union-attr]
        s.commit()
    recording.sent.clear()
    assert runtime.relay.sweep() == 0  # sent a moment ago: not due yet
    assert runtime.relay.sweep(older_than=timedelta(0)) == 1
    assert recording.sent[0].kwargs == {"marker": 5}


def test_a_message_of_a_savepoint_rolled_back_is_not_sent(
    runtime: Runtime, recording: RecordingBroker
) -> None:
    with runtime.session_factory() as session:
        kept = add_message(session, "verify_errand", marker=6)
        with pytest.raises(RuntimeError), session.begin_nested():
            add_message(session, "verify_errand", marker=7)
            raise RuntimeError("the savepoint's work is undone")
        session.commit()
    assert [m.options["outbox_id"] for m in recording.sent] == [kept.id]
    assert [m.kwargs for m in recording.sent] == [{"marker": 6}]


@pytest.mark.usefixtures("committed_db")  # a real commit, not a savepoint's release
def test_the_outbox_marks_alone_are_committed_asynchronously(runtime: Runtime) -> None:
    """Only the transaction that marks a message sent or done skips the wait for the disk;
    the next one on the same connection waits again (``SET LOCAL``)."""
    with runtime.session_factory() as session:
        bookkeeping(session)
        assert session.scalar(text("SHOW synchronous_commit")) == "off"
        session.commit()
        assert session.scalar(text("SHOW synchronous_commit")) == "on"


@pytest.mark.usefixtures("committed_db")  # the caller's commit is real, as in production
def test_a_commit_stands_when_counting_its_sends_fails(
    runtime: Runtime, recording: RecordingBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away between a commit and the count of its sends (a restart): the
    caller's commit returns as it should, and the unmarked message is swept again later."""
    import workflows.outbox as outbox

    def database_gone(session: Session) -> None:
        raise OperationalError("SET LOCAL synchronous_commit TO OFF", {}, Exception("gone"))

    monkeypatch.setattr(outbox, "bookkeeping", database_gone)
    with runtime.session_factory() as s:
        message = add_message(s, "verify_errand", marker=7)
        s.commit()  # does not raise
    assert [m.options["outbox_id"] for m in recording.sent] == [message.id]
    monkeypatch.undo()
    with runtime.session_factory() as s:
        row = s.get_one(OutboxMessage, message.id)
        assert row.send_count == 0 and row.last_sent_dt is None  # swept and sent again later
