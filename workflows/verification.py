"""Automated checks of a received submission; each result is stored and shown to caseworkers."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.access.models import ORDERER_ROLES, Employer, EmployerCode, Role, RoleGrant
from app.config import Settings
from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer
from app.documents.pki import trust_roots
from app.documents.validate import EvidenceError, extract_evidence, validate_sealed_pdf
from app.eid.bankid import bankid_trust_roots
from app.eid.evidence import (
    SIGNATURE_EVIDENCE_NAME,
    InvalidBankIdSignature,
    verify_bankid_signature,
)
from app.eid.models import EidOrder, OrderStatus
from app.intake.models import PageOutcome
from app.registers.service import LocalSignatoryRegister, SignatoryRegister, is_signatory
from app.registrations.models import (
    Channel,
    CheckOutcome,
    DocumentKind,
    Submission,
    SubmissionKind,
    VerificationCheck,
)
from workflows.states import PENDING_STATES


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: CheckOutcome
    findings: tuple[str, ...] = ()
    """Codes of what was found (the UI names them in the reader's language)."""
    detail: str = ""
    """Data behind the findings, e.g. the employer codes that do not belong."""


@dataclass(frozen=True)
class Verifiers:
    """What the checks check against, besides the database."""

    register: SignatoryRegister
    seal_roots: Sequence[x509.Certificate]
    """Roots the agency's seal on an e-signed form must chain to."""
    bankid_roots: Sequence[x509.Certificate]
    """Roots BankID signatures must chain to."""


def verifiers_for(session: Session, settings: Settings) -> Verifiers:
    return Verifiers(
        LocalSignatoryRegister(session), trust_roots(settings), bankid_trust_roots(settings)
    )


Check = Callable[[Session, Submission, Verifiers], CheckResult]


def _passed(name: str, *findings: str) -> CheckResult:
    return CheckResult(name, CheckOutcome.PASSED, findings)


def check_id_numbers(session: Session, sub: Submission, _v: Verifiers) -> CheckResult:
    data = sub.form_data
    try:
        normalise_orgnr(data.get("orgnr", ""))
        normalise_personnummer(data.get("personnummer", ""))
        normalise_personnummer(data.get("signatory_personnummer", ""))
        if data.get("replacement"):
            normalise_personnummer(data["replacement"].get("personnummer", ""))
    except InvalidIdNumber:
        return CheckResult("id_numbers", CheckOutcome.FAILED, ("invalid_id_number",))
    return _passed("id_numbers")


def check_employer_codes(session: Session, sub: Submission, _v: Verifiers) -> CheckResult:
    employer = session.get(Employer, sub.employer_id) if sub.employer_id else None
    if employer is None or employer.orgnr != sub.form_data.get("orgnr"):
        return CheckResult("employer", CheckOutcome.FAILED, ("unknown_employer",))
    wanted = set(sub.form_data.get("employer_codes") or [])
    if wanted:
        owned = set(
            session.scalars(
                select(EmployerCode.code).where(EmployerCode.employer_id == employer.id)
            )
        )
        foreign = sorted(wanted - owned)
        if foreign:
            return CheckResult(
                "employer", CheckOutcome.FAILED, ("code_not_of_employer",), ", ".join(foreign)
            )
    return _passed("employer")


def check_signatory(session: Session, sub: Submission, verifiers: Verifiers) -> CheckResult:
    signer = sub.form_data.get("signatory_personnummer", "")
    removes_self = sub.kind is SubmissionKind.REMOVAL and sub.form_data.get("reason") == "self"
    if removes_self and signer == sub.subject_personnummer:
        return _passed("signatory", "removal_signed_by_orderer")
    if is_signatory(verifiers.register, sub.form_data.get("orgnr", ""), signer):
        return _passed("signatory")
    return CheckResult("signatory", CheckOutcome.FLAGGED, ("not_in_signatory_register",))


def _signature_failed(*findings: str, detail: str = "") -> CheckResult:
    return CheckResult("signature", CheckOutcome.FAILED, findings, detail)


def check_esignature(session: Session, sub: Submission, verifiers: Verifiers) -> CheckResult:
    """The sealed PDF is intact and SPV's, its BankID evidence is valid, covers exactly the
    PDF that was shown for signing, and was made by the signatory the form names."""
    signed_doc = next((d for d in sub.documents if d.kind is DocumentKind.SIGNED), None)
    order = session.scalar(
        select(EidOrder)
        .where(EidOrder.submission_id == sub.id, EidOrder.status == OrderStatus.USED)
        .order_by(EidOrder.id.desc())
    )
    if signed_doc is None or order is None or order.document is None:
        return _signature_failed("signed_document_missing")
    sealed = signed_doc.content
    report = validate_sealed_pdf(sealed, trust_roots=verifiers.seal_roots)
    if not report.accepted:
        return _signature_failed("seal_invalid", detail=report.reason)
    try:
        xml = extract_evidence(sealed)[SIGNATURE_EVIDENCE_NAME]
        signed = verify_bankid_signature(
            base64.b64encode(xml).decode("ascii"),
            verifiers.bankid_roots,
            at=report.timestamp_dt or report.signed_dt,
        )
    except (EvidenceError, KeyError, InvalidBankIdSignature) as exc:
        return _signature_failed("signature_invalid", detail=str(exc)[:200])
    original = sealed[: len(order.document)]
    if (
        original != order.document
        or signed.user_non_visible_data.strip() != hashlib.sha256(original).hexdigest()
    ):
        return _signature_failed("signature_of_other_document")
    if signed.personal_number != sub.form_data.get("signatory_personnummer"):
        return _signature_failed("signer_not_named_signatory")
    return _passed("signature")


def check_paper_signature(session: Session, sub: Submission) -> CheckResult:
    """Posted: every page came back with the errand's code (MAC and data digest checked
    when read) and a clerk confirmed the handwritten signature of the named signatory."""
    from app.intake.queries import paper_form_of

    paper_form = paper_form_of(session, sub.id)
    if paper_form is None:
        return _signature_failed("scan_missing")
    by_hand = {page.outcome for page in paper_form.pages if page.matched_by_clerk}
    findings = [finding for outcome, finding in _HAND_MATCHED.items() if outcome in by_hand]
    if by_hand - _HAND_MATCHED.keys():  # pages whose code could not be read at all
        findings.append("matched_by_hand")
    failed = "mac_mismatch_matched_by_hand" in findings
    if not (paper_form.signature_present and paper_form.signer_is_named):
        findings.append("handwritten_signature_missing")
        failed = True
    if findings:
        outcome = CheckOutcome.FAILED if failed else CheckOutcome.FLAGGED
        return CheckResult("signature", outcome, tuple(findings), paper_form.clerk_note or "")
    return _passed("signature", "signed_on_paper")


_HAND_MATCHED = {
    PageOutcome.MAC_MISMATCH: "mac_mismatch_matched_by_hand",
    PageOutcome.DIGEST_MISMATCH: "digest_mismatch_matched_by_hand",
    PageOutcome.BLANK_FORM: "typed_in_by_clerk",
}
"""What a page the clerk matched by hand says, by what reading its code found."""


def check_signature(session: Session, sub: Submission, verifiers: Verifiers) -> CheckResult:
    """E-signed: the seal and the BankID evidence; posted: the scan and the clerk's check."""
    if sub.channel is Channel.E_SIGN:
        return check_esignature(session, sub, verifiers)
    return check_paper_signature(session, sub)


def _active_orderer_grants(session: Session, employer_id: int) -> list[RoleGrant]:
    return list(
        session.scalars(
            select(RoleGrant).where(
                RoleGrant.employer_id == employer_id,
                RoleGrant.role.in_(ORDERER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    )


def check_conflicts(session: Session, sub: Submission, _v: Verifiers) -> CheckResult:
    if sub.employer_id is None:
        return CheckResult("conflicts", CheckOutcome.FAILED, ("unknown_employer",))
    grants = _active_orderer_grants(session, sub.employer_id)
    holders = {g.person.personnummer for g in grants}
    subject = sub.subject_personnummer
    problems: list[str] = []
    if sub.kind is SubmissionKind.REGISTRATION and subject in holders:
        problems.append("already_orderer")
    if sub.kind is SubmissionKind.REMOVAL:
        replacement = sub.form_data.get("replacement")
        orderers = {g.person.personnummer for g in grants if g.role is Role.ORDERER}
        if subject not in holders:
            problems.append("not_an_orderer")
        elif not replacement and orderers <= {subject}:
            problems.append("would_leave_no_orderer")
        if replacement and replacement.get("personnummer") in holders:
            problems.append("replacement_already_orderer")
    others = session.scalar(
        select(func.count(Submission.id)).where(
            Submission.id != sub.id,
            Submission.employer_id == sub.employer_id,
            Submission.subject_personnummer == subject,
            Submission.state.in_(PENDING_STATES),
        )
    )
    if others:
        problems.append("pending_errand")
    if problems:
        return CheckResult("conflicts", CheckOutcome.FLAGGED, tuple(problems))
    return _passed("conflicts")


CHECKS: tuple[Check, ...] = (
    check_id_numbers,
    check_employer_codes,
    check_signatory,
    check_signature,
    check_conflicts,
)


def run_checks(
    session: Session, submission: Submission, verifiers: Verifiers
) -> list[VerificationCheck]:
    """Run every check afresh (a re-run replaces the previous results)."""
    session.execute(
        delete(VerificationCheck).where(VerificationCheck.submission_id == submission.id)
    )
    rows = [
        VerificationCheck(
            submission_id=submission.id,
            name=r.name,
            outcome=r.outcome,
            findings=list(r.findings),
            detail=r.detail,
        )
        for r in (check(session, submission, verifiers) for check in CHECKS)
    ]
    session.add_all(rows)
    session.flush()
    session.expire(submission, ["checks"])
    return rows


__all__ = ["CHECKS", "CheckResult", "Verifiers", "run_checks", "verifiers_for"]
