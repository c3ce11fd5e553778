"""The ``behorighet`` command: Flask's CLI, the product's own commands, and the commands
other installed packages contribute through the entry point group ``behorighet.commands``
(the demo's, say)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from app.documents.cli import verify_pdf_command
from workflows.runtime import Runtime

if TYPE_CHECKING:
    from app.registrations.archive import ArchiveSources

COMMANDS_GROUP = "behorighet.commands"
"""The entry point group whose click commands join ``behorighet``."""


def _create_app() -> Flask:
    from app import create_app
    from app.config import UnsafeSettings

    try:
        return create_app()
    except UnsafeSettings as exc:
        raise click.ClickException(str(exc)) from None


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


@main.command("serve")
@click.option("--bind", default=None, help="host:port or unix:PATH (default WEB_BIND).")
@click.option("--workers", type=int, default=None, help="Processes (default WEB_WORKERS).")
@click.option("--threads", type=int, default=None, help="Threads each (default WEB_THREADS).")
def serve_command(bind: str | None, workers: int | None, threads: int | None) -> None:
    """Serve the web pages in production: gunicorn behind the reverse proxy."""
    from app.config import Settings, UnsafeSettings, production_problems
    from app.serve import WebServer

    overrides = {"web_bind": bind, "web_workers": workers, "web_threads": threads}
    settings = Settings.from_env(**{k: v for k, v in overrides.items() if v is not None})
    problems = production_problems(settings)
    if problems:
        raise click.ClickException(str(UnsafeSettings(problems)))
    WebServer(settings).run()


@main.command("import-permissions")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--notify", is_flag=True, help="Email each user about each permission added.")
@with_appcontext
def import_permissions_command(file: Path, dry_run: bool, notify: bool) -> None:
    """Load the legacy system's export of service permissions (CSV; see the README)."""
    from app.access.legacy_import import BadFile, import_permissions

    runtime = _runtime()
    try:
        report = import_permissions(
            runtime.session_factory,
            file.read_bytes(),
            dry_run=dry_run,
            notify=notify,
            base_url=runtime.settings.public_base_url,
        )
    except BadFile as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    for line in report.lines():
        click.echo(line)


@main.command("worker")
@click.option(
    "--threads", type=int, default=None, help="Threads for the steps (default WORKER_THREADS)."
)
@click.option(
    "--queues",
    default=None,
    help="Queues to consume, each optionally with its threads: steps=4,email=2,intake,"
    "scheduled (default WORKER_QUEUES, else all four).",
)
@with_appcontext
def worker_command(threads: int | None, queues: str | None) -> None:
    """Run pipeline actors from the broker until SIGTERM or SIGINT."""
    from workflows.worker import Sweeper, queue_threads, start_worker

    runtime = _runtime()
    if runtime.settings.broker_url.startswith("stub://"):
        raise click.UsageError("BROKER_URL must name Redis or RabbitMQ for a separate worker.")
    try:
        chosen = queue_threads(runtime.settings, queues)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from app.core.process import freeze_what_is_loaded

    freeze_what_is_loaded()
    worker = start_worker(runtime, threads, chosen)
    sweeper = Sweeper(runtime)
    sweeper.start()
    click.echo(f"Worker running (threads: {worker.describe()}). Stop with Ctrl-C.")
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
@click.option("--once", is_flag=True, help="Take what lies in FOLDER now, then stop.")
@with_appcontext
def intake_watch_command(folder: Path, once: bool) -> None:
    """Take every scanned file dropped in FOLDER (moved to FOLDER/inläst or FOLDER/avvisad)."""
    from app.intake.watch import FolderWatcher

    watcher = FolderWatcher(_runtime(), folder.resolve())
    if once:
        watcher.take_once()
        return
    watcher.start()
    click.echo(f"Watching {folder} for scanned files. Stop with Ctrl-C.")
    _wait_for_stop_signal()
    watcher.stop()


@main.group("audit")
def audit_group() -> None:
    """The audit log."""


def _checkpoint_dir(runtime: Runtime) -> Path | None:
    directory = runtime.settings.audit_checkpoint_dir
    return Path(directory) if directory else None


