"""BankID orders started by the product (login or signing), kept server-side.

The qrStartSecret never leaves the server, and an order is bound to the browser
that started it, so any web process can poll it and nobody else can finish it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, str_enum, utcnow


class OrderPurpose(enum.StrEnum):
    LOGIN = "login"
    SIGN = "sign"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    USED = "used"
    """Complete, and its result has been acted on (a login made, a document sealed)."""


class EidOrder(Base):
    __tablename__ = "eid_order"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[OrderPurpose] = mapped_column(str_enum(OrderPurpose, "order_purpose"))
    order_ref: Mapped[str] = mapped_column(String(64), unique=True)
    auto_start_token: Mapped[str] = mapped_column(String(64))
    qr_start_token: Mapped[str] = mapped_column(String(64))
    qr_start_secret: Mapped[str] = mapped_column(String(64))
    browser_binding: Mapped[str] = mapped_column(String(64))
    """SHA-256 of a random value kept in the starting browser's session."""
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, "order_status"), default=OrderStatus.PENDING
    )
    hint_code: Mapped[str | None] = mapped_column(String(64))
    started_dt: Mapped[datetime] = mapped_column(default=utcnow)
    last_collect_dt: Mapped[datetime | None]
    errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), index=True)
    document: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """The exact PDF being signed."""
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    completion: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WebSession(Base):
    """A browser's session, kept on the server (``app.eid.sessions``): the cookie holds
    only its random id, so logging out and the idle and absolute limits end it here, and a
    copied cookie is worth nothing after."""

    __tablename__ = "web_session"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    """The store id: a prefix and the cookie's random session id."""
    data: Mapped[bytes] = mapped_column(LargeBinary)
    """The session's values (msgpack, Flask-Session's serialiser)."""
    expires_dt: Mapped[datetime] = mapped_column(index=True)
    """Unused until then, it has ended (the idle limit); renewed as it is used."""
