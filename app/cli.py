"""The ``behorighet`` command: Flask's CLI plus the product's own commands."""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.config import INSTANCE_DIR, Settings
from app.documents.cli import verify_pdf_command
from workflows.runtime import Runtime

DEMO_URL = "http://127.0.0.1:5000"


def _create_app() -> Flask:
    from app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """Behörighet – employers manage who may use SPV's self-service services."""


main.add_command(verify_pdf_command)


def _runtime() -> Runtime:
    return cast(Runtime, current_app.extensions["behorighet"])


def migrate_database(database_url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


@main.command("migrate")
@with_appcontext
def migrate_command() -> None:
    """Apply database migrations (Alembic) up to the newest revision."""
    migrate_database(_runtime().settings.database_url)
    click.echo("Database is up to date.")


@main.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Insert the demo employers, people, grants and staff (once)."""
    from app.core.seed import seed_demo

    with _runtime().unit_of_work() as session:
        seed_demo(session)
    click.echo("Demo data is in place.")


@main.command("worker")
@click.option("--threads", type=int, default=None, help="Worker threads (default WORKER_THREADS).")
@with_appcontext
def worker_command(threads: int | None) -> None:
    """Run pipeline actors from the broker until SIGTERM or SIGINT."""
    from workflows.worker import Sweeper, start_worker

    runtime = _runtime()
    if runtime.settings.broker_url.startswith("stub://"):
        raise click.UsageError("BROKER_URL must name Redis or RabbitMQ for a separate worker.")
    worker = start_worker(runtime, threads)
    sweeper = Sweeper(runtime)
    sweeper.start()
    click.echo(f"Worker running ({worker.worker_threads} threads). Stop with Ctrl-C.")
    _wait_for_stop_signal()
    sweeper.stop()
    worker.stop()


def _wait_for_stop_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


@main.group("intake")
def intake_group() -> None:
    """Scanned paper."""


@intake_group.command("watch")
@click.argument(
    "folder",
    type=click.Path(file_okay=False, path_type=Path),  # created when missing
)
@with_appcontext
def intake_watch_command(folder: Path) -> None:
    """Take every scanned file dropped in FOLDER (moved to FOLDER/inläst or FOLDER/avvisad)."""
    from app.intake.watch import FolderWatcher

    watcher = FolderWatcher(_runtime(), folder.resolve())
    watcher.start()
    click.echo(f"Watching {folder} for scanned files. Stop with Ctrl-C.")
    _wait_for_stop_signal()
    watcher.stop()


@main.group("audit")
def audit_group() -> None:
    """The audit log."""


@audit_group.command("verify")
@with_appcontext
def audit_verify_command() -> None:
    """Recompute the audit hash chain. Exit 0 only when all of it verifies."""
    from app.audit.service import verify_chain

    with _runtime().unit_of_work() as session:
        report = verify_chain(session)
    if report.is_intact:
        click.echo(f"Audit chain intact: {report.events} events.")
        return
    click.echo(f"Audit chain broken at event {report.first_broken_seq}: {report.reason}", err=True)
    sys.exit(1)


@main.command("demo", context_settings={"ignore_unknown_options": True})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo_command(host: str, port: int) -> None:
    """Serve the product on embedded defaults: SQLite, in-process worker, demo sign-in."""
    from werkzeug.serving import make_server

    from app import create_app
    from app.core.seed import seed_demo
    from workflows.worker import Sweeper, start_worker

    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BROKER_URL", "stub://")
    secret_file = INSTANCE_DIR / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(os.urandom(32).hex())
    settings = Settings.from_env(
        bankid_simulator=True,
        mail_sink=True,
        demo_scanner=True,
        secret_key=os.environ.get("SECRET_KEY", secret_file.read_text()),
    )
    migrate_database(settings.database_url)
    app = create_app(settings)
    runtime = app.extensions["behorighet"]
    with runtime.unit_of_work() as session:
        seed_demo(session)
    if settings.mail_sink:
        from app.notifications.sink import MailSink

        MailSink.for_settings(settings, runtime.session_factory).start()
    start_worker(runtime)
    # The in-process broker starts empty: whatever was not finished before a crash goes again.
    runtime.relay.sweep(older_than=timedelta(0))
    Sweeper(runtime).start()
    server = make_server(host, port, app, threaded=True)
    url = f"http://{host}:{port}"
    click.echo(
        f"""
Behörighet demo is running at {url}  (stop with Ctrl-C)

Log in with BankID: press "Logga in", then approve the order in the BankID simulator
at {url}/bankid-simulator/app ("Öppna i BankID", pick the person, "Legitimera"). People:
  David Dahl        – HR and orderer at Provverket: fills in a registration
  Eva Ek            – Provverket's signatory: signs it with BankID
  Ingrid Handläggare, Johan Handläggare – SPV caseworkers (/handlaggning)
  Anna Andersson    – orderer at Statens testmyndighet (can remove herself)
  Bertil Berg       – administrator; Cecilia Carlsson – user (inactive for 600 days)
  Karin Registrator – SPV intake clerk
Sent email: {url}/demo/e-post
Database: {settings.database_url}
""",
        err=False,
    )
    sys.stdout.flush()
    server.serve_forever()
