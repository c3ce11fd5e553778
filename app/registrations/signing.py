"""Electronic signing of an errand with BankID, then the agency's seal.

The sign order shows a readable summary, carries the SHA-256 of the exact PDF, and
only the signatory named in the form can complete it. On completion the BankID
signature is checked to cover that hash and to be the signatory's, and the PDF is
sealed (PAdES B-LTA) with the BankID evidence embedded and an evidence page added
(:mod:`app.registrations.evidence`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy.orm import Session

from app.access.models import Role
from app.core.agents import Agent
from app.core.ids import format_orgnr, format_personnummer
from app.db import utcnow
from app.documents.pki import SealMaterial
from app.documents.seal import Evidence, seal_pdf
from app.eid import service as eid
from app.eid.evidence import (
    SIGNATURE_EVIDENCE_NAME,
    CertificateStatus,
    InvalidBankIdSignature,
    InvalidOcspResponse,
    check_ocsp_response,
    verify_bankid_signature,
)
from app.eid.models import EidOrder, OrderStatus
from app.registrations.codes import ProblemCode
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.evidence import BankIdSigning, esign_evidence
from app.registrations.models import (
    Channel,
    DocumentKind,
    Errand,
    ErrandKind,
    InvitationOutcome,
)
from app.registrations.service import (
    _require_complete,
    attach_document,
    back_to_signable,
    end_invitations,
)
from workflows.state_machine import transition
from workflows.states import Action, ErrandState

TEXTS = {
    "sv": {
        ErrandKind.REGISTRATION: "Anmälan – behörig beställare",
        ErrandKind.REMOVAL: "Ta bort behörig beställare",
        "employer": "Arbetsgivare",
        "person": "Person",
        "action": "Åtgärd",
        "register": "registreras som behörig beställare",
        "register_delegated": "registreras som delegerad behörig beställare",
        "remove": "tas bort som behörig beställare",
        "replacement": "Ny behörig beställare",
        "reference": "Referens",
        "ends_on": "Rollen upphör den",
        "consent": "Jag intygar att uppgifterna stämmer och skriver under för arbetsgivaren.",
    },
    "en": {
        ErrandKind.REGISTRATION: "Registration – authorised orderer",
        ErrandKind.REMOVAL: "Remove authorised orderer",
        "employer": "Employer",
        "person": "Person",
        "action": "Action",
        "register": "registered as authorised orderer",
        "register_delegated": "registered as delegated authorised orderer",
        "remove": "removed as authorised orderer",
        "replacement": "New authorised orderer",
        "reference": "Reference",
        "ends_on": "The role ends on",
        "consent": "I confirm that the details are correct and sign for the employer.",
    },
}


_MARKDOWN = re.compile(r"([\\*+#|])")
"""The characters simpleMarkdownV1 gives a meaning (emphasis, headings, tables, escape)."""


def _plain(value: str) -> str:
    """A value typed by someone, as one line of plain text in simpleMarkdownV1: line breaks
    and runs of spaces folded (so it never starts a line: no heading or list), and every
    character Markdown gives a meaning escaped, so no name adds emphasis or a table."""
    return _MARKDOWN.sub(r"\\\1", " ".join(value.split()))


def visible_text(errand: Errand) -> str:
    """What the signatory reads in the BankID app (simpleMarkdownV1); every value typed
    into the form is :func:`_plain`."""
    t = TEXTS.get(errand.language, TEXTS["sv"])
    data = errand.data
    if isinstance(data, RegistrationData):
        delegated = data.person.role is Role.DELEGATED_ORDERER
        action = t["register_delegated" if delegated else "register"]
    else:
        action = t["remove"]
    subject = data.subject
    lines = [
        f"# {t[errand.kind]}",
        f"{t['employer']}: {_plain(data.employer.name)} ({format_orgnr(data.employer.orgnr)})",
        f"{t['person']}: {_plain(subject.full_name)} ({format_personnummer(subject.personnummer)})",
        f"{t['action']}: {action}",
    ]
    if isinstance(data, RegistrationData) and data.person.ends_on:
        lines.append(f"{t['ends_on']}: {_plain(data.person.ends_on)}")
    if isinstance(data, RemovalData) and data.replacement:
        r = data.replacement
        lines.append(
            f"{t['replacement']}: {_plain(r.full_name)} ({format_personnummer(r.personnummer)})"
        )
        if r.ends_on:
            lines.append(f"{t['ends_on']}: {_plain(r.ends_on)}")
    lines += [f"{t['reference']}: {errand.reference}", "", str(t["consent"])]
    return "\n\n".join(lines)


def start(
    session: Session,
    agent: Agent,
    client: eid.BankIdClient,
    errand: Errand,
    pdf: bytes,
    end_user_ip: str,
    binding: str,
) -> EidOrder:
    """draft (or, for the invited signatory, awaiting_signatory) → awaiting_signature, with
    a sign order for the named signatory. A signing started before and left unfinished is
    cancelled first, so the errand can always be signed again."""
    _require_complete(errand, Action.REQUEST_SIGNATURE)
    # BankID cancels both orders when a second one starts for the same person: end the
    # errand's earlier ones first (a page closed, or returned by the sweep).
    abandon(session, agent, client, errand, None)
    order = eid.start_signing(
        session,
        client,
        end_user_ip,
        binding,
        errand_id=errand.id,
        document=pdf,
        visible_text=visible_text(errand),
        signer_personnummer=errand.data.signatory.personnummer,
    )
    transition(session, errand, Action.REQUEST_SIGNATURE, agent)
    errand.channel = Channel.E_SIGN
    return order


SEALED_SHA256 = "sealed_sha256"
"""The receive event's record of the sealed file's SHA-256 (see ``validate_sealed_pdf``)."""


class SignatureRejected(Exception):
    """The completed signature does not match the document or the signatory."""

    def __init__(self, code: ProblemCode) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class SealContext:
    trust_roots: list[x509.Certificate]
    """BankID roots trusted for the signature XML."""
    material: SealMaterial
    """The agency's seal certificate, key and timestamper."""


