"""Every test starts from the seed: what a test commits is rolled back after it (or, for a
``committed_db`` test, emptied and seeded again), and ids and audit numbers start where the
seed left them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import func, select

from app.access.models import Employer
from app.audit.models import AuditEvent
from app.audit.service import record_event
from tests.conftest import SeededDatabase, joined
from workflows.runtime import Runtime


@contextmanager
def _a_test(database: SeededDatabase, runtime: Runtime, committed: bool) -> Iterator[None]:
    """What the ``database`` fixture does around a test."""
    if committed:
        database.committed()
        yield
        return
    with database.transaction() as connection, joined(runtime.session_factory, connection):
        yield


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.session_factory() as session:
        employers = session.scalar(select(func.count(Employer.id))) or 0
        events = session.scalar(select(func.count(AuditEvent.id))) or 0
    return employers, events


def _add_employer(runtime: Runtime) -> tuple[int, int]:
    """Commit an employer and an audit event about it: the employer's id, the event's number."""
    with runtime.unit_of_work() as session:
        employer = Employer(orgnr="2021009999", name="Testverket")
        session.add(employer)
        session.flush()
        event = record_event(
            session, actor="system:test", action="test", object_type="test", object_id=1
        )  # the shared chain, where the seed's event is
    return employer.id, event.seq


def test_each_test_starts_from_the_seed(
    seeded_database: SeededDatabase, session_app: Flask
) -> None:
    """Four tests one after another, the third committing for real: each finds the seed
    only, and gets the same id and audit number for what it adds."""
    runtime: Runtime = session_app.extensions["behorighet"]
    # From the seed as the fixture restores it: in the full run some earlier test leaves
    # one committed audit event behind (not yet found; the closing note of 2026-12-03).
    seeded_database.reseed()
    with _a_test(seeded_database, runtime, committed=False):
        seed = _counts(runtime)
    added = []
    for committed in (False, False, True, False):
        with _a_test(seeded_database, runtime, committed):
            assert _counts(runtime) == seed
            added.append(_add_employer(runtime))
            assert _counts(runtime) == (seed[0] + 1, seed[1] + 1)
    assert len(set(added)) == 1, added
    assert added[0][1] == seed[1] + 1  # the audit chain goes on from the seed's last event
