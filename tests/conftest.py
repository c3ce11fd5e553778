"""Fixtures: a migrated PostgreSQL database seeded once per run, the app made once per run,
and for each test either a transaction rolled back at its end (the default) or, for the tests
that other threads or processes must see the data of (``committed_db``), real commits."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
from _pytest.mark.expression import Expression
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql
from sqlalchemy import Connection, create_engine, event, select, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app import create_app
from app.access.models import Person
from app.api import views as api_views
from app.audit.service import session_info
from app.cli import migrate_database
from app.config import Settings
from app.db import Base, make_engine
from app.staff.models import StaffMember
from devtools import models as devtools_models
from devtools.pki import PkiServer
from devtools.plugin import StandIns
from devtools.seed import seed_demo
from devtools.settings import StandInSettings
from tests.personal_data_guard import PersonalDataGuard
from tests.support import (
    PG_ADMIN_URL,
    PG_TEST_DB,
    RABBITMQ_URL,
    REDIS_URL,
    csrf_token,
    require_service,
    use_app,
)
from workflows import runtime as runtime_module
from workflows.runtime import Runtime
from workflows.worker import WorkerPool, start_worker

PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
TEST_DATABASE_URL = f"{PG_URL}/{PG_TEST_DB}"
TEST_AUDIT_KEY = "audit-key-of-the-test-suite-not-a-secret"
"""The tests' ``AUDIT_KEY`` (a worker or demo they start as a process is given it too)."""
STUB_BROKER = "stub://"
_PERSONAL_DATA_GUARD = PersonalDataGuard()
# The tests read the lines the app and the processes they start write at the default level
# (INFO): a LOG_LEVEL in the runner's environment would hide them.
os.environ.pop("LOG_LEVEL", None)


@pytest.fixture(autouse=True)
def no_personal_data_in_logs() -> Iterator[None]:
    """Fails a test when what it (or a fixture before it) logged or put in a metric's labels
    holds a whole personnummer (issue 19: minimisation; ``tests/personal_data_guard.py``)."""
    _PERSONAL_DATA_GUARD.install()
    yield
    if finds := _PERSONAL_DATA_GUARD.take():
        pytest.fail("a whole personnummer was written:\n" + "\n".join(finds[:5]), pytrace=False)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (in the settings): the quick run, the whole suite but its slow and browser
    tests, is shared among two processes (one per core at most), a module to a process
    (``--dist loadfile``: its module fixtures are made once). Any other run stays in this
    process: named files and tests start sooner so, and the timings of the slow and browser
    tests want the machine to themselves. ``-n N`` or PYTEST_XDIST_AUTO_NUM_WORKERS choose
    otherwise."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return 0
    if _may_select(config.option.markexpr, "slow", "e2e"):
        return 0
    return min(2, os.cpu_count() or 1)


def _may_select(markexpr: str, *markers: str) -> bool:
    """Whether ``-m markexpr`` lets through a test marked with one of ``markers``."""
    if not markexpr:
        return True
    expression = Expression.compile(markexpr)
    return any(expression.evaluate(_marked_only(marker)) for marker in markers)


def _marked_only(marker: str) -> Callable[..., bool]:
    return lambda name, **_: name == marker


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


