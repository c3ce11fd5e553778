"""Settings read once from the environment (see the README's configuration table)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.documents.pki import SealSource

INSTANCE_DIR = Path(os.environ.get("BEHORIGHET_INSTANCE_DIR", Path.cwd() / "instance"))


class StandIn(enum.StrEnum):
    """A real part that a plugin can put a development stand-in in place of (demo and tests)."""

    BANKID = "bankid"
    """BankID's RP API is answered by a simulator, and BankID signatures chain to its root."""
    SEAL = "seal"
    """The agency's seal and its timestamps come from a test PKI."""
    MAIL = "mail"
    """Email goes to a local sink that keeps it."""
    SCANNER = "scanner"
    """A page stands in for the mailroom's scanner."""


def qr_mac_key(secret: str) -> bytes:
    """The MAC key of the forms' QR codes derived from an application secret (never the
    secret itself)."""
    return hmac.new(secret.encode(), b"behorighet-qr-mac-v1", hashlib.sha256).digest()


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

    outbox_resend_after_s: float = 30.0
    """A message not acknowledged this long after it was last sent is sent again."""

    worker_threads: int = 2
    """Threads per worker process (also for the demo's in-process worker)."""

    deadline_check_interval_s: float = 300.0
    """How often each worker schedules the ``watch_deadlines`` actor (SLA reminders and
    escalations)."""

    session_idle_minutes: int = 30
    """A session unused this long ends."""

    session_absolute_hours: float = 10.0
    """A session ends this long after login, used or not."""

    bankid_collect_interval_s: float = 2.0
    """How often a BankID order is collected at most (BankID asks for two seconds)."""

    bankid_url: str = "https://appapi2.bankid.com/rp/v6.0/"
    """Base URL of BankID's RP API v6.0: BankID's production service by default,
    ``https://appapi2.test.bankid.com/rp/v6.0/`` for BankID's test service; plain ``http`` is
    accepted only on loopback (a simulator)."""

    bankid_cert_file: str | None = None
    """PEM client certificate (the RP certificate) for mutual TLS with BankID; needed for https."""

    bankid_key_file: str | None = None
    """PEM private key of ``bankid_cert_file`` (may be the same file)."""

    bankid_ca_file: str | None = None
    """PEM CA certificate(s) that BankID's server certificate must chain to; defaults to the
    CA that pybankid ships for appapi2.bankid.com."""

    bankid_trust_roots_file: str | None = None
    """PEM root certificate(s) trusted for BankID signatures (the XML in ``completionData``);
    needed to check them."""

    testing: bool = False

    seal_pkcs12_file: str | None = None
    """PKCS#12 file with the agency's seal certificate and key (and maybe its chain).
    Alternatively :attr:`seal_cert_file` and :attr:`seal_key_file`. One of the two is needed
    to seal, unless a plugin provides the seal (:attr:`seal_source`)."""

    seal_cert_file: str | None = None
    """The seal certificate (PEM or DER; further certificates in a PEM file join the chain)."""

    seal_key_file: str | None = None
    """The seal certificate's private key (PEM or DER, PKCS#8 or traditional)."""

    seal_key_password: str | None = field(default=None, repr=False)
    """Password of :attr:`seal_pkcs12_file` or of an encrypted :attr:`seal_key_file`."""

    seal_chain_file: str | None = None
    """Intermediate CA certificates of the seal certificate (PEM), embedded in every seal."""

    seal_trust_roots_file: str | None = None
    """Root certificates (PEM) a seal and its timestamp must chain to to be accepted;
    needed to validate seals (unless a plugin provides the seal)."""

    tsa_url: str | None = None
    """URL of the RFC 3161 time-stamping authority; required with a seal from files."""

    mail_url: str = field(default="smtp://127.0.0.1:8025", repr=False)
    """Where email goes: ``smtp://host:port`` (plain), ``smtp+starttls://user:pass@host:587``
    or ``smtps://user:pass@host:465`` (TLS from the start); user and password URL-encoded.
    The default is a local server on port 8025 (where the demo's mail sink listens); set it
    in production."""

    mail_from: str = "Statens tjänstepensionsverk <noreply@spv.example>"
    """The ``From`` of every email (and the envelope sender); its domain names Message-IDs."""

    public_base_url: str = "http://127.0.0.1:5000"
    """The product's address as users reach it, for the links in emails (no trailing ``/``)."""

    api_rate_limit: str = "6000 per minute"
    """How often one API client may call ``/api/v1/`` (Flask-Limiter's notation)."""

    rate_limit_storage_url: str | None = None
    """Where the API's rate-limit counters live: ``redis://…`` (shared by every web
    process); by default the broker's Redis when ``BROKER_URL`` is Redis, else each
    process's memory."""

    api_client_cert_header: str | None = None
    """The request header in which the TLS-terminating reverse proxy passes the API
    client's verified certificate (PEM, URL-encoded as nginx's ``$ssl_client_escaped_cert``),
    e.g. ``X-SSL-Client-Cert``; trusted only from :attr:`api_trusted_proxies`."""

    api_trusted_proxies: frozenset[str] = frozenset()
    """The addresses of the reverse proxies whose :attr:`api_client_cert_header` is believed."""

    stand_ins: frozenset[StandIn] = frozenset()
    """The real parts that plugins put stand-ins in place of (the demo's and the tests').
    Never read from the environment: only a plugin sets it, in its ``configure``. Empty in
    production."""

    seal_source: SealSource | None = field(default=None, compare=False, repr=False)
    """Where the seal material comes from when a plugin provides it (the demo's and the
    tests' test PKI); ``None``: the ``SEAL_*`` files and ``TSA_URL`` above."""

    @property
    def bankid_simulator(self) -> bool:
        """Whether BankID is the simulator a plugin put in its place (pages point to it)."""
        return StandIn.BANKID in self.stand_ins

    @property
    def demo_scanner(self) -> bool:
        """Whether a plugin serves the stand-in for the mailroom's scanner."""
        return StandIn.SCANNER in self.stand_ins

    @property
    def rate_limit_storage(self) -> str:
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def qr_key(self) -> bytes:
        """The MAC key of the forms' QR codes (``app.documents.qr``)."""
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
        if "OUTBOX_RESEND_AFTER_S" in env:
            values["outbox_resend_after_s"] = float(env["OUTBOX_RESEND_AFTER_S"])
        if "WORKER_THREADS" in env:
            values["worker_threads"] = int(env["WORKER_THREADS"])
        if "DEADLINE_CHECK_INTERVAL_S" in env:
            values["deadline_check_interval_s"] = float(env["DEADLINE_CHECK_INTERVAL_S"])
        if "SESSION_IDLE_MINUTES" in env:
            values["session_idle_minutes"] = int(env["SESSION_IDLE_MINUTES"])
        if "BANKID_COLLECT_INTERVAL_S" in env:
            values["bankid_collect_interval_s"] = float(env["BANKID_COLLECT_INTERVAL_S"])
        if "SESSION_ABSOLUTE_HOURS" in env:
            values["session_absolute_hours"] = float(env["SESSION_ABSOLUTE_HOURS"])
        for name in (
            "bankid_url",
            "bankid_cert_file",
            "bankid_key_file",
            "bankid_ca_file",
            "bankid_trust_roots_file",
        ):
            if name.upper() in env:
                values[name] = env[name.upper()]
        for name in (
            "seal_pkcs12_file",
            "seal_cert_file",
            "seal_key_file",
            "seal_key_password",
            "seal_chain_file",
            "seal_trust_roots_file",
            "tsa_url",
        ):
            if env.get(name.upper()):
                values[name] = env[name.upper()]
        if env.get("API_TRUSTED_PROXIES"):
            values["api_trusted_proxies"] = frozenset(
                p.strip() for p in env["API_TRUSTED_PROXIES"].split(",") if p.strip()
            )
        for name in (
            "mail_url",
            "mail_from",
            "public_base_url",
            "api_rate_limit",
            "rate_limit_storage_url",
            "api_client_cert_header",
        ):
            if env.get(name.upper()):
                values[name] = env[name.upper()]
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
