"""Changes to the signatory register from an imported extract of the company register
(``behorighet signatories import FILE``), and what they set off.

One transaction: the register's entries for the organisations the extract names become the
extract's, each change recorded (``SignatoryRegisterChange``, one audit event each). When
someone stops being a signatory of an employer, every orderer whose registration they
signed has the role flagged for review (``RoleReviewFlag``; the role is not revoked), a
caseworker errand of kind ``signatory_change`` is opened in the queue, and the employer
(its orderers) is emailed. The same extract imported twice records nothing the second time.
A caseworker's approval of the errand resolves the flag (``resolve_review``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from app.access.models import (
    ORDERER_ROLES,
    Employer,
    ReviewReason,
    RoleGrant,
    RoleReviewFlag,
)
from app.audit.service import record_event
from app.core.agents import Agent
from app.core.i18n import SOURCE_LANG
from app.core.ids import format_orgnr, mask_personnummer
from app.db import utcnow
from app.notifications.queue import queue_email
from app.registers.extract import Extract, ExtractRow
from app.registers.models import (
    RegisterChangeKind,
    SignatoryRegisterChange,
    SignatoryRegisterEntry,
)
from app.registrations.codes import CheckName, Finding
from app.registrations.data import InvalidFormData, RegistrationData, SignatoryDetails, draft_of
from app.registrations.models import (
    CheckOutcome,
    Errand,
    ErrandKind,
    VerificationCheck,
)
from workflows.state_machine import transition
from workflows.states import Action

log = structlog.get_logger(__name__)

IMPORTER = Agent.system("signatories-import")
REVIEW_EMAIL = "signatory_changed"
ACCESS_PATH = "/hantera-behorigheter"


@dataclass
class ImportReport:
    rows: int
    changes: list[SignatoryRegisterChange] = field(default_factory=list)
    flags: list[RoleReviewFlag] = field(default_factory=list)
    errands: list[str] = field(default_factory=list)
    """The references of the errands opened."""

    def count(self, kind: RegisterChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)

    def lines(self) -> list[str]:
        found = [
            f"{self.rows} rows read; changes recorded: {self.count(RegisterChangeKind.ADDED)} "
            f"added, {self.count(RegisterChangeKind.REMOVED)} removed, "
            f"{self.count(RegisterChangeKind.CHANGED)} changed."
        ]
        for change in self.changes:
            found.append(
                f"  {change.kind.value:<8} {format_orgnr(change.orgnr)} "
                f"{mask_personnummer(change.personnummer)} {change.name} ({change.capacity})"
            )
        found.append(f"Orderers' roles flagged for review: {len(self.flags)}.")
        found += [f"  caseworker errand {reference}" for reference in self.errands]
        return found


def import_extract(
    session: Session, extract: Extract, *, base_url: str, agent: Agent = IMPORTER
) -> ImportReport:
    """Make the register what ``extract`` says for the organisations it names, in the
    caller's transaction (it commits or rolls back all of it)."""
    report = ImportReport(rows=len(extract.rows))
    current = {
        (e.orgnr, e.personnummer): e
        for e in session.scalars(
            select(SignatoryRegisterEntry)
            .where(SignatoryRegisterEntry.orgnr.in_(sorted(extract.orgnrs)))
            .order_by(SignatoryRegisterEntry.id)
            .with_for_update()
        )
    }
    wanted = {(r.orgnr, r.personnummer): r for r in extract.rows}
    for key, row in wanted.items():
        entry = current.get(key)
        if entry is None:
            session.add(_entry(row))
            _record(session, agent, report, extract, RegisterChangeKind.ADDED, row)
        elif _differs(entry, row):
            entry.name, entry.capacity = row.name, row.capacity
            entry.signing_rule, entry.registered_on = row.signing_rule, row.registered_on
            _record(session, agent, report, extract, RegisterChangeKind.CHANGED, row)
    for key, entry in current.items():
        if key in wanted:
            continue
        change = _record(session, agent, report, extract, RegisterChangeKind.REMOVED, entry)
        session.delete(entry)
        session.flush()
        for flag in flag_roles_signed_by(session, agent, change, base_url=base_url):
            report.flags.append(flag)
            report.errands.append(session.get_one(Errand, flag.errand_id).reference)
    return report


def _entry(row: ExtractRow) -> SignatoryRegisterEntry:
    return SignatoryRegisterEntry(
        orgnr=row.orgnr,
        personnummer=row.personnummer,
        name=row.name,
        capacity=row.capacity,
        signing_rule=row.signing_rule,
        registered_on=row.registered_on,
    )


