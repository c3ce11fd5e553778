"""The PDFs of a submission: the printable form, the receipt and the decision letter."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.core.i18n import translations
from app.documents.pki import seal_material
from app.documents.render import (
    CodeLine,
    Decision,
    DocumentData,
    render_decision_letter,
    render_form_pdf,
    render_receipt,
)
from app.eid.bankid import bankid_trust_roots
from app.registrations.models import (
    REJECTION_REASON_NAMES,
    DocumentKind,
    RejectionReason,
    Submission,
)
from app.registrations.service import attach_document, document
from app.registrations.signing import SealContext
from workflows.states import SubmissionState


def document_data(submission: Submission) -> DocumentData:
    codes = submission.employer.codes if submission.employer else []
    return DocumentData(
        kind=submission.kind,
        reference=submission.reference,
        submission_id=submission.id,
        form=submission.data,
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


def issue_decision_letter(session: Session, submission: Submission) -> bool:
    """Attach the decision letter once; False when the errand already has one."""
    if document(submission, DocumentKind.DECISION) is not None:
        return False
    assert submission.decided_dt is not None and submission.decided_by is not None
    lang = submission.language
    gettext = translations(lang).gettext
    code = submission.decision_code
    decision = Decision(
        approved=submission.state is not SubmissionState.REJECTED,
        decided_dt=submission.decided_dt,
        caseworker=submission.decided_by.name,
        reason=gettext(REJECTION_REASON_NAMES[RejectionReason(code)]) if code else "",
        explanation=submission.decision_text or "",
    )
    pdf = render_decision_letter(document_data(submission), decision, lang=lang)
    attach_document(
        session, submission, DocumentKind.DECISION, pdf, f"beslut-{submission.reference}.pdf"
    )
    return True
