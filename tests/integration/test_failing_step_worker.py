"""A pipeline step that fails shows on the errand within seconds, with a real worker
process (``behorighet worker`` on Redis): the database refuses the apply step's write on
every attempt (a trigger, from outside the product); the errand says "Tekniskt fel –
försöker igen, försök 1 av 9" with the error and is listed under "Tekniskt fel" while the
step is tried again; once the database takes the write again, the next attempt applies it
and the errand no longer shows the failure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.casework import service as casework
from app.documents.pki import accepted_seal
from app.registrations.models import DocumentKind, Errand
from devtools.plugin import StandIns
from tests.conftest import INGRID, TEST_AUDIT_KEY, TEST_DATABASE_URL, login
from tests.factories import caseworker, in_review
from tests.support import (
    PG_ADMIN_URL,
    PG_TEST_DB,
    REDIS_URL,
    TEST_PROCESS,
    free_port,
    require_service,
    wait_for,
)
from workflows.runtime import Runtime
from workflows.states import ErrandState

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]
BEHORIGHET = str(Path(sys.executable).with_name("behorighet"))
TEST_DB = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB
REFUSAL = "the permission store refuses new grants"


@pytest.fixture
def broker_url() -> str:
    require_service("Redis")
    return REDIS_URL


@pytest.fixture
def grants_refused() -> Iterator[None]:
    """Every insert into role_grant fails, until the test drops the trigger (or ends)."""
    with psycopg.connect(TEST_DB, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_grants() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_grants BEFORE INSERT ON role_grant "
            "FOR EACH ROW EXECUTE FUNCTION refuse_grants()"
        )
    yield
    _accept_grants()


def _accept_grants() -> None:
    with psycopg.connect(TEST_DB, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS refuse_grants ON role_grant")
        conn.execute("DROP FUNCTION IF EXISTS refuse_grants()")


@pytest.fixture
def worker_process(app: Flask, runtime: Runtime, tmp_path: Path) -> Iterator[Path]:
    root = StandIns.of(app).pki.root_certificate_file
    env = {
        **os.environ,
        **TEST_PROCESS,
        "DATABASE_URL": TEST_DATABASE_URL,
        "BROKER_URL": REDIS_URL,
        "SECRET_KEY": runtime.settings.secret_key,
        "MAIL_URL": f"smtp://127.0.0.1:{free_port()}",
        "AUDIT_KEY": TEST_AUDIT_KEY,
        "SEAL_TRUST_ROOTS_FILE": str(root),
        "SEAL_CERT_FINGERPRINTS": ",".join(accepted_seal(runtime.settings).fingerprints),
        "BANKID_TRUST_ROOTS_FILE": str(root),
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [BEHORIGHET, "worker", "--threads", "1"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    yield log
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _errand(session: Session, errand_id: int) -> Errand:
    session.rollback()
    return session.get_one(Errand, errand_id)


def test_a_failing_step_shows_on_the_errand_within_seconds(
    runtime: Runtime,
    session: Session,
    client: FlaskClient,
    grants_refused: None,
    worker_process: Path,
) -> None:
    with runtime.unit_of_work() as s:
        errand = in_review(s)
        errand_id, reference = errand.id, errand.reference

    def receipt_issued() -> bool:
        return any(d.kind is DocumentKind.RECEIPT for d in _errand(session, errand_id).documents)

    # The worker has started when it has issued the errand's receipt.
    wait_for(receipt_issued, timeout=60, message=f"the worker's first step; {worker_process}")
    with runtime.unit_of_work() as s:
        agent = caseworker(s, INGRID)
        approved = s.get_one(Errand, errand_id)
        assert casework.claim(s, agent, approved)
        assert casework.approve_errand(s, agent, approved)

    def failing() -> Errand | None:
        found = _errand(session, errand_id)
        return found if found.retrying_step == "apply" else None

    approved_at = time.monotonic()
    shown = wait_for(failing, timeout=30, message=f"the failed attempt; {worker_process}")
    assert time.monotonic() - approved_at < 5, "shown within seconds of the approval"
    assert shown.state is ErrandState.APPROVED
    assert (shown.step_attempt, shown.step_max_attempts) == (1, 9)
    assert REFUSAL in (shown.step_error or "")
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{reference}").get_data(as_text=True)
    assert "Tekniskt fel – försöker igen, försök 1 av 9" in page and REFUSAL in page
    assert reference in client.get("/handlaggning?lista=fel").get_data(as_text=True)

    _accept_grants()

    def applied() -> bool:
        found = _errand(session, errand_id)
        done = found.state in (ErrandState.APPLIED, ErrandState.CLOSED)
        return done and found.retrying_step is None

    wait_for(applied, timeout=30, message=f"the next attempt to apply it; {worker_process}")
    assert reference not in client.get("/handlaggning?lista=fel").get_data(as_text=True)
