"""Errands (errands): registrations and removals of orderers, and their documents."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from app.access.models import Employer, Person
from app.db import Base, str_enum, utcnow
from app.registrations.data import (
    FormData,
    FormProgress,
    InvalidFormData,
    RegistrationDraft,
    RemovalDraft,
)
from app.staff.models import StaffMember
from workflows.states import DECIDED_STATES, RECEIVED_STATES, ErrandState

# Crockford-style alphabet: no I, L, O, U, easy to read back over the phone.
_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    return reference_with_prefix("BB")


def reference_with_prefix(prefix: str) -> str:
    """``BB-XXXX-XXXX`` for an errand (another ``prefix`` for another kind of case)."""
    body = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
    return f"{prefix}-{body[:4]}-{body[4:]}"


class ErrandKind(enum.StrEnum):
    REGISTRATION = "registration"
    REMOVAL = "removal"
    SIGNATORY_CHANGE = "signatory_change"
    """Opened by SPV itself, not submitted: the signatory who signed an orderer's
    registration is no longer a signatory (``app.registers.changes``). Its form is a copy
    of that registration's; a caseworker reviews the orderer's role."""


class Channel(enum.StrEnum):
    E_SIGN = "e_sign"
    PAPER = "paper"


FORM_KINDS = (ErrandKind.REGISTRATION, ErrandKind.REMOVAL)
"""The kinds that are forms (printed blank, signed, posted); SPV opens the others itself."""

CASEWORK_OPEN_STATES = (
    ErrandState.IN_REVIEW,
    ErrandState.AWAITING_COMPLETION,
    ErrandState.SUSPECTED_FRAUD,
)
"""The states of an errand a caseworker holds open (``casework.OPEN_STATES``)."""
MINE_OPEN = "state IN ({})".format(", ".join(f"'{state.value}'" for state in CASEWORK_OPEN_STATES))
"""Those states as the partial indexes of a caseworker's own list name them."""

