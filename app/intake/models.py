"""Scanned paper: batches as uploaded or dropped in the scanner folder, their pages, and the
paper forms the pages make up once matched to an errand."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, str_enum, utcnow
from app.registrations.models import Errand, ErrandDocument
from app.staff.models import StaffMember


class BatchSource(enum.StrEnum):
    UPLOAD = "upload"
    """A clerk uploaded it on /skanning."""
    FOLDER = "folder"
    """A scanner dropped it in the watched folder (``behorighet intake watch DIR``)."""


class BatchState(enum.StrEnum):
    QUEUED = "queued"
    READING = "reading"
    DONE = "done"
    REJECTED = "rejected"
    """The file is not a scan we can read (``error_code`` says why); nothing else changed."""


class ScanBatch(Base):
    """One scanned file: a multi-page PDF or TIFF, or a PNG or JPEG page."""

    __tablename__ = "scan_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    """The same file uploaded twice is the same batch."""
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int]
    source: Mapped[BatchSource] = mapped_column(str_enum(BatchSource, "batch_source"))
    uploaded_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    state: Mapped[BatchState] = mapped_column(
        str_enum(BatchState, "batch_state"), default=BatchState.QUEUED
    )
    page_count: Mapped[int] = mapped_column(default=0)
    pages_read: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[str | None] = mapped_column(String(32))
    reader_until_dt: Mapped[datetime | None]
    """Lease of the worker reading the batch: nobody else reads it until then."""
    read_attempts: Mapped[int] = mapped_column(default=0)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    finished_dt: Mapped[datetime | None]
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """The file as received, kept: the scan of record (empty once retention removed it)."""
    content_removed_dt: Mapped[datetime | None]
    """When retention removed the original file (``app.retention``)."""

    uploaded_by: Mapped[StaffMember | None] = relationship()
    pages: Mapped[list[ScanPage]] = relationship(
        back_populates="batch", order_by="ScanPage.page_index"
    )

    __table_args__ = (
        CheckConstraint("pages_read <= page_count", name="pages_read_within_count"),
        CheckConstraint(
            "(state = 'rejected') = (error_code IS NOT NULL)", name="rejected_has_error"
        ),
    )


class PageOutcome(enum.StrEnum):
    """What reading a page's code found."""

    MATCHED = "matched"
    """The code is ours, its MAC holds, and it names an errand waiting for this form."""
    NO_QR_CODE = "no_qr_code"
    MALFORMED = "malformed"
    MAC_MISMATCH = "mac_mismatch"
    """The code is ours in form, but its MAC fails: possibly altered."""
    BLANK_FORM = "blank_form"
    """A blank form filled in by hand: a clerk types it in."""
    UNKNOWN_ERRAND = "unknown_errand"
    """The code is valid but names no errand that waits for paper."""
    DIGEST_MISMATCH = "digest_mismatch"
    """The page was printed from other form data than the errand now holds."""
    DUPLICATE = "duplicate"
    """Another copy of a page SPV already has."""
    BLANK_SHEET = "blank_sheet"
    """Nothing on it (the back of a page, a separator sheet): set aside automatically."""
    PAPER_LOCKED = "paper_locked"
    """The code names an errand of an employer locked against posted forms: the errand is
    stopped and the page set aside (``app.safeguards``)."""
    TIMED_OUT = "timed_out"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"


class PageStatus(enum.StrEnum):
    WAITING = "waiting"
    """Matched; waiting for the form's other pages."""
    NEEDS_CLERK = "needs_clerk"
    """In the manual queue."""
    FILED = "filed"
    """Part of a paper form."""
    DISCARDED = "discarded"
    """Set aside by a clerk (a blank sheet, a copy), with the reason in the audit log."""


class ScanPage(Base):
    __tablename__ = "scan_page"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("scan_batch.id"), index=True)
    page_index: Mapped[int]
    """0-based within the batch's file."""
    outcome: Mapped[PageOutcome] = mapped_column(str_enum(PageOutcome, "page_outcome"))
    status: Mapped[PageStatus] = mapped_column(str_enum(PageStatus, "page_status"), index=True)
    errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), index=True)
    form_page: Mapped[int | None]
    """n of "page n of m", from the code or as the clerk said."""
    form_pages: Mapped[int | None]
    form_kind: Mapped[str | None] = mapped_column(String(3))
    """``REG`` or ``REM`` from the code."""
    upside_down: Mapped[bool] = mapped_column(default=False)
    matched_by_clerk: Mapped[bool] = mapped_column(default=False)
    paper_form_id: Mapped[int | None] = mapped_column(ForeignKey("paper_form.id"), index=True)
    preview: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """The page as a JPEG, for the clerk to look at and for the archive."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    resolved_dt: Mapped[datetime | None]
    set_aside_reason: Mapped[str | None] = mapped_column(String(300))
    """Why the page was set aside (by a clerk, or automatically); the audit log keeps all."""

    batch: Mapped[ScanBatch] = relationship(back_populates="pages")
    errand: Mapped[Errand | None] = relationship()
    paper_form: Mapped[PaperForm | None] = relationship(back_populates="pages")

    __table_args__ = (
        UniqueConstraint("batch_id", "page_index"),
        CheckConstraint(
            "status <> 'filed' OR (paper_form_id IS NOT NULL AND errand_id IS NOT NULL)",
            name="filed_has_form",
        ),
        CheckConstraint(
            "status <> 'waiting' OR (errand_id IS NOT NULL AND form_page IS NOT NULL "
            "AND form_pages IS NOT NULL)",
            name="waiting_has_place",
        ),
    )


class PaperFormState(enum.StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    """Every page is here; a clerk checks the handwritten signature."""
    CONFIRMED = "confirmed"
    """Checked by a clerk; the errand is received."""
    TAKEN_APART = "taken_apart"
    """A clerk found the pages did not belong together; they went back to the queue."""


class PaperForm(Base):
    """The scanned pages of one errand's printed form, all of them, in page order."""

    __tablename__ = "paper_form"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    state: Mapped[PaperFormState] = mapped_column(
        str_enum(PaperFormState, "paper_form_state"), default=PaperFormState.AWAITING_CONFIRMATION
    )
    signature_present: Mapped[bool | None]
    """The clerk saw a handwritten signature."""
    signer_is_named: Mapped[bool | None]
    """The clerk found the signature to be the signatory's that the form names."""
    co_signature_present: Mapped[bool | None]
    """Where two sign jointly: the clerk found the second signatory's signature too (None
    on a form one signatory signs)."""
    clerk_note: Mapped[str | None] = mapped_column(Text)
    confirmed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    confirmed_dt: Mapped[datetime | None]
    document_id: Mapped[int | None] = mapped_column(ForeignKey("errand_document.id"))
    """The archival PDF/A of the pages, filed with the errand's documents."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    errand: Mapped[Errand] = relationship()
    document: Mapped[ErrandDocument | None] = relationship()
    confirmed_by: Mapped[StaffMember | None] = relationship()
    pages: Mapped[list[ScanPage]] = relationship(
        back_populates="paper_form", order_by="ScanPage.form_page"
    )

    __table_args__ = (
        CheckConstraint(
            "state <> 'confirmed' OR (confirmed_by_staff_id IS NOT NULL AND confirmed_dt IS NOT "
            "NULL AND signature_present IS NOT NULL AND signer_is_named IS NOT NULL "
            "AND document_id IS NOT NULL)",
            name="confirmed_is_complete",
        ),
    )
