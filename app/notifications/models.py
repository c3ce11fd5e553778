"""Emails: every message the product sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class EmailMessage(Base):
    """One email to one recipient (or to a group, each in the envelope only), rendered when
    queued and sent after the commit.

    ``dedupe_key`` names the notification (``role_granted:<grant>:<person>``), so the same
    notification is never queued twice. ``sent_dt`` is set in the transaction that records
    the SMTP server's acceptance; a row with ``sent_dt`` is never sent again.
    """

    __tablename__ = "email_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    """The template code, e.g. ``role_granted``."""
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str] = mapped_column(String(200))
    group_addresses: Mapped[list[str] | None] = mapped_column(JSON)
    """For one email to a group (the employer's orderers told of a change): every address,
    ``to_name`` naming the group and ``to_address`` empty. ``None``: to ``to_address``."""
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), index=True)
    role_grant_id: Mapped[int | None] = mapped_column(ForeignKey("role_grant.id"), index=True)
    service_permission_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_permission.id"), index=True
    )
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    sent_dt: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    """SMTP deliveries tried, successful or not."""
    last_error: Mapped[str | None] = mapped_column(Text)
    """Why the last attempt failed; cleared when one succeeds."""
    body_removed_dt: Mapped[datetime | None]
    """When retention removed the bodies (``app.retention``); the headers are kept."""

    __table_args__ = (
        CheckConstraint("language IN ('sv', 'en')", name="language_supported"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("sent_dt IS NULL OR attempts > 0", name="sent_after_an_attempt"),
        Index("ix_email_message_unsent", "sent_dt", "created_dt"),
    )
