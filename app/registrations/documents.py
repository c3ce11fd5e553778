"""The PDFs of an errand: the printable form, the receipt and the decision letter."""

from __future__ import annotations

import hashlib

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.i18n import translations
from app.documents import render
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
    BlankForm,
    DocumentKind,
    Errand,
    ErrandKind,
    RejectionReason,
)
from app.registrations.service import attach_document, document
from app.registrations.signing import SealContext
from workflows.states import ErrandState


def document_data(errand: Errand) -> DocumentData:
    codes = errand.employer.codes if errand.employer else []
    return DocumentData(
        kind=errand.kind,
        reference=errand.reference,
        errand_id=errand.id,
        form=errand.data,
        employer_codes=[CodeLine(c.code, c.name, c.status.value == "closed") for c in codes],
        created_dt=errand.created_dt,
        channel=errand.channel,
    )


def printable_form(errand: Errand, settings: Settings, language: str) -> bytes:
    return render_form_pdf(
        document_data(errand), lang=language, key=settings.qr_key, for_print=True
    )


def signable_form(errand: Errand, settings: Settings) -> bytes:
    """The exact PDF the signatory signs with BankID (no signature lines)."""
    return render_form_pdf(
        document_data(errand), lang=errand.language, key=settings.qr_key, for_print=False
    )


def blank_form(session: Session, kind: ErrandKind, language: str, key: bytes) -> bytes:
    """The printable blank form: rendered once per language, template version and QR key,
    then served from the database (a new template version or key renders it anew)."""
    version = render.TEMPLATE_VERSION
    key_id = hashlib.sha256(key).hexdigest()[:16]
    stored = session.get(BlankForm, (kind, language, version, key_id))
    if stored is not None:
        return stored.content
    pdf = render.render_blank_form(kind, lang=language, key=key)
    form = BlankForm(
        kind=kind, language=language, template_version=version, key_id=key_id, content=pdf
    )
    try:
        with session.begin_nested():
            session.add(form)
    except IntegrityError:  # another process stored the same one meanwhile: the same form
        pass
    return pdf


def seal_context(settings: Settings) -> SealContext:
    """What finishing a BankID signature needs; loaded once per process."""
    return SealContext(trust_roots=bankid_trust_roots(settings), material=seal_material(settings))


def receipt_pdf(errand: Errand) -> bytes:
    """The receipt of a received errand, rendered (not attached)."""
    assert errand.received_dt is not None
    return render_receipt(
        document_data(errand), lang=errand.language, received_dt=errand.received_dt
    )


def has_receipt(errand: Errand) -> bool:
    return document(errand, DocumentKind.RECEIPT) is not None


def issue_receipt(session: Session, errand: Errand, pdf: bytes | None = None) -> bool:
    """Attach the receipt (``pdf``, else rendered now) once; False when the errand already
    has one."""
    if has_receipt(errand):
        return False
    pdf = pdf if pdf is not None else receipt_pdf(errand)
    attach_document(session, errand, DocumentKind.RECEIPT, pdf, f"kvittens-{errand.reference}.pdf")
    return True


def issue_decision_letter(session: Session, errand: Errand) -> bool:
    """Attach the decision letter once; False when the errand already has one."""
    if document(errand, DocumentKind.DECISION) is not None:
        return False
    assert errand.decided_dt is not None and errand.decided_by is not None
    lang = errand.language
    gettext = translations(lang).gettext
    code = errand.decision_code
    decision = Decision(
        approved=errand.state is not ErrandState.REJECTED,
        decided_dt=errand.decided_dt,
        caseworker=errand.decided_by.name,
        reason=gettext(REJECTION_REASON_NAMES[RejectionReason(code)]) if code else "",
        explanation=errand.decision_text or "",
    )
    pdf = render_decision_letter(document_data(errand), decision, lang=lang)
    attach_document(session, errand, DocumentKind.DECISION, pdf, f"beslut-{errand.reference}.pdf")
    return True
