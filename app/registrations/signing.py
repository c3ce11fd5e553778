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
from collections.abc import Callable
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
    OcspStatus,
    SignedData,
    check_ocsp_response,
    verify_bankid_signature,
)
from app.eid.models import EidOrder, OrderStatus
from app.registrations import joint
from app.registrations.codes import ProblemCode
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.evidence import BankIdSigning, esign_evidence, second_name
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
from workflows.states import Action, ErrandState, IllegalTransition

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
    signer = errand.data.signatory.personnummer
    if joint.needs_two(errand.data):
        # Two sign jointly, each invited and in their own session, over the same PDF.
        waiting = {s.personnummer for s in joint.awaited(session, errand)}
        if errand.state is not ErrandState.AWAITING_SIGNATORY or agent.personnummer not in waiting:
            raise IllegalTransition(
                errand.state, Action.REQUEST_SIGNATURE, "each joint signatory signs by invitation"
            )
        signer = agent.personnummer
        first = joint.first_signature(session, errand)
        if first is not None and first.document is not None:
            pdf = first.document
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
        signer_personnummer=signer,
    )
    transition(session, errand, Action.REQUEST_SIGNATURE, agent)
    errand.channel = Channel.E_SIGN
    return order


OCSP_EVIDENCE_NAME = "bankid-ocsp.der"
"""The OCSP response for the signer's certificate among a sealed form's attachments."""

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


@dataclass(frozen=True)
class _Verified:
    """A completed sign order whose signature, document and signer have been checked."""

    order: EidOrder
    signed: SignedData
    status: OcspStatus
    ocsp: bytes


class _Refused(Exception):
    def __init__(self, code: ProblemCode, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.reason, self.detail = code, reason, detail


def _verify(order: EidOrder, signers: set[str], context: SealContext) -> _Verified:
    """The order's signature is BankID's, over the order's document, by one of ``signers``,
    whose certificate BankID's OCSP responder said was good."""
    completion = order.completion or {}
    try:
        signed = verify_bankid_signature(completion.get("signature", ""), context.trust_roots)
    except InvalidBankIdSignature as exc:
        raise _Refused(
            ProblemCode.INVALID_SIGNATURE, ProblemCode.INVALID_SIGNATURE, str(exc)
        ) from exc
    if signed.user_non_visible_data.strip() != order.document_sha256:
        raise _Refused(ProblemCode.WRONG_DOCUMENT, ProblemCode.WRONG_DOCUMENT, "hash mismatch")
    if signed.personal_number not in signers:
        raise _Refused(
            ProblemCode.WRONG_SIGNER, ProblemCode.WRONG_SIGNER, "not the named signatory"
        )
    try:
        status = check_ocsp_response(
            completion.get("ocspResponse", ""),
            signed.signer_certificate,
            signed.issuer_certificate,
            signature_b64=completion["signature"],
        )
    except InvalidOcspResponse as exc:
        raise _Refused(
            ProblemCode.INVALID_SIGNATURE, ProblemCode.INVALID_SIGNATURE, str(exc)
        ) from exc
    if status.status is not CertificateStatus.GOOD:
        raise _Refused(ProblemCode.INVALID_SIGNATURE, "certificate_not_good", status.status.value)
    return _Verified(order, signed, status, base64.b64decode(completion["ocspResponse"]))


def _signing(verified: _Verified) -> BankIdSigning:
    order = verified.order
    assert order.document is not None
    return BankIdSigning(
        name=verified.signed.name,
        personnummer=verified.signed.personal_number,
        order_ref=order.order_ref,
        completed_dt=order.last_collect_dt,
        certificate=verified.signed.signer_certificate,
        ocsp_produced_dt=verified.status.produced_at,
        completion=order.completion or {},
        signed_bytes=len(order.document),
        sha256=order.document_sha256 or "",
    )


def _evidence_files(verified: _Verified, name: Callable[[str], str]) -> list[Evidence]:
    return [
        Evidence(
            name(SIGNATURE_EVIDENCE_NAME),
            verified.signed.xml,
            "application/xml",
            "BankID signature (XML-DSig) over the document's SHA-256",
        ),
        Evidence(
            name(OCSP_EVIDENCE_NAME),
            verified.ocsp,
            "application/ocsp-response",
            "OCSP response for the signer's certificate",
        ),
    ]


def finish(session: Session, order: EidOrder, errand: Errand, context: SealContext) -> bool:
    """Check the signature, seal the PDF with the evidence, and hand the errand to SPV.
    True when it was signed by invitation (the invitation's links end).

    Where two sign jointly, the first signature is kept and the errand waits for the
    other's (False); the second seals the PDF with both (``app.registrations.joint``)."""
    signers = {s.personnummer for s in joint.awaited(session, errand)}
    try:
        verified = _verify(order, signers, context)
        first = joint.first_signature(session, errand)
        earlier = _verify(first, {joint.signer_of(first)}, context) if first else None
        if first is not None and first.document_sha256 != order.document_sha256:
            raise _Refused(ProblemCode.WRONG_DOCUMENT, ProblemCode.WRONG_DOCUMENT, "not the PDF")
    except _Refused as refused:
        _give_up(session, order, errand, refused.reason, refused.detail)
        raise SignatureRejected(refused.code) from refused
    order.status = OrderStatus.USED
    if joint.needs_two(errand.data) and earlier is None:
        joint.record_first(session, errand, order, verified.signed.personal_number)
        return False
    transition(
        session,
        errand,
        Action.SIGN,
        Agent.system("bankid"),
        data={"method": "bankid", "order_ref": order.order_ref},
    )
    signatures = [earlier, verified] if earlier else [verified]
    files = [
        *_evidence_files(signatures[0], lambda name: name),
        *(_evidence_files(signatures[1], second_name) if earlier else []),
    ]
    now = utcnow()
    signings = [_signing(each) for each in signatures]
    page, evidence = esign_evidence(session, errand, signings, context.material, now, files)
    assert order.document is not None
    sealed = seal_pdf(
        order.document,
        material=context.material,
        evidence=evidence,
        signer_name=", ".join(each.signed.name for each in signatures),
        lang=errand.language,
        page=page,
        now=now,
    )
    signed_doc = attach_document(
        session, errand, DocumentKind.SIGNED, sealed, f"{errand.reference}-underskriven.pdf"
    )
    for file in files:
        attach_document(
            session, errand, DocumentKind.EVIDENCE, file.content, file.name, file.mime_type
        )
    # Under the audit key: the automated check knows these bytes are its own seal's.
    transition(
        session,
        errand,
        Action.RECEIVE,
        Agent.system("bankid"),
        data={SEALED_SHA256: signed_doc.sha256},
    )
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