def finish(session: Session, order: EidOrder, errand: Errand, context: SealContext) -> bool:
    """Check the signature, seal the PDF with the evidence, and hand the errand to SPV.
    True when it was signed by invitation (the invitation's links end)."""
    completion = order.completion or {}
    system = Agent.system("bankid")
    try:
        signed = verify_bankid_signature(completion.get("signature", ""), context.trust_roots)
    except InvalidBankIdSignature as exc:
        _give_up(session, order, errand, ProblemCode.INVALID_SIGNATURE, str(exc))
        raise SignatureRejected(ProblemCode.INVALID_SIGNATURE) from exc
    if signed.user_non_visible_data.strip() != order.document_sha256:
        _give_up(session, order, errand, ProblemCode.WRONG_DOCUMENT, "hash mismatch")
        raise SignatureRejected(ProblemCode.WRONG_DOCUMENT)
    if signed.personal_number != errand.data.signatory.personnummer:
        _give_up(session, order, errand, ProblemCode.WRONG_SIGNER, "not the named signatory")
        raise SignatureRejected(ProblemCode.WRONG_SIGNER)
    try:
        status = check_ocsp_response(
            completion.get("ocspResponse", ""),
            signed.signer_certificate,
            signed.issuer_certificate,
            signature_b64=completion["signature"],
        )
    except InvalidOcspResponse as exc:
        _give_up(session, order, errand, ProblemCode.INVALID_SIGNATURE, str(exc))
        raise SignatureRejected(ProblemCode.INVALID_SIGNATURE) from exc
    if status.status is not CertificateStatus.GOOD:
        _give_up(session, order, errand, "certificate_not_good", status.status.value)
        raise SignatureRejected(ProblemCode.INVALID_SIGNATURE)
    ocsp = base64.b64decode(completion["ocspResponse"])
    xml = signed.xml
    assert order.document is not None
    order.status = OrderStatus.USED
    transition(
        session,
        errand,
        Action.SIGN,
        system,
        data={"method": "bankid", "order_ref": order.order_ref},
    )
    files = [
        Evidence(
            SIGNATURE_EVIDENCE_NAME,
            xml,
            "application/xml",
            "BankID signature (XML-DSig) over the document's SHA-256",
        ),
        Evidence(
            "bankid-ocsp.der",
            ocsp,
            "application/ocsp-response",
            "OCSP response for the signer's certificate",
        ),
    ]
    now = utcnow()
    signing = BankIdSigning(
        name=signed.name,
        personnummer=signed.personal_number,
        order_ref=order.order_ref,
        completed_dt=order.last_collect_dt,
        certificate=signed.signer_certificate,
        ocsp_produced_dt=status.produced_at,
        completion=completion,
        signed_bytes=len(order.document),
        sha256=order.document_sha256 or "",
    )
    page, evidence = esign_evidence(session, errand, signing, context.material, now, files)
    sealed = seal_pdf(
        order.document,
        material=context.material,
        evidence=evidence,
        signer_name=signed.name,
        lang=errand.language,
        page=page,
        now=now,
    )
    signed_doc = attach_document(
        session, errand, DocumentKind.SIGNED, sealed, f"{errand.reference}-underskriven.pdf"
    )
    attach_document(
        session, errand, DocumentKind.EVIDENCE, xml, SIGNATURE_EVIDENCE_NAME, "application/xml"
    )
    attach_document(
        session,
        errand,
        DocumentKind.EVIDENCE,
        ocsp,
        "bankid-ocsp.der",
        "application/ocsp-response",
    )
    # Under the audit key: the automated check knows these bytes are its own seal's.
    transition(session, errand, Action.RECEIVE, system, data={SEALED_SHA256: signed_doc.sha256})
    return end_invitations(session, errand, InvitationOutcome.SIGNED) > 0


def _give_up(session: Session, order: EidOrder, errand: Errand, code: str, detail: str) -> None:
    order.status = OrderStatus.USED
    back_to_signable(session, errand, Agent.system("bankid"), reason=code, data={"detail": detail})


def abandon(
    session: Session,
    agent: Agent,
    client: eid.BankIdClient,
    errand: Errand,
    order: EidOrder | None,
) -> None:
    """Back to where it can be signed again (the draft, or the signatory's invitation):
    cancelled by the person, or the order failed or expired. Without ``order``, every sign
    order of the errand still pending is cancelled."""
    pending = [order] if order is not None else eid.pending_orders(session, errand.id)
    for each in pending:
        eid.cancel(session, client, each)
    if errand.state is ErrandState.AWAITING_SIGNATURE:
        back_to_signable(session, errand, agent)