def _differs(entry: SignatoryRegisterEntry, row: ExtractRow) -> bool:
    return (entry.name, entry.capacity, entry.signing_rule, entry.registered_on) != (
        row.name,
        row.capacity,
        row.signing_rule,
        row.registered_on,
    )


def _record(
    session: Session,
    agent: Agent,
    report: ImportReport,
    extract: Extract,
    kind: RegisterChangeKind,
    source: ExtractRow | SignatoryRegisterEntry,
) -> SignatoryRegisterChange:
    change = SignatoryRegisterChange(
        orgnr=source.orgnr,
        personnummer=source.personnummer,
        kind=kind,
        name=source.name,
        capacity=source.capacity,
        signing_rule=source.signing_rule,
        extract_sha256=extract.sha256,
    )
    session.add(change)
    session.flush()
    registered_on: date | None = source.registered_on
    record_event(
        session,
        actor=agent.audit_label,
        action=f"signatory_register.{kind.value}",
        object_type="signatory_register_change",
        object_id=change.id,
        data={
            "orgnr": change.orgnr,
            "personnummer": mask_personnummer(change.personnummer),
            "name": change.name,
            "capacity": change.capacity,
            "signing_rule": change.signing_rule,
            "registered_on": registered_on.isoformat() if registered_on else None,
            "extract_sha256": extract.sha256,
        },
    )
    report.changes.append(change)
    return change


# ---- the orderers whose registration the departed signatory signed -----------------------


def signatory_of(errand: Errand) -> SignatoryDetails | None:
    """Who signed ``errand`` for the employer: the signatory its form names (e-signed:
    the only one who may sign it; posted: as the clerk and caseworker checked it)."""
    try:
        return errand.progress.signatory
    except InvalidFormData:
        return None


def flag_roles_signed_by(
    session: Session, agent: Agent, change: SignatoryRegisterChange, *, base_url: str
) -> list[RoleReviewFlag]:
    """Flag for review each active orderer role at the employer ``change.orgnr`` whose
    registration ``change``'s signatory signed; open an errand for each and email the
    employer. A role already flagged for this reason is left as it is."""
    employer = session.scalar(select(Employer).where(Employer.orgnr == change.orgnr))
    if employer is None:
        return []
    now = utcnow()
    grants = session.scalars(
        select(RoleGrant)
        .where(
            RoleGrant.employer_id == employer.id,
            RoleGrant.role.in_(ORDERER_ROLES),
            RoleGrant.source_errand_id.is_not(None),
            or_(RoleGrant.valid_to_dt.is_(None), RoleGrant.valid_to_dt > now),
        )
        .options(selectinload(RoleGrant.person))
        .order_by(RoleGrant.id)
    ).all()
    flags = []
    for grant in grants:
        source = session.get_one(Errand, grant.source_errand_id)
        signatory = signatory_of(source)
        if signatory is None or signatory.personnummer != change.personnummer:
            continue
        if open_flag(session, grant.id) is not None:
            continue
        errand = _open_review(session, agent, source, grant, change)
        if errand is None:
            continue
        flag = RoleReviewFlag(
            role_grant_id=grant.id,
            reason=ReviewReason.SIGNATORY_LEFT,
            signatory_personnummer=change.personnummer,
            signatory_name=change.name,
            errand_id=errand.id,
        )
        session.add(flag)
        session.flush()
        record_event(
            session,
            actor=agent.audit_label,
            action="role.flagged_for_review",
            object_type="role_grant",
            object_id=grant.id,
            data={
                "reason": flag.reason.value,
                "errand": errand.reference,
                "registration": source.reference,
                "register_change": change.id,
            },
        )
        _email_employer(session, employer, grant, errand, change, base_url)
        flags.append(flag)
    return flags