class SeededDatabase:
    """The run's database holding the demo seed and nothing else between tests.

    A test runs either inside a transaction that is rolled back (``transaction``), or with
    real commits (``committed``), after which the tables are emptied and seeded again before
    the next test. Sequences are not transactional: each transaction sets them back to where
    the seed left them, so the ids a test sees do not depend on the tests before it.
    """

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sequences: list[tuple[str, int, bool]] = []
        self.dirty = True

    def reseed(self) -> None:
        """Empty every table and seed the demo data again, with the ids of the first seed.
        (DELETE: on tables this small it is far quicker than TRUNCATE. The audit log, which
        refuses DELETE, is truncated.)"""
        from app import models  # noqa: F401  (every table on Base.metadata)

        every = [*Base.metadata.sorted_tables, *devtools_models.metadata.sorted_tables]
        with self.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_event"))
            for table in reversed(every):
                if table.name != "audit_event":
                    conn.execute(table.delete())
            conn.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)"
                    " FROM pg_sequences WHERE schemaname = current_schema()"
                )
            )
            conn.execute(
                text("INSERT INTO audit_chain_head (chain, seq, last_hash) VALUES ('', 0, :h)"),
                {"h": "0" * 64},
            )
        audit_key = make_settings(TEST_DATABASE_URL).audit_chain_key()
        with Session(self.engine, info=session_info(audit_key)) as session, session.begin():
            seed_demo(session)
        with self.engine.connect() as conn:
            self.sequences = [
                (name, last if last is not None else start, last is not None)
                for name, last, start in conn.execute(
                    text(
                        "SELECT format('%I.%I', schemaname, sequencename), last_value, "
                        "start_value FROM pg_sequences WHERE schemaname = current_schema()"
                    )
                )
            ]
        self.dirty = False

    def committed(self) -> None:
        """Seeded now, the sequences where the seed left them; emptied and seeded again
        before the next test."""
        if self.dirty:
            self.reseed()
        else:
            with self.engine.begin() as connection:
                self._restore_sequences(connection)
        self.dirty = True

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction that is rolled back at the end."""
        if self.dirty:
            self.reseed()
        with self.engine.connect() as connection:
            outer = connection.begin()
            self._restore_sequences(connection)
            try:
                yield connection
            finally:
                outer.rollback()

    def _restore_sequences(self, connection: Connection) -> None:
        calls, values = [], {}
        for n, (name, value, is_called) in enumerate(self.sequences):
            calls.append(f"setval(CAST(:n{n} AS regclass), :v{n}, :c{n})")
            values |= {f"n{n}": name, f"v{n}": value, f"c{n}": is_called}
        if calls:
            connection.execute(text(f"SELECT {', '.join(calls)}"), values)


@pytest.fixture(scope="session")
def seeded_database(database_url: str) -> Iterator[SeededDatabase]:
    database = SeededDatabase(database_url)
    database.reseed()
    yield database
    database.engine.dispose()


@pytest.fixture
def committed_db() -> None:
    """Ask for this when worker threads, other processes or threads with connections of
    their own must see what the test commits (and the test what they commit): the test's
    commits are real, and the database is emptied and seeded again after it. Every other
    test runs in a transaction that is rolled back."""


@pytest.fixture
def database(
    request: pytest.FixtureRequest, seeded_database: SeededDatabase
) -> Iterator[Connection | None]:
    """The test's database: the connection whose transaction is rolled back at the end, or
    None for a ``committed_db`` test (the apps then use their own engines)."""
    if "committed_db" in request.fixturenames:
        seeded_database.committed()
        yield None
        return
    with seeded_database.transaction() as connection:
        yield connection


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "broker_url": STUB_BROKER,
        "secret_key": "test-secret",
        "audit_key": TEST_AUDIT_KEY,
        "bankid_collect_interval_s": 0.0,
        "mail_url": "smtp://127.0.0.1:9",  # never a running demo's sink
        "testing": True,
        "outbox_resend_after_s": 30.0,
        "api_client_cache_s": 0.0,  # each test registers and revokes its own clients
        # The site's rate limits count across a run's many logins from one address: off,
        # but in the browser tests and the tests of the limits themselves.
        "web_rate_limits": False,
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
    return STUB_BROKER


@pytest.fixture(scope="session")
def pki_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiServer]:
    """The test PKI's OCSP responders and CRLs, served on a free port for the whole run
    (sealing fetches the seal's and the TSA's revocation data from them)."""
    with PkiServer(tmp_path_factory.mktemp("pki")) as server:
        yield server


@pytest.fixture(scope="session")
def pki_dir(pki_server: PkiServer) -> Path:
    """The test PKI (the agency's test seal, the BankID simulator's CA), made once per run."""
    return pki_server.directory


def build_app(
    database_url: str,
    pki_dir: Path | None = None,
    *,
    plugged: dict[str, Any] | None = None,
    **overrides: Any,
) -> Flask:
    """An app on the test database with the stand-ins plugged in (the BankID simulator and
    the test PKI in ``pki_dir``, and what ``plugged`` turns on), ``Settings`` overrides as
    keywords; with no ``pki_dir``, an app without stand-ins."""
    plugins = [] if pki_dir is None else [stand_ins(pki_dir, **(plugged or {}))]
    app = create_app(make_settings(database_url, **overrides), plugins)
    event.listen(app.extensions["behorighet"].session_factory, "after_begin", _one_thread_only)
    return app


def close_app(app: Flask) -> None:
    runtime: Runtime = app.extensions["behorighet"]
    runtime.broker.close()
    runtime.engine.dispose()
    api_views.close(app)


_TEST_THREAD = "behorighet_test_thread"


def _one_thread_only(session: Session, _tx: SessionTransaction, connection: Connection) -> None:
    owner = connection.info.get(_TEST_THREAD)
    if owner is not None and owner != threading.get_ident():
        raise RuntimeError(
            "another thread uses the test's rolled-back transaction: give the test committed_db"
        )


@contextmanager
def serving(app: Flask, connection: Connection | None) -> Iterator[Flask]:
    """``app`` for one test: the runtime the actors use, the factories pointed at it, its
    broker empty and, unless None, its sessions in ``connection``'s transaction (their
    commits release savepoints)."""
    runtime: Runtime = app.extensions["behorighet"]
    runtime_module.install(runtime)  # as configure() did when the app was made
    dramatiq.set_broker(runtime.broker)
    use_app(app)
    if hasattr(runtime.broker, "flush_all"):
        runtime.broker.flush_all()
    if connection is None:
        yield app
        return
    with joined(runtime.session_factory, connection):
        yield app


@contextmanager
def joined(factory: sessionmaker[Session], connection: Connection) -> Iterator[None]:
    """Sessions from ``factory`` join ``connection``'s transaction, in savepoints."""
    saved = dict(factory.kw)
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    connection.info[_TEST_THREAD] = threading.get_ident()
    try:
        yield
    finally:
        connection.info.pop(_TEST_THREAD, None)
        factory.kw.clear()
        factory.kw.update(saved)


