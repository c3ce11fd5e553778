"""A process killed with SIGKILL while a submission is in flight loses nothing and applies
nothing twice: the demo process (in-process broker) and a worker process (Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.models import RoleGrant
from app.audit.service import verify_chain
from app.registrations.models import Submission
from tests.conftest import INGRID, TEST_DATABASE_URL
from tests.factories import claim_and_approve, received_by_esignature, registration_draft
from tests.support import (
    PG_ADMIN_URL,
    PG_TEST_DB,
    REDIS_URL,
    WebSession,
    free_port,
    require_service,
    wait_for,
)
from workflows import pipeline
from workflows.runtime import Runtime
from workflows.states import SubmissionState

pytestmark = pytest.mark.slow
BEHORIGHET = str(Path(sys.executable).with_name("behorighet"))
PROVVERKET = "2021004920"


def _submission_in_review(runtime: Runtime) -> Submission:
    """David's registration, signed and verified, waiting for a caseworker."""
    from app.core.agents import Agent

    with runtime.unit_of_work() as session:
        submission = received_by_esignature(session, registration_draft(session))
        pipeline.verify(session, submission.id, Agent.system("test"))
    return submission


class EmployerLock:
    """Holds Provverket's row lock from outside, as the apply step takes it, so that step
    blocks mid-way."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB)

    def __enter__(self) -> EmployerLock:
        self.conn.execute(
            "SELECT id FROM employer WHERE orgnr = %s FOR NO KEY UPDATE", (PROVVERKET,)
        )
        return self

    def someone_is_waiting(self) -> bool:
        with psycopg.connect(PG_ADMIN_URL) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'",
                (PG_TEST_DB,),
            ).fetchone()
        return bool(row and row[0])

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [BEHORIGHET, *args],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(process)


def _state(session: Session, submission_id: int) -> SubmissionState:
    session.expire_all()
    return session.get(Submission, submission_id).state  # type: ignore[union-attr]


def _grants(session: Session, submission_id: int) -> int:
    return (
        session.scalar(
            select(func.count(RoleGrant.id)).where(RoleGrant.source_submission_id == submission_id)
        )
        or 0
    )


def test_demo_killed_while_applying_loses_nothing(
    runtime: Runtime,
    session: Session,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    submission = _submission_in_review(runtime)
    port = free_port()
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "BROKER_URL": "stub://",
        "BEHORIGHET_INSTANCE_DIR": str(tmp_path),
        "MAIL_URL": f"smtp://127.0.0.1:{free_port()}",
        "SECRET_KEY": "crash-test",
    }
    log = tmp_path / "demo.log"
    demo = _spawn(["demo", "--port", str(port)], env, log)
    processes.append(demo)
    web = WebSession(f"http://127.0.0.1:{port}")
    wait_for(lambda: _healthy(web), timeout=30, message="the demo to serve")

    web.login_with_simulated_bankid(INGRID, lambda: _newest_order_ref(session))
    with EmployerLock() as lock:
        web.post(
            f"/handlaggning/{submission.reference}/ta",
            {},
            f"/handlaggning/{submission.reference}",
        )
        web.post(
            f"/handlaggning/{submission.reference}/godkann",
            {},
            f"/handlaggning/{submission.reference}",
        )
        wait_for(lock.someone_is_waiting, message="the apply step to block on the lock")
        _kill(demo)  # SIGKILL in the middle of the apply step
    assert _state(session, submission.id) is SubmissionState.APPROVED
    assert _grants(session, submission.id) == 0

    demo = _spawn(["demo", "--port", str(port)], env, log)
    processes.append(demo)
    wait_for(
        lambda: _state(session, submission.id) is SubmissionState.APPLIED,
        timeout=30,
        message="the restarted demo to finish the apply step",
    )
    assert _grants(session, submission.id) == 1
    assert verify_chain(session).is_intact


@pytest.fixture
def broker_url() -> str:
    require_service("Redis")
    return REDIS_URL


def test_worker_killed_while_applying_loses_nothing(
    runtime: Runtime,
    session: Session,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:

    submission = _submission_in_review(runtime)
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "BROKER_URL": REDIS_URL,
        "OUTBOX_RESEND_AFTER_S": "2",
        "SECRET_KEY": "crash-test",
    }
    log = tmp_path / "worker.log"
    processes.append(_spawn(["worker", "--threads", "1"], env, log))

    with EmployerLock() as lock:
        with runtime.unit_of_work() as s:  # the caseworker's approval, committed
            claim_and_approve(s, s.get(Submission, submission.id))  # type: ignore[arg-type]
        wait_for(lock.someone_is_waiting, timeout=30, message="the worker to block mid-apply")
        _kill(processes[-1])
    assert _state(session, submission.id) is SubmissionState.APPROVED
    assert _grants(session, submission.id) == 0

    processes.append(_spawn(["worker", "--threads", "1"], env, log))
    wait_for(
        lambda: _state(session, submission.id) is SubmissionState.APPLIED,
        timeout=40,
        message="the restarted worker to finish the apply step",
    )
    assert _grants(session, submission.id) == 1


def _newest_order_ref(session: Session) -> str:
    from app.eid.models import EidOrder

    session.expire_all()
    ref = session.scalars(select(EidOrder.order_ref).order_by(EidOrder.id.desc())).first()
    assert ref is not None
    return ref


def _healthy(web: WebSession) -> bool:
    try:
        return "ok" in web.get("/healthz")
    except OSError:
        return False
