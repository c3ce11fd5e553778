"""Registered API clients and the log of who asked about whom."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Scope(enum.StrEnum):
    """What a client may call: one scope per kind of endpoint."""

    CHECK = "check"
    """``POST /api/v1/check`` and its batch form."""
    PERSONS = "persons"
    """``GET /api/v1/persons/{personnummer}/permissions``."""
    CONTACTS = "contacts"
    """``GET /api/v1/employers/{id}/contacts``."""
    CHANGES = "changes"
    """``GET /api/v1/changes``."""


class ApiClient(Base):
    """A service allowed to call the API, by a bearer token or a TLS client certificate."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the secret; the secret itself is shown once and never stored."""
    cert_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 fingerprint (hex, lower case) of the client's TLS certificate (DER)."""
    scopes: Mapped[str] = mapped_column(String(200))
    """Space-separated ``Scope`` values."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_dt: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(
            "token_sha256 IS NOT NULL OR cert_sha256 IS NOT NULL", name="has_credential"
        ),
    )

    @property
    def scope_set(self) -> frozenset[Scope]:
        return frozenset(Scope(s) for s in self.scopes.split())


class ApiAccessLog(Base):
    """Who asked about whom, and when: one row per person a call read (a batch check, a
    page of the change feed or an employer's contacts read several; an employer's contacts
    when it has none, one row without a subject). The subject is kept as a keyed hash of
    the personnummer, never the number itself."""

    __tablename__ = "api_access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id"))
    endpoint: Mapped[str] = mapped_column(String(40))
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA-256 of the personnummer asked about (``app.api.clients.subject_hash``)."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_api_access_log_subject", "subject_hash", "created_dt"),
        Index("ix_api_access_log_client", "client_id", "created_dt"),
    )
