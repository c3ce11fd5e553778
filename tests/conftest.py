"""Fixtures: a migrated PostgreSQL database, a clean seeded state per test, the app, clients."""

from __future__ import annotations

from collections.abc import Iterator
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
from app.core.seed import seed_demo
from app.db import Base
from app.staff.models import StaffMember
from tests.support import PG_ADMIN_URL, PG_TEST_DB, csrf_token, require_service
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
    """A fresh database for this run, migrated with Alembic exactly as production is."""
    require_service("PostgreSQL")
    _drop_test_database()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_TEST_DB)))
    migrate_database(TEST_DATABASE_URL)
    yield TEST_DATABASE_URL
    _drop_test_database()


def reset_database(runtime: Runtime) -> None:
    """Empty every table and seed the demo data again (actors commit, so no rollback trick)."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
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
        "demo_login": True,
        "demo_signing": True,
        "testing": True,
        "outbox_resend_after_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def broker_url() -> str:
    """Overridden by parametrised tests that run on Redis or RabbitMQ."""
    return "stub://"


@pytest.fixture
def app(database_url: str, broker_url: str) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, broker_url=broker_url))
    runtime: Runtime = app.extensions["behorighet"]
    reset_database(runtime)
    if hasattr(runtime.broker, "flush_all"):
        runtime.broker.flush_all()
    yield app
    runtime.broker.close()
    runtime.engine.dispose()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["behorighet"]  # type: ignore[no-any-return]


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


def login(client: FlaskClient, session: Session, personnummer: str, staff: bool = False) -> None:
    """Sign in through the demo sign-in page, CSRF token and all."""
    page = client.get("/logga-in").get_data(as_text=True)
    agent_id = staff_id(session, personnummer) if staff else person_id(session, personnummer)
    response = client.post(
        "/logga-in",
        data={
            "csrf_token": csrf_token(page),
            "kind": "staff" if staff else "person",
            "id": str(agent_id),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)


DAVID = "200001029834"  # HR at Provverket, its orderer
ANNA = "198112189876"  # orderer at Statens testmyndighet
INGRID = "196211289894"  # caseworker
JOHAN = "197010639909"  # caseworker (samordningsnummer)
KARIN = "199104239919"  # intake clerk
