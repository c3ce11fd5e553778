"""The audit log as a chain per employer: two employers' events never wait on each other,
and `audit verify` and the checkpoints cover every chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.errors import LockNotAvailable
from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.access.models import Employer
from app.audit import anchor
from app.audit.models import AuditEvent
from app.audit.service import SHARED, chain_of, record_event, verify_chain
from app.documents.pki import seal_material, trust_roots
from tests.factories import registration_draft
from workflows.runtime import Runtime


def _employers(session: Session) -> tuple[int, int]:
    first, second = session.scalars(select(Employer.id).order_by(Employer.id).limit(2))
    return first, second


def _event(session: Session, employer_id: int, n: int = 0) -> AuditEvent:
    return record_event(
        session,
        actor="system:test",
        action="test.event",
        object_type="employer",
        object_id=employer_id,
        data={"n": n},
    )


def _behind_the_trigger(session: Session, *statements: tuple[str, dict[str, object]]) -> None:
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    for statement, values in statements:
        session.execute(text(statement), values)
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.commit()


@pytest.mark.usefixtures("committed_db")  # three transactions at once, on connections of their own
def test_two_employers_events_never_wait_on_each_other(runtime: Runtime) -> None:
    with runtime.session_factory() as s:
        first, second = _employers(s)
    with (
        runtime.session_factory() as a,
        runtime.session_factory() as b,
        runtime.session_factory() as c,
    ):
        _event(a, first)  # holds the head of the first employer's chain, uncommitted
        b.execute(text("SET LOCAL lock_timeout = '500ms'"))
        _event(b, second)  # another employer: no wait
        b.commit()
        c.execute(text("SET LOCAL lock_timeout = '500ms'"))
        with pytest.raises(DBAPIError) as waited:
            _event(c, first)  # the same employer: waits for a, and gives up
        assert isinstance(waited.value.orig, LockNotAvailable)
        c.rollback()
        a.commit()
    with runtime.session_factory() as s:
        report = verify_chain(s)
        assert report.is_intact, report
        chains = set(s.scalars(select(AuditEvent.chain)))
    assert {chain_of(first), chain_of(second)} <= chains


def test_each_employer_has_its_own_chain_and_a_rewritten_one_is_found(session: Session) -> None:
    first, second = _employers(session)
    for n in range(3):
        _event(session, first, n)
        session.commit()
    other = record_event(
        session,
        actor="system:test",
        action="test.event",
        object_type="t",
        object_id=1,
        data={"employer_id": second},
    )
    session.commit()
    shared = record_event(
        session, actor="system:test", action="login", object_type="t", object_id=2
    )
    session.commit()
    assert (other.chain, other.seq) == (chain_of(second), 1)
    assert shared.chain == SHARED
    ours = session.scalars(
        select(AuditEvent.seq).where(AuditEvent.chain == chain_of(first)).order_by(AuditEvent.id)
    ).all()
    assert ours == [1, 2, 3]
    report = verify_chain(session)
    assert report.is_intact, report
    assert report.chains >= 3

    _behind_the_trigger(
        session,
        (
            "UPDATE audit_event SET data = '{\"forged\": true}' WHERE chain = :c AND seq = 2",
            {"c": chain_of(first)},
        ),
    )
    report = verify_chain(session)
    assert (report.chain, report.first_broken_seq) == (chain_of(first), 2)
    assert report.problem.startswith(f"broken at event 2 of the chain employer:{first}")
    # The chain covers the payload's digest (key_version 3): the payload no longer matches.
    assert "payload does not match its digest" in report.problem


def test_a_transaction_writes_one_chain(session: Session) -> None:
    """Its first event picks the chain; the others follow, so it locks one head only."""
    first, second = _employers(session)
    events = [_event(session, first), _event(session, second)]
    session.commit()
    assert [(e.chain, e.seq) for e in events] == [(chain_of(first), 1), (chain_of(first), 2)]
    assert _event(session, second).chain == chain_of(second)  # a new transaction
    session.commit()
    assert verify_chain(session).is_intact


def test_an_errands_events_are_its_employers(session: Session) -> None:
    errand = registration_draft(session)
    session.flush()
    chains = set(
        session.scalars(
            select(AuditEvent.chain).where(
                AuditEvent.object_type == "errand", AuditEvent.object_id == str(errand.id)
            )
        )
    )
    assert errand.employer_id is not None and chains == {chain_of(errand.employer_id)}


def test_a_checkpoint_pins_every_chain_and_finds_one_removed(
    session: Session, runtime: Runtime, tmp_path: Path
) -> None:
    first, second = _employers(session)
    for employer_id in (first, second, first):
        _event(session, employer_id)
        session.commit()
    timestamper = seal_material(runtime.settings).timestamper
    roots = trust_roots(runtime.settings)
    checkpoint = anchor.write_checkpoint(session, tmp_path, timestamper, roots)
    assert checkpoint is not None
    assert checkpoint.pins[chain_of(first)].seq == 2 and checkpoint.pins[chain_of(second)].seq == 1
    key = runtime.settings.audit_chain_key()
    assert anchor.verify_anchored(session, key, tmp_path, roots).is_intact

    # The second employer's chain goes entirely, head and all: the rest is consistent…
    _behind_the_trigger(
        session,
        ("DELETE FROM audit_event WHERE chain = :c", {"c": chain_of(second)}),
        ("DELETE FROM audit_chain_head WHERE chain = :c", {"c": chain_of(second)}),
    )
    assert verify_chain(session).is_intact
    report = anchor.verify_anchored(session, key, tmp_path, roots)  # …but not to the checkpoint
    assert not report.is_intact
    assert f"the chain employer:{second} ends at event 0" in (report.problem or "")
    assert "pins event 1: events were removed" in (report.problem or "")
    with pytest.raises(anchor.CheckpointError, match="events were removed"):
        anchor.write_checkpoint(session, tmp_path, timestamper, roots)


def _statements(session: Session) -> list[str]:
    """The SQL the session's engine sends from now on (until the test ends)."""
    sent: list[str] = []
    engine = session.get_bind().engine

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        sent.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    session.info["stop_recording"] = lambda: sa_event.remove(
        engine, "before_cursor_execute", record
    )
    return sent