def _open_review(
    session: Session,
    agent: Agent,
    source: Errand,
    grant: RoleGrant,
    change: SignatoryRegisterChange,
) -> Errand | None:
    """A caseworker errand (``signatory_change``) about ``grant``: its form a copy of the
    registration that created the role, straight into review with the finding to review."""
    data = source.progress.complete() if source.progress.is_complete else None
    if isinstance(data, RegistrationData):
        form = draft_of(data)
    elif data is not None and data.replacement is not None:
        # The role came as a removal's replacement: the registration part of that form.
        form = draft_of(
            RegistrationData(data.employer, data.replacement, data.signatory, employer_codes=())
        )
    else:
        log.warning("signatories.role_source_unreadable", grant_id=grant.id)
        return None
    errand = Errand(
        kind=ErrandKind.SIGNATORY_CHANGE,
        channel=source.channel,
        employer_id=grant.employer_id,
        subject_personnummer=grant.person.personnummer,
        submitted_by_id=source.submitted_by_id,
        language=source.language,
    )
    errand.progress = form
    session.add(errand)
    session.flush()
    transition(
        session,
        errand,
        Action.OPEN_REVIEW,
        agent,
        reason=ReviewReason.SIGNATORY_LEFT.value,
        data={"registration": source.reference, "register_change": change.id},
    )
    session.add(
        VerificationCheck(
            errand_id=errand.id,
            name=CheckName.SIGNATORY.value,
            outcome=CheckOutcome.FLAGGED,
            findings=[Finding.SIGNATORY_LEFT_REGISTER.value],
            detail=(
                f"{source.reference}: {change.name} "
                f"({mask_personnummer(change.personnummer)}, {change.capacity})"
            ),
        )
    )
    session.flush()
    return errand


def _email_employer(
    session: Session,
    employer: Employer,
    grant: RoleGrant,
    errand: Errand,
    change: SignatoryRegisterChange,
    base_url: str,
) -> None:
    """The employer's orderers (the flagged one too) are told, each address once."""
    recipients: dict[str, tuple[str, str]] = {}
    for holder in session.scalars(
        select(RoleGrant)
        .where(
            RoleGrant.employer_id == employer.id,
            RoleGrant.role.in_(ORDERER_ROLES),
            RoleGrant.valid_to_dt.is_(None),
        )
        .options(selectinload(RoleGrant.person))
    ):
        address = holder.contact_email or holder.person.email
        if address:
            person = holder.person
            recipients.setdefault(
                address.lower(), (person.full_name, person.language or SOURCE_LANG)
            )
    if not recipients:
        log.warning("email.no_address", employer_id=employer.id, grant_id=grant.id)
    for address, (name, language) in recipients.items():
        queue_email(
            session,
            base_url=base_url,
            dedupe_key=f"{REVIEW_EMAIL}:{errand.id}:{address}",
            to=address,
            name=name,
            language=language,
            template=REVIEW_EMAIL,
            context={
                "employer": employer.name,
                "orgnr": format_orgnr(employer.orgnr),
                "orderer": grant.person.full_name,
                "signatory": change.name,
                "reference": errand.reference,
                "path": ACCESS_PATH,
            },
            errand_id=errand.id,
            grant_id=grant.id,
        )


# ---- the flags, as the employer's pages and the caseworker see them ----------------------


def open_flag(session: Session, grant_id: int) -> RoleReviewFlag | None:
    return session.scalar(
        select(RoleReviewFlag).where(
            RoleReviewFlag.role_grant_id == grant_id, RoleReviewFlag.resolved_dt.is_(None)
        )
    )


def open_flags(session: Session, grant_ids: list[int]) -> dict[int, RoleReviewFlag]:
    """The open review flags of these grants, by grant id."""
    if not grant_ids:
        return {}
    return {
        flag.role_grant_id: flag
        for flag in session.scalars(
            select(RoleReviewFlag).where(
                RoleReviewFlag.role_grant_id.in_(grant_ids), RoleReviewFlag.resolved_dt.is_(None)
            )
        )
    }


def flags_of_errand(session: Session, errand_id: int) -> list[RoleReviewFlag]:
    return list(
        session.scalars(
            select(RoleReviewFlag)
            .where(RoleReviewFlag.errand_id == errand_id)
            .options(selectinload(RoleReviewFlag.grant).selectinload(RoleGrant.person))
            .order_by(RoleReviewFlag.id)
        )
    )


def resolve_review(session: Session, agent: Agent, errand: Errand) -> int:
    """The caseworker approved the review errand: the role stands, its flag is resolved.
    Returns the flags resolved (0 when run again)."""
    resolved = 0
    for flag in flags_of_errand(session, errand.id):
        if flag.resolved_dt is not None:
            continue
        flag.resolved_dt = utcnow()
        flag.resolved_by_staff_id = errand.decided_by_staff_id
        record_event(
            session,
            actor=agent.audit_label,
            action="role.review_resolved",
            object_type="role_grant",
            object_id=flag.role_grant_id,
            data={"errand": errand.reference, "reason": flag.reason.value},
        )
        resolved += 1
    session.flush()
    return resolved
