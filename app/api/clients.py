"""API clients: registered, authenticated, revoked; and the log of who asked about whom.

Plain functions: a session, no Flask. A client's secret is a 256-bit random token shown
once; only its SHA-256 is stored (a token that long needs no slow hash), and a presented
token is looked up by its hash and compared in constant time. A client may instead (or
also) be known by the SHA-256 fingerprint of its TLS client certificate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.api.models import ApiAccessLog, ApiClient, Scope
from app.db import utcnow

TOKEN_PREFIX = "bh_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class ClientError(ValueError):
    """A client cannot be registered or found as asked; the message says why."""


@dataclass(frozen=True)
class Caller:
    """The authenticated client of one request."""

    id: int
    name: str
    scopes: frozenset[Scope]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_fingerprint(value: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits (colons, spaces and
    an ``sha256:`` prefix accepted)."""
    text = value.strip().lower().removeprefix("sha256:").removeprefix("sha256=")
    digits = re.sub(r"[\s:]", "", text)
    if not _FINGERPRINT.match(digits):
        raise ClientError("a certificate fingerprint is 64 hex digits (SHA-256)")
    return digits


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes: set[Scope] = set()
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                scopes.add(Scope(part.strip().lower()))
            except ValueError:
                known = ", ".join(s.value for s in Scope)
                raise ClientError(f"unknown scope {part!r} (known: {known})") from None
    if not scopes:
        raise ClientError("name at least one scope")
    return frozenset(scopes)


def add_client(
    session: Session,
    name: str,
    scopes: frozenset[Scope],
    *,
    cert_fingerprint: str | None = None,
    with_token: bool = True,
) -> tuple[ApiClient, str | None]:
    """Register a client; returns it and its secret (shown once; None without a token)."""
    if not _NAME.match(name):
        raise ClientError("a name is 1–100 letters, digits, '.', '_' or '-'")
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise ClientError(f"a client named {name!r} exists already")
    fingerprint = normalise_fingerprint(cert_fingerprint) if cert_fingerprint else None
    if fingerprint and session.scalar(
        select(ApiClient.id).where(ApiClient.cert_sha256 == fingerprint)
    ):
        raise ClientError("that certificate is another client's already")
    if not with_token and not fingerprint:
        raise ClientError("a client needs a token or a certificate")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32) if with_token else None
    client = ApiClient(
        name=name,
        scopes=" ".join(sorted(s.value for s in scopes)),
        token_sha256=token_hash(token) if token else None,
        cert_sha256=fingerprint,
    )
    session.add(client)
    session.flush()
    return client, token


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.name)))


def revoke_client(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise ClientError(f"no client named {name!r}")
    if client.revoked_dt is None:
        client.revoked_dt = utcnow()
        session.flush()
    return client


def _caller(client: ApiClient | None) -> Caller | None:
    if client is None or client.revoked_dt is not None:
        return None
    return Caller(client.id, client.name, client.scope_set)


def by_token(session: Session, token: str) -> Caller | None:
    """The active client whose secret ``token`` is, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    client = session.scalar(select(ApiClient).where(ApiClient.token_sha256 == digest))
    if client is None or not hmac.compare_digest(client.token_sha256 or "", digest):
        return None
    return _caller(client)


def by_certificate(session: Session, fingerprint: str) -> Caller | None:
    """The active client registered with this certificate fingerprint, or None."""
    try:
        digits = normalise_fingerprint(fingerprint)
    except ClientError:
        return None
    return _caller(session.scalar(select(ApiClient).where(ApiClient.cert_sha256 == digits)))


def subject_hash(key: bytes, personnummer: str) -> str:
    """The access log's stand-in for a personnummer: a keyed hash (the number space is
    small enough to reverse a plain hash)."""
    return hmac.new(key, personnummer.encode(), hashlib.sha256).hexdigest()


def access_rows(
    key: bytes, caller: Caller, endpoint: str, personnummers: Iterable[str]
) -> list[dict[str, Any]]:
    """The access log's rows for a call by ``caller`` that read personal data about these
    people (one row each); with none named (an employer without contacts), one row
    without a subject."""
    now: datetime = utcnow()
    subjects: list[str | None] = [subject_hash(key, pnr) for pnr in sorted(set(personnummers))]
    return [
        {"client_id": caller.id, "endpoint": endpoint, "subject_hash": subject, "created_dt": now}
        for subject in subjects or [None]
    ]


def log_access(
    session: Session, key: bytes, caller: Caller, endpoint: str, personnummers: Iterable[str]
) -> None:
    """Record that ``caller`` read personal data about these people."""
    session.execute(insert(ApiAccessLog), access_rows(key, caller, endpoint, personnummers))


class CallerCache:
    """The clients a web process authenticated lately, by the digest of their credential,
    kept for ``seconds``: the API's hot path then needs no lookup, and a revoked client is
    refused within that time. Unknown credentials are not kept (each is looked up)."""

    def __init__(
        self, seconds: float, *, size: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self._clock = clock
        self._found: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, look_up: Callable[[], Caller | None]) -> Caller | None:
        """The caller ``digest`` names: remembered, or else ``look_up()`` (and remembered)."""
        now = self._clock()
        with self._lock:
            kept = self._found.get(digest)
        if kept is not None and kept[0] > now:
            return kept[1]
        caller = look_up()
        if caller is not None and self.seconds > 0:
            with self._lock:
                if len(self._found) >= self.size:
                    self._found.clear()
                self._found[digest] = (now + self.seconds, caller)
        return caller


def subject_key(secret: str) -> bytes:
    """The key of :func:`subject_hash`, derived from the application secret."""
    return hmac.new(secret.encode(), b"behorighet-api-subject-v1", hashlib.sha256).digest()


def certificate_fingerprint(pem: str) -> str | None:
    """SHA-256 fingerprint (hex) of a PEM certificate as a proxy or the server passes it,
    or None when it is not one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode())
    except (ValueError, TypeError):
        return None
    return certificate.fingerprint(hashes.SHA256()).hex()
