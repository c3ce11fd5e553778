"""Automated checks of a received errand; each result is stored and shown to caseworkers."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.access.models import Employer, EmployerCode
from app.access.roster import Conflict
from app.audit.service import authentic_errand_event
from app.config import Settings
from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer
from app.documents.pki import SealIdentity, accepted_seal, trust_roots
from app.documents.validate import EvidenceError, extract_evidence, validate_sealed_pdf
from app.eid.bankid import bankid_trust_roots
from app.eid.evidence import (
    SIGNATURE_EVIDENCE_NAME,
    InvalidBankIdSignature,
    verify_bankid_signature,
)
from app.eid.models import EidOrder, OrderStatus
from app.intake.models import PageOutcome
from app.registers.service import (
    LocalSignatoryRegister,
    SignatoryRegister,
    is_signatory,
    signs_jointly,
)
from app.registrations import joint
from app.registrations.codes import CheckName, Finding
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.evidence import second_name
from app.registrations.models import (
    Channel,
    CheckOutcome,
    DocumentKind,
    Errand,
    VerificationCheck,
)
from app.registrations.service import load_roster, registered_replacement
from app.registrations.signing import SEALED_SHA256
from workflows.states import Action


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    outcome: CheckOutcome
    findings: tuple[Finding, ...] = ()
    """Codes of what was found (the UI names them in the reader's language)."""
    detail: str = ""
    """Data behind the findings, e.g. the employer codes that do not belong."""


@dataclass(frozen=True)
class Verifiers:
    """What the checks check against, besides the database."""

    register: SignatoryRegister
    seal_roots: Sequence[x509.Certificate]
    """Roots the agency's seal on an e-signed form must chain to."""
    seal_identity: SealIdentity
    """The agency's seal certificate: no other certificate under ``seal_roots`` will do."""
    bankid_roots: Sequence[x509.Certificate]
    """Roots BankID signatures must chain to."""


def verifiers_for(session: Session, settings: Settings) -> Verifiers:
    return Verifiers(
        LocalSignatoryRegister(session),
        trust_roots(settings),
        accepted_seal(settings),
        bankid_trust_roots(settings),
    )


Check = Callable[[Session, Errand, Verifiers], CheckResult]


def _passed(name: CheckName, *findings: Finding) -> CheckResult:
    return CheckResult(name, CheckOutcome.PASSED, findings)


def outcome_of(findings: Sequence[Finding]) -> CheckOutcome:
    """A check fails on a blocking finding and needs review on any other that is not a
    note (``Finding.severity`` decides which is which)."""
    if any(f.blocks_approval for f in findings):
        return CheckOutcome.FAILED
    if any(f.needs_review for f in findings):
        return CheckOutcome.FLAGGED
    return CheckOutcome.PASSED


def _found(name: CheckName, findings: Sequence[Finding], detail: str = "") -> CheckResult:
    return CheckResult(name, outcome_of(findings), tuple(findings), detail)


def check_id_numbers(session: Session, sub: Errand, _v: Verifiers) -> CheckResult:
    data = sub.data
    replacement = data.replacement if isinstance(data, RemovalData) else None
    try:
        normalise_orgnr(data.employer.orgnr)
        normalise_personnummer(data.subject.personnummer)
        for signatory in data.signatories:
            normalise_personnummer(signatory.personnummer)
        if replacement is not None:
            normalise_personnummer(replacement.personnummer)
    except InvalidIdNumber:
        return _found(CheckName.ID_NUMBERS, [Finding.INVALID_ID_NUMBER])
    return _passed(CheckName.ID_NUMBERS)


def check_employer_codes(session: Session, sub: Errand, _v: Verifiers) -> CheckResult:
    employer = session.get(Employer, sub.employer_id) if sub.employer_id else None
    data = sub.data
    if employer is None or employer.orgnr != data.employer.orgnr:
        return _found(CheckName.EMPLOYER, [Finding.UNKNOWN_EMPLOYER])
    wanted = set(data.employer_codes) if isinstance(data, RegistrationData) else set()
    if wanted:
        owned = set(
            session.scalars(
                select(EmployerCode.code).where(EmployerCode.employer_id == employer.id)
            )
        )
        foreign = sorted(wanted - owned)
        if foreign:
            return _found(CheckName.EMPLOYER, [Finding.CODE_NOT_OF_EMPLOYER], ", ".join(foreign))
    return _passed(CheckName.EMPLOYER)


def check_signatory(session: Session, sub: Errand, verifiers: Verifiers) -> CheckResult:
    data = sub.data
    signer = data.signatory.personnummer
    removes_self = isinstance(data, RemovalData) and data.removes_self
    if removes_self and signer == data.subject.personnummer:
        assert isinstance(data, RemovalData)
        if registered_replacement(session, data) != data.replacement:
            return CheckResult(
                CheckName.SIGNATORY,
                CheckOutcome.FLAGGED,
                (Finding.REMOVAL_SIGNED_BY_ORDERER, Finding.REPLACEMENT_NOT_SIGNED_BY_SIGNATORY),
            )
        return _passed(CheckName.SIGNATORY, Finding.REMOVAL_SIGNED_BY_ORDERER)
    orgnr = data.employer.orgnr
    findings = []
    if not all(is_signatory(verifiers.register, orgnr, s.personnummer) for s in data.signatories):
        findings.append(Finding.NOT_IN_SIGNATORY_REGISTER)
    if signs_jointly(verifiers.register, orgnr) and not joint.needs_two(data):
        findings.append(Finding.JOINT_SIGNATURE_MISSING)
    return _found(CheckName.SIGNATORY, findings) if findings else _passed(CheckName.SIGNATORY)


def _signature_failed(*findings: Finding, detail: str = "") -> CheckResult:
    return _found(CheckName.SIGNATURE, findings, detail)


def check_esignature(session: Session, sub: Errand, verifiers: Verifiers) -> CheckResult:
    """The sealed PDF is intact and SPV's, its BankID evidence is valid, covers exactly the
    PDF that was shown for signing, and was made by the signatory the form names."""
    signed_doc = next((d for d in sub.documents if d.kind is DocumentKind.SIGNED), None)
    order = session.scalar(
        select(EidOrder)
        .where(EidOrder.errand_id == sub.id, EidOrder.status == OrderStatus.USED)
        .order_by(EidOrder.id.desc())
    )
    if signed_doc is None or order is None or order.document is None:
        return _signature_failed(Finding.SIGNED_DOCUMENT_MISSING)
    sealed = signed_doc.content
    sealed_event = authentic_errand_event(session, sub.id, Action.RECEIVE.value)
    report = validate_sealed_pdf(
        sealed,
        trust_roots=verifiers.seal_roots,
        seal_identity=verifiers.seal_identity,
        sealed_sha256=sealed_event.data.get(SEALED_SHA256) if sealed_event else None,
    )
    if not report.accepted:
        return _signature_failed(Finding.SEAL_INVALID, detail=report.reason)
    named = {s.personnummer for s in sub.data.signatories}
    names = [SIGNATURE_EVIDENCE_NAME]
    if joint.needs_two(sub.data):  # two sign jointly: both signatures, by both of them
        names.append(second_name(SIGNATURE_EVIDENCE_NAME))
    try:
        evidence = report.evidence if report.evidence is not None else extract_evidence(sealed)
        if any(name not in evidence for name in names[1:]):
            return _signature_failed(Finding.JOINT_SIGNATURE_MISSING)
        signatures = [
            verify_bankid_signature(
                base64.b64encode(evidence[name]).decode("ascii"),
                verifiers.bankid_roots,
                at=report.timestamp_dt or report.signed_dt,
            )
            for name in names
        ]
    except (EvidenceError, KeyError, InvalidBankIdSignature) as exc:
        return _signature_failed(Finding.SIGNATURE_INVALID, detail=str(exc)[:200])
    original = sealed[: len(order.document)]
    digest = hashlib.sha256(original).hexdigest()
    if original != order.document or any(
        signed.user_non_visible_data.strip() != digest for signed in signatures
    ):
        return _signature_failed(Finding.SIGNATURE_OF_OTHER_DOCUMENT)
    if {signed.personal_number for signed in signatures} != named:
        return _signature_failed(Finding.SIGNER_NOT_NAMED_SIGNATORY)
    return _passed(CheckName.SIGNATURE)


def check_paper_signature(session: Session, sub: Errand) -> CheckResult:
    """Posted: every page came back with the errand's code (MAC and data digest checked
    when read) and a clerk confirmed the handwritten signature of the named signatory."""
    from app.intake.queries import paper_form_of

    paper_form = paper_form_of(session, sub.id)
    if paper_form is None:
        return _signature_failed(Finding.SCAN_MISSING)
    by_hand = {page.outcome for page in paper_form.pages if page.matched_by_clerk}
    findings = [finding for outcome, finding in _HAND_MATCHED.items() if outcome in by_hand]
    if by_hand - _HAND_MATCHED.keys():  # pages whose code could not be read at all
        findings.append(Finding.MATCHED_BY_HAND)
    if not (paper_form.signature_present and paper_form.signer_is_named):
        findings.append(Finding.HANDWRITTEN_SIGNATURE_MISSING)
    if joint.needs_two(sub.data) and not paper_form.co_signature_present:
        findings.append(Finding.JOINT_SIGNATURE_MISSING)
    if findings:
        return _found(CheckName.SIGNATURE, findings, paper_form.clerk_note or "")
    return _passed(CheckName.SIGNATURE, Finding.SIGNED_ON_PAPER)


_HAND_MATCHED = {
    PageOutcome.MAC_MISMATCH: Finding.MAC_MISMATCH_MATCHED_BY_HAND,
    PageOutcome.DIGEST_MISMATCH: Finding.DIGEST_MISMATCH_MATCHED_BY_HAND,
    PageOutcome.BLANK_FORM: Finding.TYPED_IN_BY_CLERK,
}
"""What a page the clerk matched by hand says, by what reading its code found."""


def check_signature(session: Session, sub: Errand, verifiers: Verifiers) -> CheckResult:
    """E-signed: the seal and the BankID evidence; posted: the scan and the clerk's check."""
    if sub.channel is Channel.E_SIGN:
        return check_esignature(session, sub, verifiers)
    return check_paper_signature(session, sub)


CONFLICT_FINDINGS = {
    Conflict.ALREADY_ORDERER: Finding.ALREADY_ORDERER,
    Conflict.NOT_AN_ORDERER: Finding.NOT_AN_ORDERER,
    Conflict.WOULD_LEAVE_NO_ORDERER: Finding.WOULD_LEAVE_NO_ORDERER,
    Conflict.REPLACEMENT_ALREADY_ORDERER: Finding.REPLACEMENT_ALREADY_ORDERER,
    Conflict.PENDING_ERRAND: Finding.PENDING_ERRAND,
}


def check_conflicts(session: Session, sub: Errand, _v: Verifiers | None = None) -> CheckResult:
    """What the employer's roster says about the change, as SPV sees it (also what the
    form step did not tell a submitter who may not know it)."""
    if sub.employer_id is None:
        return _found(CheckName.CONFLICTS, [Finding.UNKNOWN_EMPLOYER])
    roster = load_roster(session, sub.employer_id)
    data = sub.data
    if isinstance(data, RegistrationData):
        conflicts = roster.conflicts_registering(data.person.personnummer, errand_id=sub.id)
    else:
        registered = registered_replacement(session, data)
        replacement = registered.personnummer if registered else None
        conflicts = roster.conflicts_removing(
            data.orderer.personnummer, replacement, errand_id=sub.id
        )
    if conflicts:
        return _found(CheckName.CONFLICTS, [CONFLICT_FINDINGS[c] for c in conflicts])
    return _passed(CheckName.CONFLICTS)


CHECKS: tuple[Check, ...] = (
    check_id_numbers,
    check_employer_codes,
    check_signatory,
    check_signature,
    check_conflicts,
)


def _store(session: Session, errand: Errand, results: list[CheckResult]) -> list[VerificationCheck]:
    """Store the results, replacing earlier results of the same checks."""
    session.execute(
        delete(VerificationCheck).where(
            VerificationCheck.errand_id == errand.id,
            VerificationCheck.name.in_([r.name.value for r in results]),
        )
    )
    rows = [
        VerificationCheck(
            errand_id=errand.id,
            name=r.name.value,
            outcome=r.outcome,
            findings=[f.value for f in r.findings],
            detail=r.detail,
        )
        for r in results
    ]
    session.add_all(rows)
    session.flush()
    session.expire(errand, ["checks"])
    return rows


def run_checks(session: Session, errand: Errand, verifiers: Verifiers) -> list[VerificationCheck]:
    """Run every check afresh (a re-run replaces the previous results)."""
    return _store(session, errand, [check(session, errand, verifiers) for check in CHECKS])


def recheck_conflicts(session: Session, errand: Errand, *found: Finding) -> None:
    """Check the conflicts again (the roster changed since verification), adding what the
    caller ``found``; the caseworker sees the result flagged."""
    result = check_conflicts(session, errand)
    if found:
        findings = result.findings + tuple(f for f in found if f not in result.findings)
        result = _found(result.name, findings, result.detail)
    _store(session, errand, [result])


__all__ = [
    "CHECKS",
    "CheckResult",
    "Verifiers",
    "outcome_of",
    "recheck_conflicts",
    "run_checks",
    "verifiers_for",
]