@audit_group.command("verify")
@with_appcontext
def audit_verify_command() -> None:
    """Verify the audit chain under AUDIT_KEY and against the last checkpoint in
    AUDIT_CHECKPOINT_DIR (its timestamp verified). Exit 0 only when all of it verifies."""
    from app.audit.anchor import verify_anchored
    from app.documents.pki import SealConfigurationError, trust_roots

    runtime = _runtime()
    directory = _checkpoint_dir(runtime)
    try:
        roots = trust_roots(runtime.settings) if directory is not None else None
    except SealConfigurationError as exc:
        click.echo(f"Audit chain not verified: {exc} (the checkpoints' TSA)", err=True)
        sys.exit(1)
    with runtime.unit_of_work() as session:
        report = verify_anchored(session, runtime.settings.audit_chain_key(), directory, roots)
    if not report.is_intact:
        click.echo(f"Audit chain {report.problem}", err=True)
        sys.exit(1)
    click.echo(f"Audit chain intact: {report.events} events in {report.chains} chains, keyed.")
    if report.checkpoint is not None and report.checkpoint_dt is not None:
        click.echo(
            f"Anchored: {report.checkpoint.events} events in {len(report.checkpoint.pins)} "
            "chains by the checkpoint timestamped "
            f"{report.checkpoint_dt:%Y-%m-%d %H:%M:%S} UTC ({report.checkpoint.file_name})."
        )
    elif directory is None:
        click.echo("Not anchored: AUDIT_CHECKPOINT_DIR is not set.")
    else:
        click.echo(f"Not anchored yet: no checkpoint in {directory}.")


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint_command() -> None:
    """Pin the audit chains' heads now in AUDIT_CHECKPOINT_DIR, timestamped by the seal's TSA
    (the worker does it every DEADLINE_CHECK_INTERVAL_S; run it after `migrate`)."""
    from app.audit.anchor import CheckpointError, write_checkpoint
    from app.documents.pki import SealConfigurationError, seal_material, trust_roots

    runtime = _runtime()
    directory = _checkpoint_dir(runtime)
    if directory is None:
        click.echo("AUDIT_CHECKPOINT_DIR is not set.", err=True)
        sys.exit(1)
    try:
        timestamper = seal_material(runtime.settings).timestamper
        with runtime.unit_of_work() as session:
            checkpoint = write_checkpoint(
                session, directory, timestamper, trust_roots(runtime.settings)
            )
    except (CheckpointError, SealConfigurationError) as exc:
        click.echo(f"No checkpoint: {exc}", err=True)
        sys.exit(1)
    if checkpoint is None:
        click.echo("Nothing new to anchor.")
    else:
        click.echo(
            f"Checkpoint of {checkpoint.events} events in {len(checkpoint.pins)} chains "
            f"written: {checkpoint.file_name}"
        )


@main.group("archive")
def archive_group() -> None:
    """The archive of sealed documents (PAdES levels, re-timestamping)."""


def _archive_sources(runtime: Runtime) -> ArchiveSources:
    from app.documents.pki import SealConfigurationError, accepted_seal, seal_material
    from app.documents.pki import trust_roots as roots
    from app.registrations.archive import ArchiveSources

    settings = runtime.settings
    try:
        return ArchiveSources(
            material=seal_material(settings),
            trust_roots=roots(settings),
            seal_identity=accepted_seal(settings),
        )
    except SealConfigurationError as exc:
        click.echo(f"Archive not checked: {exc}", err=True)
        sys.exit(1)


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment is not None else "-"


@archive_group.command("status")
@click.option(
    "--expiring-within",
    type=click.IntRange(min=0),
    default=None,
    metavar="DAYS",
    help="List only the documents whose newest timestamp's TSA certificate ends within DAYS.",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, help="Rows listed (100).")
@with_appcontext
def archive_status_command(expiring_within: int | None, limit: int) -> None:
    """The stored PDFs by PAdES level (B-B, B-T, B-LT, B-LTA; unsealed, rejected, not yet
    checked), and the sealed ones by when their newest timestamp's TSA certificate ends,
    soonest first (as the last scheduled check found them)."""
    from app.registrations.archive import archive_status

    runtime = _runtime()
    within = timedelta(days=expiring_within) if expiring_within is not None else None
    margin = runtime.settings.archive_retimestamp_margin
    now = datetime.now(UTC)
    with runtime.unit_of_work() as session:
        status = archive_status(
            session, margin=margin, now=now, expiring_within=within, limit=limit
        )
    click.echo(
        f"{'document':>9}  {'errand':<12} {'kind':<9} {'level':<9} {'TSA cert ends':<13}  due"
    )
    for row in status.documents:
        ends = row.timestamp_expires_dt
        due = "yes" if row.due else ""
        click.echo(
            f"{row.document_id:>9}  {row.reference:<12} {row.kind:<9} {row.level:<9} "
            f"{_day(ends):<13}  {due}"
        )
    click.echo("")
    click.echo(f"{'level':<9} {'PDFs':>7} {'due':>7}")
    for count in status.counts:
        click.echo(f"{count.level:<9} {count.documents:>7} {count.due:>7}")
    click.echo(
        f"Re-timestamped {margin.days} days before the end (ARCHIVE_RETIMESTAMP_MARGIN_DAYS); "
        "B-T and B-LT made B-LTA at the next run."
    )