@pytest.mark.usefixtures("committed_db")  # transactions of their own, not savepoints of one
def test_a_transactions_events_lock_and_write_their_head_once(session: Session) -> None:
    """Three events of one transaction: the head is locked once and written once at the
    commit (not three times each), and the chain verifies."""
    first, _ = _employers(session)
    _event(session, first, -1)  # the chain's head made
    session.commit()
    sent = _statements(session)
    try:
        for n in range(3):
            _event(session, first, n)
        session.commit()
    finally:
        session.info.pop("stop_recording")()
    on_head = [s for s in sent if "audit_chain_head" in s]
    assert len(on_head) == 2, on_head
    assert on_head[0].lstrip().startswith("SELECT") and "FOR UPDATE" in on_head[0]
    assert on_head[1].lstrip().startswith("UPDATE")
    ours = session.execute(
        select(AuditEvent.seq, AuditEvent.data)
        .where(AuditEvent.chain == chain_of(first))
        .order_by(AuditEvent.seq)
    ).all()
    assert [row.data["n"] for row in ours[-3:]] == [0, 1, 2]
    assert [row.seq for row in ours] == list(range(1, len(ours) + 1))
    assert verify_chain(session).is_intact


@pytest.mark.parametrize("before", [0, 1], ids=["first-event-in-the-savepoint", "one-before"])
def test_events_of_a_savepoint_rolled_back_leave_the_chain_whole(
    session: Session, before: int
) -> None:
    """A savepoint rolled back takes its events with it; the transaction's later events
    follow the ones it kept, and the head written at the commit is the last of them."""
    first, _ = _employers(session)
    session.commit()
    kept = [_event(session, first, n).data["n"] for n in range(before)]
    with pytest.raises(RuntimeError), session.begin_nested():
        _event(session, first, 10)
        session.flush()
        raise RuntimeError("the savepoint's work is undone")
    kept.append(_event(session, first, 20).data["n"])
    session.commit()
    ours = session.execute(
        select(AuditEvent.data).where(AuditEvent.chain == chain_of(first)).order_by(AuditEvent.seq)
    ).scalars()
    assert [data["n"] for data in ours][-len(kept) :] == kept
    report = verify_chain(session)
    assert report.is_intact, report