BLANK_DRAFTS: dict[ErrandKind, FormProgress] = {
    ErrandKind.REGISTRATION: RegistrationDraft(),
    ErrandKind.REMOVAL: RemovalDraft(),
    ErrandKind.SIGNATORY_CHANGE: RegistrationDraft(),
}
"""A new draft of each kind of form, no step done (also the blank printed form)."""


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is used."""
    return message


class RejectionReason(enum.StrEnum):
    """Why SPV rejected an errand (``Errand.decision_code``)."""

    SIGNATORY_NOT_ENTITLED = "signatory_not_entitled"
    SIGNATURE_MISSING = "signature_missing"
    NOT_AN_ORDERER = "not_an_orderer"
    DUPLICATE = "duplicate"
    INCOMPLETE = "incomplete"
    SUSPECTED_FRAUD = "suspected_fraud"
    """The employer stopped the posted registration in its waiting period."""
    OTHER = "other"


REJECTION_REASON_NAMES = {
    RejectionReason.SIGNATORY_NOT_ENTITLED: N_("Den som skrivit under får inte teckna firma"),
    RejectionReason.SIGNATURE_MISSING: N_("Underskrift saknas"),
    RejectionReason.NOT_AN_ORDERER: N_("Personen är inte behörig beställare"),
    RejectionReason.DUPLICATE: N_("Ärendet är redan hanterat i ett annat ärende"),
    RejectionReason.INCOMPLETE: N_("Uppgifter saknas och kompletteringen kom inte in"),
    RejectionReason.SUSPECTED_FRAUD: N_("Arbetsgivaren känner inte till anmälan"),
    RejectionReason.OTHER: N_("Annat skäl"),
}


def _in(states: frozenset[ErrandState]) -> str:
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


class Errand(Base):
    __tablename__ = "errand"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True, default=new_reference)
    kind: Mapped[ErrandKind] = mapped_column(str_enum(ErrandKind, "errand_kind"))
    channel: Mapped[Channel | None] = mapped_column(str_enum(Channel, "channel"))
    state: Mapped[ErrandState] = mapped_column(
        str_enum(ErrandState, "errand_state"), default=ErrandState.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)
    form_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The form as stored JSON; read and write it only through ``progress`` and ``data``."""
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("employer.id"), index=True)
    subject_personnummer: Mapped[str | None] = mapped_column(String(12), index=True)
    """The person registered or removed."""
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    assigned_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    decided_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    received_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    """The intake clerk who took the posted paper in (four eyes: they do not decide it)."""
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    updated_dt: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    received_dt: Mapped[datetime | None]
    decided_dt: Mapped[datetime | None]
    due_dt: Mapped[datetime | None]
    """When SPV should have decided (set when received, paused while awaiting completion)."""
    claimed_dt: Mapped[datetime | None]
    first_approved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    """The first of the two approvals that removing an employer's last orderer needs."""
    first_signature_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("eid_order.id", use_alter=True)
    )
    """Joint signatories: the sign order of the first of the two signatures, while the
    second is awaited (``app.registrations.joint``); cleared when the round ends."""
    decision_code: Mapped[str | None] = mapped_column(String(32))
    """Why an errand was rejected (``RejectionReason``)."""
    decision_text: Mapped[str | None] = mapped_column(Text)
    ended_dt: Mapped[datetime | None]
    """When it reached its final state (closed, rejected, withdrawn or expired): retention
    counts from here (``app.retention``)."""
    expires_dt: Mapped[datetime | None]
    """When a draft or an errand waiting for the submitter lapses (``EXPIRES_AFTER``)."""
    language: Mapped[str] = mapped_column(String(2), default="sv")
    """The submitter's language, for letters and receipts."""
    failed_step: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    retrying_step: Mapped[str | None] = mapped_column(String(32))
    """A pipeline step that failed and is being tried again (cleared when it succeeds);
    the errand shows it at once, not only when its retries run out (``failed``)."""
    step_attempt: Mapped[int | None]
    """Which attempt of ``retrying_step`` failed last (1 is the first)."""
    step_max_attempts: Mapped[int | None]
    """How many attempts the step gets before the errand goes to ``failed``."""
    step_error: Mapped[str | None] = mapped_column(Text)
    step_error_dt: Mapped[datetime | None]
    paused_dt: Mapped[datetime | None]
    """Since when the due date stands still (waiting for the submitter's completion)."""
    reminded_dt: Mapped[datetime | None]
    """When the caseworker was reminded that the due date is near (``DUE_REMINDER_BEFORE``)."""
    escalated_dt: Mapped[datetime | None]
    """When the overdue errand was escalated to the team leads."""
    takes_effect_dt: Mapped[datetime | None]
    """When an approved posted registration takes effect (``awaiting_effect``): the end of
    the paper waiting period, set by the step that starts it (``app.safeguards``)."""

    employer: Mapped[Employer | None] = relationship()
    submitted_by: Mapped[Person] = relationship()
    assigned_staff: Mapped[StaffMember | None] = relationship(foreign_keys=[assigned_staff_id])
    decided_by: Mapped[StaffMember | None] = relationship(foreign_keys=[decided_by_staff_id])
    documents: Mapped[list[ErrandDocument]] = relationship(
        back_populates="errand", order_by="ErrandDocument.id"
    )
    checks: Mapped[list[VerificationCheck]] = relationship(
        back_populates="errand", order_by="VerificationCheck.id"
    )
    completion_requests: Mapped[list[CompletionRequest]] = relationship(
        back_populates="errand", order_by="CompletionRequest.id"
    )
    checks_made: Mapped[int | None] = query_expression()
    """In the caseworker's lists (``casework.queue``): how many checks were made (the list
    counts them instead of loading every check of every row); None elsewhere."""
    checks_to_review: Mapped[int | None] = query_expression()
    """In the caseworker's lists: how many checks did not pass; None elsewhere."""

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            f"state NOT IN {_in(RECEIVED_STATES)} OR "
            "(received_dt IS NOT NULL AND channel IS NOT NULL AND employer_id IS NOT NULL)",
            name="received_has_channel_and_employer",
        ),
        CheckConstraint(
            f"state NOT IN {_in(DECIDED_STATES)} OR "
            "(decided_dt IS NOT NULL AND decided_by_staff_id IS NOT NULL)",
            name="decided_has_decider",
        ),
        CheckConstraint(
            "state <> 'failed' OR (failed_step IS NOT NULL AND failure_reason IS NOT NULL)",
            name="failed_has_step_and_reason",
        ),
        # The lists' orders, each ending in the id (their keyset tiebreak): migration 0020.
        Index("ix_errand_state_received", "state", "received_dt", "id"),
        Index("ix_errand_state_expires", "state", "expires_dt"),
        Index("ix_errand_state_ended", "state", "ended_dt"),
        Index("ix_errand_state_due", "state", "due_dt", "id"),
        Index(
            "ix_errand_unassigned_due",
            "state",
            "due_dt",
            "id",
            postgresql_where=text("assigned_staff_id IS NULL"),
            sqlite_where=text("assigned_staff_id IS NULL"),
        ),
        Index(
            "ix_errand_unassigned_received",
            "state",
            "received_dt",
            "id",
            postgresql_where=text("assigned_staff_id IS NULL"),
            sqlite_where=text("assigned_staff_id IS NULL"),
        ),
        # A caseworker's own open errands (``CASEWORK_OPEN_STATES``): migration 0033.
        Index(
            "ix_errand_mine_due",
            "assigned_staff_id",
            "due_dt",
            "id",
            postgresql_where=text(MINE_OPEN),
            sqlite_where=text(MINE_OPEN),
        ),
        Index(
            "ix_errand_mine_received",
            "assigned_staff_id",
            "received_dt",
            "id",
            postgresql_where=text(MINE_OPEN),
            sqlite_where=text(MINE_OPEN),
        ),
        Index("ix_errand_employer_state", "employer_id", "state"),
        Index("ix_errand_submitter_created", "submitted_by_id", "created_dt", "id"),
        Index("ix_errand_assigned_state", "assigned_staff_id", "state"),
        Index("ix_errand_retrying_step", "retrying_step"),
    )

    @property
    def progress(self) -> FormProgress:
        """The form as far as it is filled in: the steps done and their values."""
        return BLANK_DRAFTS[self.kind].from_json(self.form_data or {})

    @progress.setter
    def progress(self, draft: FormProgress) -> None:
        self.form_data = draft.to_json()

    @property
    def subject_name(self) -> str:
        """The name of the person the errand concerns, as the form gives it ("" if none yet
        or the stored form cannot be read)."""
        try:
            subject = BLANK_DRAFTS[self.kind].subject_from_json(self.form_data or {})
        except InvalidFormData:
            return ""
        return subject.full_name if subject is not None else ""

    @property
    def has_new_completion_answer(self) -> bool:
        """The submitter answered a completion request and the errand is back for review."""
        answered = [r for r in self.completion_requests if r.answered_dt is not None]
        return (
            self.state is ErrandState.IN_REVIEW
            and bool(answered)
            and answered[-1] is self.completion_requests[-1]
        )

    @property
    def approved_by_two(self) -> bool:
        """Two caseworkers approved it: the explicit decision rule 8 asks for before a
        removal leaves the employer without an orderer."""
        return self.first_approved_by_staff_id is not None

    @property
    def data(self) -> FormData:
        """The complete form (``IncompleteForm`` while a draft still misses a step)."""
        return self.progress.complete()


