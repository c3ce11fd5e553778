"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AuditEvent(Base):
    """One change. ``hash`` covers this event's fields and the hash of the previous event of
    its chain: an HMAC-SHA256 under the audit key (``key_version`` 2, the chain's name
    included; 1 before the log had many chains), or, for the events chained before the
    chain was keyed, a plain SHA-256 (``key_version`` 0)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chain: Mapped[str] = mapped_column(String(64), server_default="")
    """``employer:<id>``, or ``''``: the shared chain (events about no employer, and every
    event before migration 0018). Order across chains by ``id``."""
    seq: Mapped[int] = mapped_column(BigInteger)
    """The event's place in its chain, from 1."""
    occurred_dt: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    """``person:<id>``, ``staff:<id>`` or ``system:<component>``."""
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    """0: a legacy plain SHA-256 (only up to ``AuditChainHead.legacy_until_seq``); 1: HMAC
    (the shared chain only); 2: HMAC with the chain's name; 3: HMAC with the chain's name
    over :attr:`data_digest` instead of :attr:`data` (from migration 0024)."""
    data_digest: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of :attr:`data_salt` and :attr:`data` (``key_version`` 3): the chain covers
    it, so that retention can remove the payload and the chain still verifies."""
    data_salt: Mapped[str | None] = mapped_column(String(32))
    """Random per event, removed with the payload: the digest of a removed payload cannot
    be matched against guesses (a personnummer has few)."""
    redacted_dt: Mapped[datetime | None]
    """When retention removed the payload (:attr:`data` is then ``{}``)."""

    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        CheckConstraint("seq > 0", name="seq_positive"),
        UniqueConstraint("chain", "seq"),
    )


class AuditChainHead(Base):
    """A chain's newest event; locking it orders the chain's concurrent writers (writers to
    other chains do not wait)."""

    __tablename__ = "audit_chain_head"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    legacy_until_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The last event chained unkeyed, before migration 0015 (0: none; the shared chain's
    only); also in every checkpoint, outside the database."""
