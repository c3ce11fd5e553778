"""The audit chain: every change leaves an event; tampering is found by `audit verify`."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.audit.service import record_event, verify_chain
from app.cli import main
from workflows.runtime import Runtime


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
