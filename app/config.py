"""Settings read once from the environment (see the README's configuration table)."""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

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
    COMPANY_REGISTER = "company_register"
    """A button stands in for the company register's delivery of an extract of signatories
    (it imports the demo's extract as ``behorighet signatories import`` does)."""
    REVIEW_CLOCK = "review_clock"
    """A page lets days go by for the recurring review (every employer's and campaign's
    times moved into the past)."""


class MissingSecretError(ValueError):
    """A secret that production must be given was not (the demo and the tests derive one)."""


AUDIT_KEY_MIN_LENGTH = 32
"""The fewest characters an ``AUDIT_KEY`` may have (e.g. ``openssl rand -hex 32``: 64)."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
RETENTION_SETTINGS = (
    "retention_drafts_days",
    "retention_closed_days",
    "retention_rejected_days",
    "retention_scans_days",
    "retention_email_bodies_days",
    "retention_persons_days",
    "retention_access_log_days",
    "retention_eid_orders_days",
)
"""The retention periods in days, each read from its upper-case environment variable."""


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

    audit_key: str | None = field(default=None, repr=False)
    """Keys the audit chain's HMAC (``app.audit.service``). Kept outside the database (a
    secret store), so that whoever holds the database cannot recompute the chain; never
    changed (events keep the key they were chained with). Required in production; the demo
    and the tests derive one from :attr:`secret_key` (:meth:`audit_chain_key`)."""

    audit_checkpoint_dir: str | None = None
    """Append-only storage outside the database for the audit chain's timestamped
    checkpoints (``app.audit.anchor``): a directory whose files are created once and never
    overwritten (in production a WORM-mounted volume, e.g. an S3 bucket with Object Lock in
    compliance mode mounted read/write-once). Unset: no checkpoints (the demo keeps them in
    the instance folder)."""

    outbox_resend_after_s: float = 30.0
    """A message not acknowledged this long after it was last sent is sent again."""

    worker_threads: int = 2
    """Threads per worker process for the errand's steps, the ``steps`` queue (also for the
    demo's in-process worker)."""

    worker_email_threads: int = 2
    """Threads per worker process sending email (the ``email`` queue)."""

    worker_intake_threads: int = 1
    """Threads per worker process reading scanned batches (the ``intake`` queue)."""

    worker_scheduled_threads: int = 1
    """Threads per worker process for the periodic work (the ``scheduled`` queue)."""

    worker_queues: str = ""
    """The queues a ``behorighet worker`` consumes, comma-separated, each optionally with
    its threads (``steps=4,email``); empty: all four (``workflows.worker.queue_threads``)."""

    web_bind: str = "127.0.0.1:8000"
    """Where ``behorighet serve`` listens (host:port, or unix:PATH), behind the proxy."""

    web_workers: int = 2
    """``behorighet serve``'s processes (about one per core)."""

    web_threads: int = 4
    """Threads per ``behorighet serve`` process."""

    trusted_proxies: int = 0
    """How many reverse proxies in front of the app set X-Forwarded-For/-Proto/-Host: the
    end user's address (which BankID is told) is taken from that many hops back. 0: none
    (the demo); never more than really stand in front (the header could be forged)."""

    deadline_check_interval_s: float = 300.0
    """How often each worker schedules the ``watch_deadlines`` actor (SLA reminders and
    escalations)."""

    retention_drafts_days: int = 30
    """Retention (``app.retention``): an errand never submitted (a draft, one waiting for
    an invited signatory, or one that lapsed unsubmitted) is removed, with everything in
    it, this many days after it was started. Drafts lapse after the same time."""

    retention_closed_days: int = 3650
    """A closed errand and its documents are removed this many days after closing (not
    while a role it registered or ended is in force or ended less long ago)."""

    retention_rejected_days: int = 730
    """A rejected or withdrawn errand is removed this many days after it ended."""

    retention_scans_days: int = 365
    """A scanned batch's original file is removed this many days after the last of its
    forms' archive PDFs was sealed and stored (a file that was no scan: after its refusal);
    the archive PDFs stay with their errands."""

    retention_email_bodies_days: int = 90
    """A sent email's body is removed this many days after it was sent; its headers
    (recipient, subject, template, times) are kept."""

    retention_persons_days: int = 730
    """A person with no role, permission or errand left is pseudonymised (personnummer,
    name, email and login removed) this many days after the last of them ended."""

    retention_access_log_days: int = 1095
    """An entry of the access log (a staff member's view of a person's data, an API
    client's read) is removed this many days after it was made (never under 30 days)."""

    retention_eid_orders_days: int = 90
    """A BankID login order, with what BankID answered (personnummer, name, signature, the
    device's address), is removed this many days after it was started; the login itself
    stays in the audit log and as the person's last login."""

    retention_batch_size: int = 200
    """How many items each retention batch removes (one commit and one audit event each)."""

    retention_interval_s: float = 3600.0
    """How often each worker schedules the ``apply_retention`` actor."""

    paper_waiting_days: int = 14
    """How long an approved posted registration waits before it takes effect; meanwhile the
    employer's orderers and signatories may stop it (``app.safeguards``)."""

    review_interval_days: int = 365
    """The recurring review (``app.access.campaigns``): an employer's campaign starts this
    many days after the previous one started (the first: after the employer was added);
    0 starts none."""

    review_period_days: int = 30
    """A campaign's deadline, this many days after it starts; then the signatory is told."""

    review_reminder_days: tuple[int, ...] = (14, 3)
    """Reminders to the orderers this many days before the deadline (what is still open)."""

    review_grace_days: int = 14
    """What is still unconfirmed ends this many days after the deadline."""

    review_final_warning_days: int = 7
    """The final warning goes out this many days before the ending (the ending waits for
    it: never sooner than this after it)."""
    mandate_reminder_days: int = 14
    """How many days before a time-limited role or permission ends (``ends_on``) the person
    and whoever granted it are reminded (``app.access.mandates``)."""

    mandate_extension_days: int = 365
    """What "Förläng" proposes: the new end this many days after the current one."""

    session_idle_minutes: int = 30
    """A session unused this long ends."""

    session_absolute_hours: float = 10.0
    """A session ends this long after login, used or not."""

    session_redis_url: str | None = None
    """Where the web sessions live: ``redis://…`` (shared by every web process); unset, in
    the database (``web_session``). Either way only the session's random id is in the
    cookie, so logout and the limits end a session on the server."""

    intake_max_file_bytes: int = 64 * 1024 * 1024
    """The largest scanned file taken, uploaded or dropped in the watched folder (a larger
    one is refused unread); also the largest request the web accepts."""

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

    seal_cert_fingerprints: str | None = None
    """SHA-256 fingerprints (hex, comma-separated: the old and the new around a renewal) of
    the only certificates whose seal is accepted. Unset: :attr:`seal_subject` with
    :attr:`seal_organisation_number`, else the seal certificate the product seals with.
    Never merely any certificate under :attr:`seal_trust_roots_file`."""

    seal_subject: str | None = None
    """The seal certificate's subject common name; with :attr:`seal_organisation_number`,
    accepts a seal by subject instead of by fingerprint (renewals need no change)."""

    seal_organisation_number: str | None = None
    """The agency's organisation number as the seal certificate carries it (in
    ``organizationIdentifier`` or ``serialNumber``); goes with :attr:`seal_subject`."""

    tsa_url: str | None = None
    """URL of the RFC 3161 time-stamping authority; required with a seal from files."""

    archive_retimestamp_margin_days: int = 180
    """How long before the TSA certificate of a stored document's newest timestamp ends the
    archive re-timestamps the document (``app.registrations.archive``): enough to notice and
    fix a TSA or responder that fails for weeks."""

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

    api_client_cache_s: float = 10.0
    """How long a web process remembers an authenticated API client (a revoked client is
    refused within this time; 0: looked up on every call)."""

    rate_limit_storage_url: str | None = None
    """Where the rate-limit counters (the API's and the site's) live: ``redis://…`` (shared
    by every web process); by default the broker's Redis when ``BROKER_URL`` is Redis, else
    each process's memory."""

    log_level: str = "INFO"
    """The least severe log records written: ``DEBUG``, ``INFO`` (the default), ``WARNING``
    or ``ERROR`` (``LOG_LEVEL``; the benchmarks write warnings only)."""

    web_rate_limits: bool = True
    """Whether the site's limits below apply (``WEB_RATE_LIMITS=0`` turns them off; the API
    keeps :attr:`api_rate_limit`). Each counts per signed-in person, or per address for a
    request without a login."""

    login_rate_limit: str = "30 per minute; 300 per hour"
    """Logins started (Flask-Limiter's notation, limits separated by ``;``)."""

    collect_rate_limit: str = "600 per minute"
    """Polls of a BankID order's status (login and signing): the pages poll once a second,
    and people behind one address log in side by side."""

    signing_rate_limit: str = "20 per minute; 200 per hour"
    """Signatures started with BankID."""

    blank_form_rate_limit: str = "60 per minute"
    """Blank printable forms downloaded."""

    api_client_cert_header: str | None = None
    """The request header in which the TLS-terminating reverse proxy passes the API
    client's verified certificate (PEM, URL-encoded as nginx's ``$ssl_client_escaped_cert``),
    e.g. ``X-SSL-Client-Cert``; trusted only from :attr:`api_trusted_proxies`."""

    api_trusted_proxies: frozenset[str] = frozenset()
    """The addresses of the reverse proxies whose :attr:`api_client_cert_header` is believed."""

    metrics_token: str | None = field(default=None, repr=False)
    """The bearer token ``/metrics`` asks for (``Authorization: Bearer …``). Unset, the page
    is open in the demo and the tests and refused to everyone in production."""

    stand_ins: frozenset[StandIn] = frozenset()
    """The real parts that plugins put stand-ins in place of (the demo's and the tests').
    Never read from the environment: only a plugin sets it, in its ``configure``. Empty in
    production."""

    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """The settings given explicitly (by the environment or the caller) rather than left to
    their defaults: production needs some of them given (:func:`production_problems`)."""

    seal_source: SealSource | None = field(default=None, compare=False, repr=False)
    """Where the seal material comes from when a plugin provides it (the demo's and the
    tests' test PKI); ``None``: the ``SEAL_*`` files and ``TSA_URL`` above."""

    def __post_init__(self) -> None:
        for name in (*RETENTION_SETTINGS, "retention_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.upper()} must be at least 1, not {getattr(self, name)}")
        if self.log_level not in LOG_LEVELS:
            levels = ", ".join(LOG_LEVELS)
            raise ValueError(f"LOG_LEVEL must be one of {levels}, not {self.log_level}")

    @property
    def bankid_simulator(self) -> bool:
        """Whether BankID is the simulator a plugin put in its place (pages point to it)."""
        return StandIn.BANKID in self.stand_ins

    @property
    def demo_scanner(self) -> bool:
        """Whether a plugin serves the stand-in for the mailroom's scanner."""
        return StandIn.SCANNER in self.stand_ins

    @property
    def demo_company_register(self) -> bool:
        """Whether a plugin serves the stand-in for the company register's deliveries."""
        return StandIn.COMPANY_REGISTER in self.stand_ins

    @property
    def https(self) -> bool:
        """Whether users reach the product over https (:attr:`public_base_url`): the session
        cookie is then ``Secure`` and ``__Host-``, and browsers are told HSTS."""
        return urlsplit(self.public_base_url).scheme == "https"

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

    @property
    def archive_retimestamp_margin(self) -> timedelta:
        """:attr:`archive_retimestamp_margin_days` as a time; at least a day."""
        if self.archive_retimestamp_margin_days < 1:
            raise ValueError("ARCHIVE_RETIMESTAMP_MARGIN_DAYS must be at least 1")
        return timedelta(days=self.archive_retimestamp_margin_days)

    def audit_chain_key(self) -> bytes:
        """The HMAC key of the audit chain, derived from :attr:`audit_key` (never the key
        itself). Without one, only the demo and the tests (stand-ins or ``testing``) get a
        key derived from :attr:`secret_key`; production raises :class:`MissingSecretError`."""
        if self.audit_key:
            if len(self.audit_key) < AUDIT_KEY_MIN_LENGTH:
                raise MissingSecretError(
                    f"AUDIT_KEY must have at least {AUDIT_KEY_MIN_LENGTH} characters"
                )
            secret = self.audit_key
        elif self.stand_ins or self.testing:
            secret = "demo-audit-key:" + self.secret_key
        else:
            raise MissingSecretError(
                "AUDIT_KEY must be set: it keys the audit chain and is kept outside the database"
            )
        return hmac.new(secret.encode(), b"behorighet-audit-chain-v1", hashlib.sha256).digest()

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
        for name in (
            "worker_threads",
            "worker_email_threads",
            "worker_intake_threads",
            "worker_scheduled_threads",
            "web_workers",
            "web_threads",
            "trusted_proxies",
        ):
            if name.upper() in env:
                values[name] = int(env[name.upper()])
        if env.get("LOG_LEVEL"):
            values["log_level"] = env["LOG_LEVEL"].strip().upper()
        if "WORKER_QUEUES" in env:
            values["worker_queues"] = env["WORKER_QUEUES"]
        if env.get("WEB_BIND"):
            values["web_bind"] = env["WEB_BIND"]
        if "DEADLINE_CHECK_INTERVAL_S" in env:
            values["deadline_check_interval_s"] = float(env["DEADLINE_CHECK_INTERVAL_S"])
        if "ARCHIVE_RETIMESTAMP_MARGIN_DAYS" in env:
            values["archive_retimestamp_margin_days"] = int(env["ARCHIVE_RETIMESTAMP_MARGIN_DAYS"])
        for name in (*RETENTION_SETTINGS, "retention_batch_size"):
            if env.get(name.upper()):
                values[name] = int(env[name.upper()])
        if env.get("RETENTION_INTERVAL_S"):
            values["retention_interval_s"] = float(env["RETENTION_INTERVAL_S"])
        if "PAPER_WAITING_DAYS" in env:
            values["paper_waiting_days"] = int(env["PAPER_WAITING_DAYS"])
        for name in (
            "review_interval_days",
            "review_period_days",
            "review_grace_days",
            "review_final_warning_days",
        ):
            if env.get(name.upper()):
                values[name] = int(env[name.upper()])
        if "REVIEW_REMINDER_DAYS" in env:
            values["review_reminder_days"] = tuple(
                int(d) for d in env["REVIEW_REMINDER_DAYS"].split(",") if d.strip()
            )
        for name in ("mandate_reminder_days", "mandate_extension_days"):
            if env.get(name.upper()):
                values[name] = int(env[name.upper()])
        if "SESSION_IDLE_MINUTES" in env:
            values["session_idle_minutes"] = int(env["SESSION_IDLE_MINUTES"])
        if "BANKID_COLLECT_INTERVAL_S" in env:
            values["bankid_collect_interval_s"] = float(env["BANKID_COLLECT_INTERVAL_S"])
        if env.get("API_CLIENT_CACHE_S"):
            values["api_client_cache_s"] = float(env["API_CLIENT_CACHE_S"])
        if "INTAKE_MAX_FILE_BYTES" in env:
            values["intake_max_file_bytes"] = int(env["INTAKE_MAX_FILE_BYTES"])
        if "SESSION_ABSOLUTE_HOURS" in env:
            values["session_absolute_hours"] = float(env["SESSION_ABSOLUTE_HOURS"])
        if "WEB_RATE_LIMITS" in env:
            values["web_rate_limits"] = env["WEB_RATE_LIMITS"].strip().lower() not in (
                "0",
                "false",
                "no",
                "off",
            )
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
            "seal_cert_fingerprints",
            "seal_subject",
            "seal_organisation_number",
            "tsa_url",
        ):
            if env.get(name.upper()):
                values[name] = env[name.upper()]
        for name in ("audit_key", "audit_checkpoint_dir"):
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
            "session_redis_url",
            "login_rate_limit",
            "collect_rate_limit",
            "signing_rate_limit",
            "blank_form_rate_limit",
            "metrics_token",
        ):
            if env.get(name.upper()):
                values[name] = env[name.upper()]
        if env.get("BEHORIGHET_TESTING") == "1":
            values["testing"] = True  # a process the test suite starts; never in production
        values.update(overrides)
        values["given"] = frozenset(values)
        return cls(**values)  # type: ignore[arg-type]


