"""Settings read once from the environment (see the README's configuration table)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("BEHORIGHET_INSTANCE_DIR", Path.cwd() / "instance"))


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the product can be configured with."""

    database_url: str = field(
        default_factory=lambda: f"sqlite:///{INSTANCE_DIR / 'behorighet.sqlite3'}"
    )
    """SQLAlchemy URL; PostgreSQL in production (``postgresql+psycopg://…``)."""

    broker_url: str = "stub://"
    """``redis://…`` or ``amqp://…``; ``stub://`` is the in-process broker of the demo."""

    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    """Signs session cookies and CSRF tokens. Must be set (and shared) in production."""

    qr_secret: str | None = None
    """Keys the MAC in every printed page's QR code; defaults to ``secret_key``. Keep it
    stable: forms printed under one key are checked with it when they come back by post."""

    demo_login: bool = False
    """Sign in by picking a seeded person. Only for the demo and tests."""

    demo_signing: bool = False
    """Sign submissions with a stand-in signature. Only for the demo and tests."""

    outbox_resend_after_s: float = 30.0
    """A message not acknowledged this long after it was last sent is sent again."""

    worker_threads: int = 2
    """Threads per worker process (also for the demo's in-process worker)."""

    session_idle_minutes: int = 30
    """A session unused this long ends."""

    testing: bool = False

    @property
    def qr_key(self) -> bytes:
        from app.documents.qr import qr_mac_key

        return qr_mac_key(self.qr_secret or self.secret_key)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "DATABASE_URL" in env:
            values["database_url"] = env["DATABASE_URL"]
        if "BROKER_URL" in env:
            values["broker_url"] = env["BROKER_URL"]
        if "SECRET_KEY" in env:
            values["secret_key"] = env["SECRET_KEY"]
        if "QR_SECRET" in env:
            values["qr_secret"] = env["QR_SECRET"]
        values["demo_login"] = _flag("DEMO_LOGIN", False)
        values["demo_signing"] = _flag("DEMO_SIGNING", False)
        if "OUTBOX_RESEND_AFTER_S" in env:
            values["outbox_resend_after_s"] = float(env["OUTBOX_RESEND_AFTER_S"])
        if "WORKER_THREADS" in env:
            values["worker_threads"] = int(env["WORKER_THREADS"])
        if "SESSION_IDLE_MINUTES" in env:
            values["session_idle_minutes"] = int(env["SESSION_IDLE_MINUTES"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
