"""The staff's access log and the register extracts asked for."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, str_enum, utcnow
from app.staff.models import StaffMember


class ViewKind(enum.StrEnum):
    """What a staff member looked at (``StaffAccessLog.what``)."""

    ERRAND = "errand"
    """The caseworker's errand page: the form's people with their personnummer."""
    ERRAND_DOCUMENT = "errand_document"
    """One of an errand's documents (the form as signed or scanned, a letter)."""
    EMPLOYER_LOOKUP = "employer_lookup"
    """An employer's orderers and administrators, by name, role and email."""
    PAPER_FORM = "paper_form"
    """The intake clerk's check of a posted form's pages and typed-in people."""
    ACCESS_LOG = "access_log"
    """Who has looked at a person's data (this log and the API's)."""
    ACCESS_LOG_CSV = "access_log_csv"
    """The same, exported as CSV."""
    REGISTER_EXTRACT = "register_extract"
    """A register extract made of everything held about the person."""
    REGISTER_EXTRACT_DOCUMENT = "register_extract_document"
    """A register extract opened or downloaded (PDF or JSON)."""
    SCANNED_PAGES = "scanned_pages"
    """The intake clerk's manual queue: the scans of pages matched to an errand (the
    people the errand names; a page matched to none names nobody known yet)."""
    PAPER_FORM_TYPING = "paper_form_typing"
    """The intake clerk typing in a form filled in by hand: the people typed in."""


class StaffAccessLog(Base):
    """One staff member's view of one person's data: who, whose (a keyed hash of the
    personnummer, the same as the API's log keeps: ``app.api.clients.subject_hash``),
    what, when, and why when the page asked. Append-only: the application's database role
    may only insert and read it (``app.audit.db_role``); rows older than the retention
    period go through ``app.privacy.access_log.delete_before``."""

    __tablename__ = "staff_access_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    subject_hash: Mapped[str] = mapped_column(String(64))
    what: Mapped[ViewKind] = mapped_column(str_enum(ViewKind, "view_kind"))
    object_ref: Mapped[str] = mapped_column(String(64), default="")
    """Which object: an errand's reference, an employer's id, an extract's reference."""
    reason: Mapped[str | None] = mapped_column(String(200))
    """Why, in the staff member's words, where the page asks."""
    viewed_dt: Mapped[datetime] = mapped_column(default=utcnow)

    staff: Mapped[StaffMember] = relationship()

    __table_args__ = (
        Index("ix_staff_access_log_subject", "subject_hash", "viewed_dt"),
        Index("ix_staff_access_log_viewed", "viewed_dt"),
    )


class RegisterExtract(Base):
    """A person's request for everything SPV holds about them (GDPR art. 15), made by a
    caseworker: its PDF (sealed) and JSON are kept with the errand archive's documents
    (``ErrandDocument.register_extract_id``) until delivered and after."""

    __tablename__ = "register_extract"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    """``RU-XXXX-XXXX``."""
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    """Whose data: the keyed hash of the personnummer (never the number here)."""
    language: Mapped[str] = mapped_column(String(2), default="sv")
    request_note: Mapped[str] = mapped_column(String(200))
    """How and when the person asked (a letter of 1 December, the registry's number)."""
    made_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    made_dt: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_dt: Mapped[datetime | None]
    delivered_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    delivery_note: Mapped[str | None] = mapped_column(Text)
    """How it reached the person (by post to the registered address, say)."""

    made_by: Mapped[StaffMember] = relationship(foreign_keys=[made_by_staff_id])
    delivered_by: Mapped[StaffMember | None] = relationship(foreign_keys=[delivered_by_staff_id])

    __table_args__ = (
        CheckConstraint("language IN ('sv', 'en')", name="language_supported"),
        CheckConstraint(
            "(delivered_dt IS NULL) = (delivered_by_staff_id IS NULL)",
            name="delivered_by_someone",
        ),
    )