@archive_group.command("retimestamp")
@click.option("--dry-run", is_flag=True, help="List the documents due; change nothing.")
@with_appcontext
def archive_retimestamp_command(dry_run: bool) -> None:
    """Do now what the worker does on schedule: check the PDFs stored since, and
    re-timestamp the sealed ones whose newest timestamp's TSA certificate ends within
    ARCHIVE_RETIMESTAMP_MARGIN_DAYS. Exit 1 when one failed (it stays as it was)."""
    from app.registrations.archive import keep_archive_valid

    runtime = _runtime()
    sources = _archive_sources(runtime)
    run = keep_archive_valid(
        runtime.session_factory,
        sources,
        margin=runtime.settings.archive_retimestamp_margin,
        dry_run=dry_run,
    )
    if dry_run:
        click.echo(
            f"Due: {len(run.due)} documents"
            + (": " + ", ".join(map(str, run.due)) if run.due else ".")
        )
        return
    click.echo(f"Checked {run.checked} new PDFs; re-timestamped {len(run.retimestamped)}.")
    if run.problem:
        click.echo(f"Stopped: {run.problem}", err=True)
    if run.failed:
        click.echo(
            "Failed (left as they were, tried again at the next run): "
            + ", ".join(map(str, run.failed)),
            err=True,
        )
        sys.exit(1)


@main.group("retention")
def retention_group() -> None:
    """The retention rules (RETENTION_* settings): what goes when its period ran out."""


@retention_group.command("report")
@with_appcontext
def retention_report_command() -> None:
    """A dry run: what each retention rule would remove now. Removes nothing."""
    from app.retention.service import report

    runtime = _runtime()
    with runtime.unit_of_work() as session:
        due = report(session, runtime.settings)
        session.rollback()
    click.echo("Retention (dry run, nothing removed):")
    for rule in due:
        click.echo(
            f"  {rule.rule:<28} {rule.items:>7} due  ({rule.setting.upper()}={rule.days}: "
            f"{rule.description}, up to {rule.cutoff:%Y-%m-%d %H:%M} UTC)"
        )
    click.echo(f"In all {sum(rule.items for rule in due)} due.")


@retention_group.command("apply")
@with_appcontext
def retention_apply_command() -> None:
    """Remove now what the retention rules say is due (as the worker does every
    RETENTION_INTERVAL_S), batch after batch, each audited."""
    from app.retention.service import apply

    runtime = _runtime()
    applied = apply(runtime.unit_of_work, runtime.settings)
    for rule in applied:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(rule.counts.items()))
        click.echo(
            f"  {rule.rule:<28} {rule.items:>7} removed in {rule.batches} batches"
            + (f" ({kinds})" if kinds else "")
        )
    click.echo(f"In all {sum(rule.items for rule in applied)} removed.")


@main.group("signatories")
def signatories_group() -> None:
    """The signatory register (the company register's firmatecknare)."""


@signatories_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def signatories_import_command(file: Path) -> None:
    """Import an extract of the company register's signatories (CSV; see the README): one
    transaction, each change recorded; orderers whose registration a departed signatory
    signed are flagged for review, a caseworker errand opened and the employer emailed."""
    from app.registers.changes import import_extract
    from app.registers.extract import BadExtract, read_extract

    runtime = _runtime()
    try:
        extract = read_extract(file.read_bytes(), today=datetime.now(UTC).date())
    except BadExtract as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(
            f"{file}: {len(exc.problems)} bad rows; nothing was imported"
        ) from None
    with runtime.unit_of_work() as session:
        report = import_extract(session, extract, base_url=runtime.settings.public_base_url)
    for line in report.lines():
        click.echo(line)


@main.group("mandates")
def mandates_group() -> None:
    """Time-limited roles and permissions (``ends_on``): reminders and the end."""


@mandates_group.command("run")
@with_appcontext
def mandates_run_command() -> None:
    """Now what the worker's scheduled end_mandates does: end the roles and permissions
    whose day has come, then remind of those ending within MANDATE_REMINDER_DAYS."""
    from app.access import mandates

    runtime = _runtime()
    base_url = runtime.settings.public_base_url
    ended = mandates.end_due(runtime.unit_of_work, base_url=base_url)
    reminded = mandates.remind_before_end(
        runtime.unit_of_work, base_url=base_url, days=runtime.settings.mandate_reminder_days
    )
    click.echo(f"Ended {ended} roles and permissions; sent {reminded} reminders.")


@main.group("db")
def db_group() -> None:
    """The database."""


@db_group.command("grant-app-role")
@click.argument("role")
@click.option("--password", default=None, help="Set the role's password (else trust/cert).")
@with_appcontext
def grant_app_role_command(role: str, password: str | None) -> None:
    """Make ROLE the application's PostgreSQL role (run as the tables' owner, after every
    migrate): it reads and writes every table but may only SELECT and INSERT audit events,
    owns nothing, and cannot drop the audit log's trigger or truncate it."""
    from app.audit.db_role import RoleError, grant_app_role

    try:
        with _runtime().engine.begin() as connection:
            grant_app_role(connection, role, password)
    except RoleError as exc:
        click.echo(f"Not granted: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{role} may now run the application (audit_event: SELECT, INSERT only).")


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
