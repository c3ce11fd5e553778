"""The PDFs of a submission: the printable form and the receipt (rendered by app.documents)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.documents.pki import seal_material
from app.documents.render import CodeLine, DocumentData, render_form_pdf, render_receipt
from app.eid.bankid import bankid_trust_roots
from app.registrations.models import DocumentKind, Submission
from app.registrations.service import attach_document, document
from app.registrations.signing import SealContext


def document_data(submission: Submission) -> DocumentData:
    codes = submission.employer.codes if submission.employer else []
    return DocumentData(
        kind=submission.kind,
        reference=submission.reference,
        submission_id=submission.id,
        form_data={k: v for k, v in submission.form_data.items() if k != "completed_steps"},
        employer_codes=[CodeLine(c.code, c.name, c.status.value == "closed") for c in codes],
        created_dt=submission.created_dt,
        channel=submission.channel,
    )


def printable_form(submission: Submission, settings: Settings, language: str) -> bytes:
    return render_form_pdf(
        document_data(submission), lang=language, key=settings.qr_key, for_print=True
    )


def signable_form(submission: Submission, settings: Settings) -> bytes:
    """The exact PDF the signatory signs with BankID (no signature lines)."""
    return render_form_pdf(
        document_data(submission), lang=submission.language, key=settings.qr_key, for_print=False
    )


def seal_context(settings: Settings) -> SealContext:
    """What finishing a BankID signature needs; loaded once per process."""
    return SealContext(trust_roots=bankid_trust_roots(settings), material=seal_material(settings))


def issue_receipt(session: Session, submission: Submission) -> bool:
    """Attach the receipt once; False when the submission already has one."""
    if document(submission, DocumentKind.RECEIPT) is not None:
        return False
    assert submission.received_dt is not None
    pdf = render_receipt(
        document_data(submission), lang=submission.language, received_dt=submission.received_dt
    )
    attach_document(
        session, submission, DocumentKind.RECEIPT, pdf, f"kvittens-{submission.reference}.pdf"
    )
    return True
