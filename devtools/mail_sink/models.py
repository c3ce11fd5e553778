"""What the mail sink received: one row a message."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from devtools.db import DevtoolsBase


class SinkMessage(DevtoolsBase):
    """A message the demo's SMTP sink received (the demo's stand-in for a mailbox)."""

    __tablename__ = "sink_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_dt: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    """The envelope sender."""
    recipients: Mapped[str] = mapped_column(Text)
    """The envelope recipients, comma-separated."""
    to_header: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text, default="")
    """The plain-text part, decoded."""
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
