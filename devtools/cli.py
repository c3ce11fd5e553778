"""``behorighet demo`` and ``behorighet seed-demo``, contributed to the product's command
through the entry point group ``behorighet.commands`` (see ``pyproject.toml``).

Kept light to import: every ``behorighet`` command loads this module.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from flask import current_app
from flask.cli import with_appcontext

if TYPE_CHECKING:
    from app.config import Settings


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Insert the demo employers, people, grants and staff (once)."""
    from devtools.seed import seed_demo
    from workflows.runtime import Runtime

    runtime = cast(Runtime, current_app.extensions["behorighet"])
    with runtime.unit_of_work() as session:
        seed_demo(session)
    click.echo("Demo data is in place.")


TEST_PKI_MOUNT = "/test-pki"
"""Where the demo serves the test PKI's OCSP responders, CRLs and certificates."""

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def _private_file(path: Path) -> None:
    """``path`` exists, readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE_MODE)  # made earlier with a wider mode: narrowed


def prepare_instance(instance_dir: Path, database_url: str) -> str:
    """The demo's ``instance/``: the folder (mode 0700), its secret key (made once) and its
    SQLite database file, both mode 0600 whatever the umask, and the process's umask 077 so
    that what the demo writes there later (the database's journal, the test PKI) is private
    too. Returns the secret key."""
    os.umask(0o077)
    instance_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(instance_dir, PRIVATE_DIR_MODE)
    secret_file = instance_dir / "secret_key"
    _private_file(secret_file)
    if not secret_file.read_text().strip():
        secret_file.write_text(os.urandom(32).hex())
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        _private_file(database)
    return secret_file.read_text().strip()


def demo_settings() -> Settings:
    """The demo's settings: its instance folder's database, secret and audit key (made once)."""
    from app.config import INSTANCE_DIR, Settings

    os.environ.setdefault("BROKER_URL", "stub://")
    database_url = Settings.from_env().database_url
    secret_key = prepare_instance(INSTANCE_DIR, database_url)
    audit_key_file = INSTANCE_DIR / "audit_key"
    _private_file(audit_key_file)  # made once, mode 0600 (the umask is 077 by now)
    if not audit_key_file.read_text().strip():
        audit_key_file.write_text(os.urandom(32).hex())
    return Settings.from_env(
        secret_key=os.environ.get("SECRET_KEY", secret_key),
        audit_key=os.environ.get("AUDIT_KEY", audit_key_file.read_text().strip()),
    )


@click.command("demo-mandates")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The day to run as (YYYY-MM-DD).",
)
def demo_mandates_command(as_of: datetime) -> None:
    """In the demo's database: what the worker's scheduled end_mandates does, as if today
    were --as-of (end what ends by then, remind of what ends within
    MANDATE_REMINDER_DAYS); the running demo sends the emails (/demo/e-post)."""
    from app import create_app
    from app.access import mandates
    from devtools.plugin import StandIns
    from workflows.runtime import Runtime

    app = create_app(demo_settings(), plugins=[StandIns()])
    runtime = cast(Runtime, app.extensions["behorighet"])
    base_url = runtime.settings.public_base_url
    today = as_of.date()
    ended = mandates.end_due(runtime.unit_of_work, base_url=base_url, today=today)
    reminded = mandates.remind_before_end(
        runtime.unit_of_work,
        base_url=base_url,
        days=runtime.settings.mandate_reminder_days,
        today=today,
    )
    click.echo(f"As of {today}: ended {ended} roles and permissions; sent {reminded} reminders.")


@click.command("demo", context_settings={"ignore_unknown_options": True})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo_command(host: str, port: int) -> None:
    """Serve the product on embedded defaults: SQLite, in-process worker, demo sign-in,
    the BankID simulator, the mail sink, the demo scanner and the test PKI's seal."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server

    from app import create_app
    from app.cli import migrate_database
    from devtools.mail_sink.sink import MailSink
    from devtools.models import create_tables
    from devtools.pki import ensure_test_pki, pki_wsgi_app, test_pki_url
    from devtools.plugin import StandIns
    from devtools.seed import seed_demo
    from workflows.runtime import Runtime
    from workflows.worker import Sweeper, start_worker

    settings = demo_settings()
    migrate_database(settings.database_url)
    stand_ins = StandIns()
    # The test PKI's OCSP responders and CRLs, served beside the product under /test-pki:
    # its certificates name them there (made with this host and port the first time).
    pki_dir = stand_ins.settings.pki_directory
    pki_url = f"http://{host}:{port}{TEST_PKI_MOUNT}"
    ensure_test_pki(pki_dir, base_url=pki_url)
    if test_pki_url(pki_dir) != pki_url:
        click.echo(
            f"Warning: the test PKI in {pki_dir} names its services at {test_pki_url(pki_dir)}, "
            f"not {pki_url}: sealing fails unless they are served there (remove the folder "
            "to make a new test PKI).",
            err=True,
        )
    app = create_app(settings, plugins=[stand_ins])
    runtime = cast(Runtime, app.extensions["behorighet"])
    create_tables(runtime.engine)
    with runtime.unit_of_work() as session:
        seed_demo(session)
    MailSink.for_settings(runtime.settings, runtime.session_factory).start()
    start_worker(runtime)
    # The in-process broker starts empty: whatever was not finished before a crash goes again.
    runtime.relay.sweep(older_than=timedelta(0))
    Sweeper(runtime).start()
    served = DispatcherMiddleware(app, {TEST_PKI_MOUNT: pki_wsgi_app(pki_dir)})
    server = make_server(host, port, served, threaded=True)
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
Test PKI (OCSP, CRLs): {pki_url}/spv-test/crls/seal-ca/latest.crl
Database: {settings.database_url}
""",
        err=False,
    )
    sys.stdout.flush()
    server.serve_forever()
