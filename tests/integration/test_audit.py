"""The audit chain: every change leaves an event; tampering is found by `audit verify`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from click.testing import CliRunner
from flask import Flask
from psycopg.errors import InsufficientPrivilege
from sqlalchemy import Row, create_engine, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.audit import anchor
from app.audit import service as audit_service
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.service import (
    GENESIS_HASH,
    SHARED,
    Pin,
    chain_key,
    record_event,
    redact_events,
    verify_chain,
)
from app.cli import main
from app.config import MissingSecretError, Settings
from app.db import utcnow
from app.documents.pki import seal_material, trust_roots
from tests.conftest import build_app, close_app, serving
from workflows import actors, bootstrap
from workflows.outbox import OutboxMessage, add_message
from workflows.runtime import Runtime
from workflows.worker import run_maintenance


def _cli(app: Flask, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), obj=_script_info(app))
    return result.exit_code, result.output


def _script_info(app: Flask):  # type: ignore[no-untyped-def]
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)


@pytest.mark.usefixtures("committed_db")  # four threads, each with its own connection
def test_chain_verifies_after_many_writers(runtime: Runtime) -> None:
    def write(n: int) -> None:
        for i in range(10):
            with runtime.unit_of_work() as s:
                record_event(
                    s, actor=f"system:t{n}", action="test.event", object_type="t", object_id=i
                )

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with runtime.session_factory() as session:
        report = verify_chain(session)
    assert report.is_intact, report
    assert report.events == 41  # the seed's event and 40 more


def test_audit_verify_command_finds_a_rewritten_event(app: Flask, session: Session) -> None:
    with app.app_context():
        code, output = _cli(app, "audit", "verify")
    assert code == 0 and "intact" in output

    # Someone with database superuser rights rewrites history behind the trigger's back.
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    session.execute(text("UPDATE audit_event SET data = '{\"forged\": true}' WHERE seq = 1"))
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.commit()

    with app.app_context():
        code, output = _cli(app, "audit", "verify")
    assert code == 1
    assert "broken at event 1" in output


# --- the keyed chain: an attacker with the database but not the key -----------------


def _attacker_digest(prev_hash: str, row: Row[Any]) -> str:
    """The plain SHA-256 chain hash, as anyone reading the source can recompute it."""
    body = json.dumps(
        {
            "seq": row.seq,
            "occurred_dt": row.occurred_dt.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "object_type": row.object_type,
            "object_id": row.object_id,
            "data": row.data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _rewrite_and_recompute(
    session: Session, seq: int, data: dict[str, Any], *, claim_legacy: bool = False
) -> None:
    """Behind the trigger's back: change event ``seq``'s data and recompute every hash from
    there on (and the chain head) with plain SHA-256, as a holder of the database's
    credentials but not of the audit key would."""
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    session.execute(
        text("UPDATE audit_event SET data = CAST(:d AS json) WHERE seq = :s"),
        {"d": json.dumps(data), "s": seq},
    )
    rows = session.execute(
        text("SELECT * FROM audit_event WHERE seq >= :s ORDER BY seq"), {"s": seq}
    ).all()
    prev = (
        session.execute(
            text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seq - 1}
        ).scalar_one_or_none()
        or GENESIS_HASH
    )
    for row in rows:
        digest = _attacker_digest(prev, row)
        session.execute(
            text(
                "UPDATE audit_event SET prev_hash = :p, hash = :h,"
                " key_version = CASE WHEN :legacy THEN 0 ELSE key_version END WHERE seq = :s"
            ),
            {"p": prev, "h": digest, "s": row.seq, "legacy": claim_legacy},
        )
        prev = digest
    session.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": prev})
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.commit()


def _some_events(session: Session, n: int = 3) -> None:
    for i in range(n):
        record_event(
            session, actor="system:test", action="test.event", object_type="t", object_id=i
        )
    session.commit()


def test_a_chain_rewritten_and_recomputed_without_the_key_fails(session: Session) -> None:
    _some_events(session)
    assert verify_chain(session).is_intact
    _rewrite_and_recompute(session, 2, {"forged": True})
    report = verify_chain(session)
    assert not report.is_intact and report.first_broken_seq == 2
    assert "keyed hash" in (report.reason or "")


def test_a_rewritten_chain_cannot_pass_for_legacy_events(session: Session) -> None:
    _some_events(session)
    _rewrite_and_recompute(session, 2, {"forged": True}, claim_legacy=True)
    report = verify_chain(session)
    assert report.first_broken_seq == 2
    assert "unkeyed event after the legacy boundary" in (report.reason or "")


def test_events_chained_before_the_key_keep_verifying(session: Session) -> None:
    """Migration 0015: the events already there keep their SHA-256 hashes (key_version 0)
    up to the legacy boundary; migration 0018: the keyed events of the one chain there was
    (key_version 1, hashed without a chain's name) are the shared chain's; every later
    one is keyed with its chain's name."""
    session.execute(text("TRUNCATE audit_event"))  # rolled back with the test
    prev = GENESIS_HASH
    for seq in (1, 2, 3, 4):
        event = AuditEvent(
            chain=SHARED,
            seq=seq,
            occurred_dt=utcnow(),
            actor="system:old",
            action="old.event",
            object_type="t",
            object_id=str(seq),
            data={"n": seq},
            prev_hash=prev,
            key_version=0 if seq < 4 else 1,
        )
        if seq < 4:
            event.hash = _attacker_digest(prev, event)  # type: ignore[arg-type]
        else:
            event.hash = audit_service._keyed_digest(chain_key(session), prev, event)
        session.add(event)
        prev = event.hash
    session.execute(
        text("UPDATE audit_chain_head SET seq = 4, last_hash = :h, legacy_until_seq = 3"),
        {"h": prev},
    )
    session.flush()
    _some_events(session, 2)
    report = verify_chain(session)
    assert report.is_intact, report
    assert report.events == 6
    assert session.scalars(select(AuditEvent.key_version).order_by(AuditEvent.seq)).all() == [
        0,
        0,
        0,
        1,
        3,
        3,
    ]
    # A legacy event is still checked: its own change is found.
    _rewrite_and_recompute_one_legacy(session)
    assert verify_chain(session).first_broken_seq == 2


def _rewrite_and_recompute_one_legacy(session: Session) -> None:
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    session.execute(text("UPDATE audit_event SET data = '{\"n\": 99}' WHERE seq = 2"))
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.commit()


def test_production_refuses_a_missing_or_short_audit_key() -> None:
    production = Settings(secret_key="x" * 64)
    with pytest.raises(MissingSecretError, match="AUDIT_KEY must be set"):
        production.audit_chain_key()
    with pytest.raises(MissingSecretError, match="at least 32"):
        dataclasses.replace(production, audit_key="short").audit_chain_key()
    with pytest.raises(MissingSecretError):
        bootstrap.configure(dataclasses.replace(production, database_url="sqlite://"))
    keyed = dataclasses.replace(production, audit_key="k" * 32).audit_chain_key()
    assert len(keyed) == 32 and keyed != ("k" * 32).encode()
    assert Settings(secret_key="x", testing=True).audit_chain_key() != keyed


# --- checkpoints outside the database ------------------------------------------------


def _tsa(runtime: Runtime) -> tuple[Any, Any]:
    return seal_material(runtime.settings).timestamper, trust_roots(runtime.settings)


def _verify(session: Session, runtime: Runtime, directory: Path) -> anchor.AnchoredReport:
    return anchor.verify_anchored(
        session, runtime.settings.audit_chain_key(), directory, trust_roots(runtime.settings)
    )


def test_a_checkpoint_pins_the_head_once_outside_the_database(
    session: Session, runtime: Runtime, tmp_path: Path
) -> None:
    timestamper, roots = _tsa(runtime)
    first = anchor.write_checkpoint(session, tmp_path, timestamper, roots)
    assert first is not None
    path = tmp_path / first.file_name
    assert path.stat().st_mode & 0o777 == 0o444
    head = session.get(AuditChainHead, SHARED)
    assert head is not None and first.pins == {SHARED: Pin(head.seq, ANY, head.last_hash)}
    assert anchor.write_checkpoint(session, tmp_path, timestamper, roots) is None  # unchanged
    session.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": "f" * 64})
    with pytest.raises(anchor.CheckpointError, match="the chain was rewritten"):
        anchor.write_checkpoint(session, tmp_path, timestamper, roots)
    session.rollback()
    before = path.read_bytes()
    assert not anchor._write_once(tmp_path, first.file_name, b"{}")  # never overwritten
    assert path.read_bytes() == before

    _some_events(session)
    second = anchor.write_checkpoint(session, tmp_path, timestamper, roots)
    assert second is not None and second.events == first.events + 3
    report = _verify(session, runtime, tmp_path)
    assert report.is_intact, report.problem
    assert report.checkpoint == second and report.checkpoint_dt is not None


def test_a_chain_truncated_after_the_last_checkpoint_fails(
    session: Session, runtime: Runtime, tmp_path: Path
) -> None:
    _some_events(session, 4)
    checkpoint = anchor.write_checkpoint(session, tmp_path, *_tsa(runtime))
    assert checkpoint is not None
    pinned = checkpoint.pins[SHARED].seq
    keep = pinned - 2
    # Behind the trigger's back, the last two events go and the head is set back to match.
    session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    session.execute(text("DELETE FROM audit_event WHERE seq > :k"), {"k": keep})
    session.execute(
        text(
            "UPDATE audit_chain_head SET seq = :k,"
            " last_hash = (SELECT hash FROM audit_event WHERE seq = :k)"
        ),
        {"k": keep},
    )
    session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    session.commit()
    assert verify_chain(session).is_intact  # consistent in the database alone
    report = _verify(session, runtime, tmp_path)
    assert not report.is_intact
    assert f"the shared chain ends at event {keep}" in (report.problem or "")
    assert f"pins event {pinned}: events were removed" in (report.problem or "")
    with pytest.raises(anchor.CheckpointError, match="events were removed"):
        anchor.write_checkpoint(session, tmp_path, *_tsa(runtime))


def test_a_legacy_boundary_moved_is_found_against_the_checkpoint(
    session: Session, runtime: Runtime, tmp_path: Path
) -> None:
    _some_events(session)
    assert anchor.write_checkpoint(session, tmp_path, *_tsa(runtime)) is not None
    # Rewrite all as "legacy" and move the boundary to the end: the key is no longer needed…
    _rewrite_and_recompute(session, 1, {"forged": True}, claim_legacy=True)
    session.execute(text("UPDATE audit_chain_head SET legacy_until_seq = seq"))
    session.commit()
    assert verify_chain(session).is_intact  # …in the database alone…
    report = _verify(session, runtime, tmp_path)  # …but the checkpoint says otherwise.
    assert not report.is_intact and "the legacy boundary is event" in (report.problem or "")


def test_a_changed_checkpoint_fails_its_timestamp(
    session: Session, runtime: Runtime, tmp_path: Path
) -> None:
    checkpoint = anchor.write_checkpoint(session, tmp_path, *_tsa(runtime))
    assert checkpoint is not None
    path = tmp_path / checkpoint.file_name
    data = json.loads(path.read_bytes())
    data["chains"][SHARED]["hash"] = "0" * 64
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    report = _verify(session, runtime, tmp_path)
    assert not report.is_intact and "does not cover it" in (report.problem or "")


def test_the_worker_schedules_the_checkpoint_and_verify_reports_it(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(audit_checkpoint_dir=str(tmp_path))
    runtime: Runtime = app.extensions["behorighet"]
    run_maintenance(runtime, check_deadlines=True)
    with runtime.session_factory() as s:
        queued = s.scalars(select(OutboxMessage.actor_name)).all()
    assert "checkpoint_audit_chain" in queued
    actors.checkpoint_audit_chain()  # as the worker runs it
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("audit-checkpoint-")

    with app.app_context():
        code, output = _cli(app, "audit", "verify")
    assert code == 0, output
    assert "intact" in output and "Anchored: 1 events in 1 chains" in output
    with app.app_context():
        code, output = _cli(app, "audit", "checkpoint")
    assert code == 0 and "Nothing new to anchor" in output

    with runtime.session_factory() as s:
        _some_events(s, 2)
        _rewrite_and_recompute(s, 1, {"forged": True})
    with app.app_context():
        code, output = _cli(app, "audit", "verify")
    assert code == 1
    assert "broken at event 1" in output and "keyed hash" in output
    with app.app_context():
        code, output = _cli(app, "audit", "checkpoint")
    assert code == 1 and "not anchored: the audit chain is broken" in output


# --- the application's database role ----------------------------------------------------


@pytest.fixture
def app_role(committed_db: None, database_url: str) -> Iterator[str]:
    """A role for this run's database (roles are the cluster's), dropped after the test."""
    role = f"{make_url(database_url).database}_app"[:63]
    yield role
    owner = create_engine(database_url)
    with owner.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    owner.dispose()


def test_the_application_role_cannot_rewrite_the_audit_log(
    app: Flask, app_role: str, database_url: str, pki_dir: Path
) -> None:
    with app.app_context():
        code, output = _cli(app, "db", "grant-app-role", app_role)
    assert code == 0, output
    as_app = make_url(database_url).set(username=app_role, password=None)
    engine = create_engine(as_app)
    try:
        for statement in (
            "UPDATE audit_event SET action = 'rewritten'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "DROP TRIGGER audit_event_append_only ON audit_event",
            "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
            "DROP TABLE audit_event",
        ):
            with engine.begin() as conn, pytest.raises(DBAPIError) as refused:
                conn.execute(text(statement))
            assert isinstance(refused.value.orig, InsufficientPrivilege), statement
        # The payload columns it may update (retention), but the trigger lets nothing
        # through other than the removal of a payload its chain covers by digest.
        with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE audit_event SET data = '{\"forged\": true}'"))
    finally:
        engine.dispose()

    # The application's own work, as that role: changes, their audit events, verify.
    restricted = build_app(as_app.render_as_string(hide_password=False), pki_dir)
    try:
        with serving(restricted, None):
            runtime: Runtime = restricted.extensions["behorighet"]
            with runtime.unit_of_work() as s:
                record_event(
                    s, actor="system:test", action="test.event", object_type="t", object_id=1
                )
                add_message(s, "summarise_inactivity")
            with runtime.unit_of_work() as s:
                assert redact_events(s, "t", [1]) == 1  # retention removes the payload
            with runtime.unit_of_work() as s:
                assert verify_chain(s).is_intact
                assert s.scalar(select(text("current_user"))) == app_role
            client = restricted.test_client()
            assert client.get("/").status_code in (200, 302)
    finally:
        close_app(restricted)

    with app.app_context():  # idempotent; the tables' owner itself is refused
        assert _cli(app, "db", "grant-app-role", app_role)[0] == 0
        owner = str(make_url(database_url).username)
        code, output = _cli(app, "db", "grant-app-role", owner)
    assert (code == 1 and "owns the tables" in output) or "superuser" in output


def test_the_application_role_only_adds_to_the_access_log_and_deletes_only_the_oldest(
    app: Flask, app_role: str, database_url: str
) -> None:
    from datetime import timedelta

    from app.privacy.access_log import DELETE_FUNCTION

    with app.app_context():
        code, output = _cli(app, "db", "grant-app-role", app_role)
    assert code == 0, output
    engine = create_engine(make_url(database_url).set(username=app_role, password=None))
    row = "(1, 'h', 'errand', '', now() - CAST(:age AS interval))"
    try:
        with engine.begin() as conn:  # it adds and reads
            for age in ("800 days", "1 day"):
                conn.execute(
                    text(
                        "INSERT INTO staff_access_log"
                        f" (staff_id, subject_hash, what, object_ref, viewed_dt) VALUES {row}"
                    ),
                    {"age": age},
                )
        for statement in (
            "UPDATE staff_access_log SET subject_hash = 'other'",
            "DELETE FROM staff_access_log",
            "TRUNCATE staff_access_log",
            "ALTER TABLE staff_access_log DISABLE TRIGGER staff_access_log_no_update",
        ):
            with engine.begin() as conn, pytest.raises(DBAPIError) as refused:
                conn.execute(text(statement))
            assert isinstance(refused.value.orig, InsufficientPrivilege), statement
        with engine.begin() as conn:  # only through the owner's function, only the old
            cutoff = utcnow() - timedelta(days=730)
            gone = conn.execute(
                text(f"SELECT {DELETE_FUNCTION}(:c, 100)"), {"c": cutoff}
            ).scalar_one()
            assert gone == 1
            assert conn.execute(text("SELECT count(*) FROM staff_access_log")).scalar_one() == 1
    finally:
        engine.dispose()
    owner = create_engine(database_url)  # even the owner cannot change a view
    try:
        with owner.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE staff_access_log SET reason = 'later'"))
    finally:
        owner.dispose()
