"""The ``behorighet`` command: Flask's CLI, the product's own commands, and the commands
other installed packages contribute through the entry point group ``behorighet.commands``
(the demo's, say)."""

from __future__ import annotations

import signal
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.documents.cli import verify_pdf_command
from workflows.runtime import Runtime

COMMANDS_GROUP = "behorighet.commands"
"""The entry point group whose click commands join ``behorighet``."""


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


@main.group("api-client")
def api_client_group() -> None:
    """Clients of the permission API (/api/v1/)."""


@api_client_group.command("add")
@click.argument("name")
@click.option(
    "--scopes",
    required=True,
    help="Comma-separated: check, persons, contacts, changes.",
)
@click.option(
    "--cert-fingerprint",
    default=None,
    help="SHA-256 fingerprint of the client's TLS certificate (hex, colons allowed).",
)
@click.option("--no-token", is_flag=True, help="Certificate only: no secret is made.")
@with_appcontext
def api_client_add_command(
    name: str, scopes: str, cert_fingerprint: str | None, no_token: bool
) -> None:
    """Register a client; its secret is printed once (only its hash is kept)."""
    from app.api import clients

    try:
        with _runtime().unit_of_work() as session:
            _client, token = clients.add_client(
                session,
                name,
                clients.parse_scopes([scopes]),
                cert_fingerprint=cert_fingerprint,
                with_token=not no_token,
            )
    except clients.ClientError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"Client {name} registered.")
    if token:
        click.echo("Its secret, shown this once (send it as 'Authorization: Bearer <secret>'):")
        click.echo(token)


@api_client_group.command("list")
@with_appcontext
def api_client_list_command() -> None:
    """Every client: name, scopes, credentials, created, revoked."""
    from app.api import clients

    with _runtime().unit_of_work() as session:
        for client in clients.list_clients(session):
            credentials = "+".join(
                kind
                for kind, present in (("token", client.token_sha256), ("cert", client.cert_sha256))
                if present
            )
            state = f"revoked {client.revoked_dt:%Y-%m-%d}" if client.revoked_dt else "active"
            click.echo(
                f"{client.name}\t{client.scopes.replace(' ', ',')}\t{credentials}\t"
                f"{client.created_dt:%Y-%m-%d}\t{state}"
            )


@api_client_group.command("revoke")
@click.argument("name")
@with_appcontext
def api_client_revoke_command(name: str) -> None:
    """Revoke a client: its secret and certificate are refused from now on."""
    from app.api import clients

    try:
        with _runtime().unit_of_work() as session:
            clients.revoke_client(session, name)
    except clients.ClientError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"Client {name} revoked.")


def add_contributed_commands(group: click.Group) -> None:
    """Add every command of the entry point group :data:`COMMANDS_GROUP`, by its name."""
    for entry_point in entry_points(group=COMMANDS_GROUP):
        group.add_command(entry_point.load(), entry_point.name)


add_contributed_commands(main)