class UnsafeSettings(RuntimeError):
    """The product was started outside the demo and the tests with settings that are not
    safe in production; the message names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "Refusing to start with unsafe settings (outside `behorighet demo`):\n  "
            + "\n  ".join(problems)
        )
        self.problems = problems


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def production_problems(settings: Settings) -> list[str]:
    """What makes ``settings`` unsafe in production: every missing or unsafe setting, by
    its environment name. Nothing to say with stand-ins plugged in (the demo) or in tests."""
    if settings.stand_ins or settings.testing:
        return []
    problems = []
    for name in ("secret_key", "qr_secret"):
        if name not in settings.given:
            problems.append(f"{name.upper()} is not set (the default is random per process)")
    if not settings.audit_key or len(settings.audit_key) < AUDIT_KEY_MIN_LENGTH:
        problems.append(
            f"AUDIT_KEY is not set (at least {AUDIT_KEY_MIN_LENGTH} characters, kept outside "
            "the database)"
        )
    if urlsplit(settings.bankid_url).scheme != "https" or _is_loopback(settings.bankid_url):
        problems.append(f"BANKID_URL must be BankID's https address, not {settings.bankid_url}")
    files = {
        "BANKID_CERT_FILE": settings.bankid_cert_file,
        "BANKID_KEY_FILE": settings.bankid_key_file,
        "BANKID_CA_FILE": settings.bankid_ca_file,
        "BANKID_TRUST_ROOTS_FILE": settings.bankid_trust_roots_file,
        "SEAL_TRUST_ROOTS_FILE": settings.seal_trust_roots_file,
    }
    if settings.seal_source is None:
        if settings.seal_pkcs12_file:
            files["SEAL_PKCS12_FILE"] = settings.seal_pkcs12_file
        else:
            files["SEAL_CERT_FILE"] = settings.seal_cert_file
            files["SEAL_KEY_FILE"] = settings.seal_key_file
    for name, path in files.items():
        if not path:
            problems.append(f"{name} is not set")
        elif not Path(path).is_file():
            problems.append(f"{name}: no such file {path}")
    if not settings.tsa_url or urlsplit(settings.tsa_url).scheme not in ("https", "http"):
        problems.append("TSA_URL is not set (an RFC 3161 time-stamping authority)")
    if "mail_url" not in settings.given:
        problems.append("MAIL_URL is not set (the default is the demo's mail sink)")
    if urlsplit(settings.public_base_url).scheme != "https":
        problems.append(f"PUBLIC_BASE_URL must be https, not {settings.public_base_url}")
    if settings.database_url.startswith("sqlite"):
        problems.append("DATABASE_URL is SQLite, the demo's database: use PostgreSQL")
    if settings.broker_url.startswith("stub://"):
        problems.append(
            "BROKER_URL is stub://, the demo's in-process broker: use RabbitMQ or Redis"
        )
    return problems