class ErrandComment(Base):
    """A caseworker's internal note on an errand (never shown to the submitter)."""

    __tablename__ = "errand_comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    body: Mapped[str] = mapped_column(Text)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)

    staff: Mapped[StaffMember] = relationship()


class CompletionRequest(Base):
    """A caseworker's request for more information (komplettering) and the submitter's answer."""

    __tablename__ = "completion_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    requested_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    message: Mapped[str] = mapped_column(Text)
    """What SPV needs; shown to the submitter and sent by email."""
    requested_dt: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_dt: Mapped[datetime | None]

    errand: Mapped[Errand] = relationship(back_populates="completion_requests")
    requested_by: Mapped[StaffMember] = relationship()

    __table_args__ = (
        CheckConstraint("(answer IS NULL) = (answered_dt IS NULL)", name="answer_has_time"),
    )

    @property
    def is_open(self) -> bool:
        return self.answered_dt is None


class DocumentKind(enum.StrEnum):
    PRINTED = "printed"
    SIGNED = "signed"
    SCAN = "scan"
    RECEIPT = "receipt"
    DECISION = "decision"
    EVIDENCE = "evidence"
    REGISTER_EXTRACT = "register_extract"
    """A register extract (GDPR art. 15): the sealed PDF or its JSON, of a
    ``RegisterExtract`` rather than an errand."""


UNCHECKED_PDF = "archive_level IS NULL AND media_type = 'application/pdf'"
"""A stored PDF the archive has not checked yet (``app.registrations.archive``)."""