@pytest.fixture(scope="session")
def session_app(
    database_url: str, pki_dir: Path, seeded_database: SeededDatabase
) -> Iterator[Flask]:
    """The app of every test on the in-process broker, made once."""
    app = build_app(database_url, pki_dir)
    yield app
    close_app(app)


@pytest.fixture
def brokers_to_ourselves(broker_url: str) -> Iterator[None]:
    """A test on Redis or RabbitMQ waits until no other test uses them (they hold one set of
    queues), in another process of a parallel run or in another run on the same
    TEST_REDIS_URL and TEST_RABBITMQ_URL, and keeps them until its apps are closed."""
    if broker_url == STUB_BROKER:
        yield
        return
    key = hashlib.sha256(f"{REDIS_URL} {RABBITMQ_URL}".encode()).hexdigest()[:16]
    with (Path(tempfile.gettempdir()) / f"behorighet-brokers-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def make_app(
    database_url: str, pki_dir: Path, database: Connection | None, brokers_to_ourselves: None
) -> Iterator[Callable[..., Flask]]:
    """Another app for this test (``Settings`` overrides as keywords), on the test's database
    like the test's own app, closed after the test. It becomes the runtime actors use."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Flask:
            app = build_app(database_url, pki_dir, **overrides)
            stack.callback(close_app, app)
            return stack.enter_context(serving(app, database))

        yield make


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    """``Settings`` a module's tests need other than the run's app's. A module that overrides
    this gets an app of its own, made once for the module."""
    return {}


@pytest.fixture(scope="module")
def module_app(database_url: str, pki_dir: Path, app_settings: dict[str, Any]) -> Iterator[Flask]:
    app = build_app(database_url, pki_dir, **app_settings)
    yield app
    close_app(app)


@pytest.fixture
def app(
    request: pytest.FixtureRequest,
    session_app: Flask,
    app_settings: dict[str, Any],
    broker_url: str,
    database: Connection | None,
    make_app: Callable[..., Flask],
) -> Iterator[Flask]:
    """The test's app: the run's app (or the module's, see ``app_settings``); or one of its
    own on another broker, or for a worker (a dramatiq worker stays registered on its
    broker, and its broker boots once)."""
    if broker_url != STUB_BROKER or "worker" in request.fixturenames:
        yield make_app(broker_url=broker_url, **app_settings)
        return
    shared: Flask = request.getfixturevalue("module_app") if app_settings else session_app
    with serving(shared, database):
        yield shared


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["behorighet"]  # type: ignore[no-any-return,unused-ignore]


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    with runtime.session_factory() as session:
        yield session


@pytest.fixture
def worker(committed_db: None, runtime: Runtime) -> Iterator[WorkerPool]:
    """A worker consuming from the app's broker inside the test process (its threads need
    committed data)."""
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
EVA = "195210039847"  # Provverket's signatory (in the signatory register)


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
