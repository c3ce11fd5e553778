"""Automated checks of a received submission; each result is stored and shown to caseworkers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.access.models import ORDERER_ROLES, Employer, EmployerCode, Role, RoleGrant
from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer
from app.registers.service import LocalSignatoryRegister, SignatoryRegister, is_signatory
from app.registrations.models import (
    CheckOutcome,
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


Check = Callable[[Session, Submission, SignatoryRegister], CheckResult]


def _passed(name: str, *findings: str) -> CheckResult:
    return CheckResult(name, CheckOutcome.PASSED, findings)


def check_id_numbers(session: Session, sub: Submission, _r: SignatoryRegister) -> CheckResult:
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


def check_employer_codes(session: Session, sub: Submission, _r: SignatoryRegister) -> CheckResult:
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


def check_signatory(session: Session, sub: Submission, register: SignatoryRegister) -> CheckResult:
    signer = sub.form_data.get("signatory_personnummer", "")
    removes_self = sub.kind is SubmissionKind.REMOVAL and sub.form_data.get("reason") == "self"
    if removes_self and signer == sub.subject_personnummer:
        return _passed("signatory", "removal_signed_by_orderer")
    if is_signatory(register, sub.form_data.get("orgnr", ""), signer):
        return _passed("signatory")
    return CheckResult("signatory", CheckOutcome.FLAGGED, ("not_in_signatory_register",))


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


def check_conflicts(session: Session, sub: Submission, _r: SignatoryRegister) -> CheckResult:
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
    check_conflicts,
)


def run_checks(
    session: Session, submission: Submission, register: SignatoryRegister | None = None
) -> list[VerificationCheck]:
    """Run every check afresh (a re-run replaces the previous results)."""
    register = register or LocalSignatoryRegister(session)
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
        for r in (check(session, submission, register) for check in CHECKS)
    ]
    session.add_all(rows)
    session.flush()
    session.expire(submission, ["checks"])
    return rows


__all__ = ["CHECKS", "CheckResult", "run_checks"]