class ErrandDocument(Base):
    """A document of the archive: an errand's, or a register extract's."""

    __tablename__ = "errand_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int | None] = mapped_column(ForeignKey("errand.id"), index=True)
    register_extract_id: Mapped[int | None] = mapped_column(
        ForeignKey("register_extract.id"), index=True
    )
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, "document_kind"))
    media_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    archive_level: Mapped[str | None] = mapped_column(String(8))
    """A PDF's seal as the archive's scheduled check last found it (``app.registrations.
    archive``): a PAdES level (``B-B`` … ``B-LTA``), ``unsealed`` or ``rejected``; ``None``
    until checked (and for files that are not PDFs)."""
    timestamp_expires_dt: Mapped[datetime | None]
    """When the certificate of the TSA of the PDF's newest timestamp ends (its newest
    document timestamp's, else its seal's signature timestamp's): the archive re-timestamps
    the document before then."""
    archive_checked_dt: Mapped[datetime | None]
    """When the archive last checked the PDF (or re-timestamped it)."""

    errand: Mapped[Errand | None] = relationship(back_populates="documents")

    __table_args__ = (
        CheckConstraint(
            "(errand_id IS NULL) <> (register_extract_id IS NULL)", name="of_errand_or_extract"
        ),
        # The archive's scheduled work: PDFs not checked yet, and the next to re-timestamp.
        Index(
            "ix_errand_document_unchecked",
            "id",
            postgresql_where=text(UNCHECKED_PDF),
            sqlite_where=text(UNCHECKED_PDF),
        ),
        Index("ix_errand_document_timestamp_expires", "timestamp_expires_dt"),
    )


class CheckOutcome(enum.StrEnum):
    PASSED = "passed"
    FLAGGED = "flagged"
    """Needs a caseworker's attention; does not stop the errand by itself."""
    FAILED = "failed"


class VerificationCheck(Base):
    """One automated check of an errand, shown to the caseworker."""

    __tablename__ = "verification_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[CheckOutcome] = mapped_column(str_enum(CheckOutcome, "check_outcome"))
    findings: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Codes of what the check found; ``app.labels`` names them."""
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_dt: Mapped[datetime] = mapped_column(default=utcnow)

    errand: Mapped[Errand] = relationship(back_populates="checks")

    __table_args__ = (
        # The queue's "Något att granska" filter: the few checks that are not passed.
        Index(
            "ix_verification_check_attention",
            "errand_id",
            postgresql_where=text("outcome <> 'passed'"),
            sqlite_where=text("outcome <> 'passed'"),
        ),
    )


class InvitationKind(enum.StrEnum):
    """Why a link to sign was emailed to the signatory."""

    INVITATION = "invitation"
    REMINDER = "reminder"
    """The submitter reminded the signatory (at most once a day)."""
    EXPIRY_REMINDER = "expiry_reminder"
    """The scheduled reminder shortly before the invitation expires (once)."""


class InvitationOutcome(enum.StrEnum):
    """How an invitation ended."""

    SIGNED = "signed"
    DECLINED = "declined"
    RECALLED = "recalled"
    PRINTED = "printed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class SigningInvitation(Base):
    """A link emailed to the signatory named in the form, to sign the errand later in their
    own session (``Action.SEND_TO_SIGNATORY``). Each email (the invitation and each reminder)
    has its own link; all links of an errand's round end together.

    The link's token is high-entropy and single-purpose (opening this errand for its
    signatory); only its SHA-256 is stored. The token alone opens nothing: the signatory
    must log in with e-ID as the person the form names."""

    __tablename__ = "signing_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    errand_id: Mapped[int] = mapped_column(ForeignKey("errand.id"), index=True)
    kind: Mapped[InvitationKind] = mapped_column(str_enum(InvitationKind, "invitation_kind"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    signatory_personnummer: Mapped[str] = mapped_column(String(12))
    email: Mapped[str] = mapped_column(String(254))
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    expires_dt: Mapped[datetime]
    """When the invitation lapses: the draft's expiry, carried over."""
    sent_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    """Who sent it (None for the scheduled reminder)."""
    ended_dt: Mapped[datetime | None]
    outcome: Mapped[InvitationOutcome | None] = mapped_column(
        str_enum(InvitationOutcome, "invitation_outcome")
    )
    decline_reason: Mapped[str | None] = mapped_column(Text)

    errand: Mapped[Errand] = relationship()

    __table_args__ = (
        CheckConstraint("(ended_dt IS NULL) = (outcome IS NULL)", name="ended_has_outcome"),
        CheckConstraint(
            "outcome <> 'declined' OR decline_reason IS NOT NULL", name="declined_has_reason"
        ),
        Index("ix_signing_invitation_errand_open", "errand_id", "ended_dt"),
    )

    @property
    def is_open(self) -> bool:
        return self.ended_dt is None


class BlankForm(Base):
    """A printable blank form as rendered once (``app.registrations.documents.blank_form``):
    served from here until the template's version or the QR key changes."""

    __tablename__ = "blank_form"

    kind: Mapped[ErrandKind] = mapped_column(str_enum(ErrandKind, "errand_kind"), primary_key=True)
    language: Mapped[str] = mapped_column(String(2), primary_key=True)
    template_version: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    """Names the QR key its codes are keyed with (a digest of it, never the key)."""
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
