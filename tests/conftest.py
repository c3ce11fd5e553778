"""Fixtures: a migrated PostgreSQL database, a clean seeded state per test, the app, clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import create_app
from app.access.models import Person
from app.cli import migrate_database
from app.config import Settings
from app.db import Base, make_engine
from app.staff.models import StaffMember
from devtools import models as devtools_models
from devtools.plugin import StandIns
from devtools.seed import seed_demo
from devtools.settings import StandInSettings
from tests.support import PG_ADMIN_URL, PG_TEST_DB, csrf_token, require_service, use_app
from workflows.runtime import Runtime
from workflows.worker import start_worker

PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
TEST_DATABASE_URL = f"{PG_URL}/{PG_TEST_DB}"


def _drop_test_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_TEST_DB))
        )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this run, migrated with Alembic exactly as production is, with
    the stand-ins' own tables beside."""
    require_service("PostgreSQL")
    _drop_test_database()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_TEST_DB)))
    migrate_database(TEST_DATABASE_URL)
    engine = make_engine(TEST_DATABASE_URL)
    devtools_models.create_tables(engine)
    engine.dispose()
    yield TEST_DATABASE_URL
    _drop_test_database()


def reset_database(runtime: Runtime) -> None:
    """Empty every table and seed the demo data again (actors commit, so no rollback trick)."""
    every = [*Base.metadata.sorted_tables, *devtools_models.metadata.sorted_tables]
    tables = ", ".join(t.name for t in every)
    with runtime.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_chain_head (id, seq, last_hash) VALUES (1, 0, :h)"),
            {"h": "0" * 64},
        )
    with runtime.unit_of_work() as session:
        seed_demo(session)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": "stub://",
        "secret_key": "test-secret",
        "bankid_collect_interval_s": 0.0,
        "mail_url": "smtp://127.0.0.1:9",  # never a running demo's sink
        "testing": True,
        "outbox_resend_after_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


def stand_ins(pki_dir: Path, **overrides: Any) -> StandIns:
    """The stand-ins the tests plug in: the BankID simulator and the test PKI in
    ``pki_dir`` (the mail sink's page and the demo scanner only when asked for)."""
    values: dict[str, Any] = {"mail_sink": False, "demo_scanner": False}
    values.update(overrides)
    return StandIns(StandInSettings(test_pki_dir=str(pki_dir), **values))


@pytest.fixture
def broker_url() -> str:
    """Overridden by parametrised tests that run on Redis or RabbitMQ."""
    return "stub://"


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test PKI (the agency's test seal, the BankID simulator's CA), made once per run."""
    return tmp_path_factory.mktemp("pki")


@pytest.fixture
def app(database_url: str, broker_url: str, pki_dir: Path) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, broker_url=broker_url), [stand_ins(pki_dir)])
    yield from serve_for_test(app)


def serve_for_test(app: Flask) -> Iterator[Flask]:
    """The test's app (BankID through its own simulator, in the process): the factories
    pointed at it, the database reset and seeded, the broker empty; closed after the test."""
    use_app(app)
    runtime: Runtime = app.extensions["behorighet"]
    reset_database(runtime)
    if hasattr(runtime.broker, "flush_all"):
        runtime.broker.flush_all()
    yield app
    runtime.broker.close()
    runtime.engine.dispose()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["behorighet"]  # type: ignore[no-any-return,unused-ignore]


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.session_factory() as session:
        yield session


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[dramatiq.Worker]:
    """A worker consuming from the app's broker inside the test process."""
    worker = start_worker(runtime, threads=2)
    yield worker
    worker.stop(timeout=10_000)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def person_id(session: Session, personnummer: str) -> int:
    return session.scalars(select(Person.id).where(Person.personnummer == personnummer)).one()


def staff_id(session: Session, personnummer: str) -> int:
    return session.scalars(
        select(StaffMember.id).where(StaffMember.personnummer == personnummer)
    ).one()


def approve_in_simulator(app: Flask, personnummer: str, order_ref: str | None = None) -> None:
    """What the person does in the BankID app: open the order (the newest committed one
    unless given), pick their BankID and approve it (in the simulator that stands in for
    BankID here)."""
    from app.eid.models import EidOrder
    from devtools.bankid_simulator.app_actions import open_and_approve

    runtime: Runtime = app.extensions["behorighet"]
    simulator = StandIns.of(app)
    with runtime.unit_of_work() as s:
        order_ref = (
            order_ref or s.scalars(select(EidOrder.order_ref).order_by(EidOrder.id.desc())).first()
        )
        assert order_ref, "no BankID order was started"
        open_and_approve(s, order_ref, personnummer, simulator.simulator_config, simulator.pki)


def login(client: FlaskClient, session: Session, personnummer: str, staff: bool = False) -> None:
    """Sign in with (simulated) BankID through the login pages, CSRF token and all."""
    page = client.get("/logga-in").get_data(as_text=True)
    started = client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})
    assert started.status_code == 302, started.get_data(as_text=True)
    approve_in_simulator(client.application, personnummer)
    response = client.get("/logga-in/bankid")
    assert response.status_code == 302, response.get_data(as_text=True)
    with client.session_transaction() as browser:
        assert browser["agent"]["kind"] == ("staff" if staff else "person")


DAVID = "200001029834"  # HR at Provverket, its orderer
ANNA = "198112189876"  # orderer at Statens testmyndighet
INGRID = "196211289894"  # caseworker
JOHAN = "197010639909"  # caseworker (samordningsnummer)
KARIN = "199104239919"  # intake clerk


def sign_with_bankid(client: FlaskClient, reference: str, signatory: str = "195210039847") -> None:
    """The signatory signs the reviewed form with (simulated) BankID, through the pages."""
    review = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    started = client.post(
        f"/mina-arenden/{reference}/signera",
        data={"csrf_token": csrf_token(review), "device": "other"},
    )
    assert started.status_code == 302, started.get_data(as_text=True)
    approve_in_simulator(client.application, signatory)
    finished = client.get(f"/mina-arenden/{reference}/signera")
    assert finished.status_code == 302
    assert finished.headers["Location"] == f"/mina-arenden/{reference}", finished.headers
