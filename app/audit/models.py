"""The append-only, hash-chained audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AuditEvent(Base):
    """One change. ``hash`` covers this event's fields and the previous event's hash: an
    HMAC-SHA256 under the audit key (``key_version`` 1), or, for the events chained before
    the chain was keyed, a plain SHA-256 (``key_version`` 0)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
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
    """0: a legacy plain SHA-256 (only up to ``AuditChainHead.legacy_until_seq``); 1: HMAC."""

    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        CheckConstraint("seq > 0", name="seq_positive"),
    )


class AuditChainHead(Base):
    """A single row holding the newest hash; locking it orders concurrent writers."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    legacy_until_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    """The last event chained unkeyed, before migration 0015 (0: none); also in every
    checkpoint, outside the database."""

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
