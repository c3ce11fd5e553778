"""The register extract (registerutdrag, GDPR art. 15): everything the product holds about
one person, made by a caseworker as a sealed PDF/A with the same data as JSON inside it and
beside it, both kept with the archive's documents; the request and its delivery audited.

Plain functions over a session: no Flask. What belongs to the person is found by their
``person`` row (roles, permissions, their change log, requests, logins), by their
personnummer where a form or a register names them (errands as subject, replacement or
signatory; signing invitations; the signatory register), by their addresses (emails) and by
the keyed hash of their personnummer (both access logs). Nothing of another person is
copied in: an errand shows what its form says about this person only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session, selectinload

from app.access.models import (
    Employer,
    EmployerCode,
    InactivityConfirmation,
    PermissionChange,
    PermissionRequest,
    Person,
    RoleGrant,
    ServicePermission,
)
from app.api.clients import subject_hash
from app.audit.models import AuditEvent
from app.audit.service import record_event
from app.core.agents import Agent
from app.db import utcnow
from app.documents.pki import SealMaterial
from app.documents.render import render_register_extract
from app.documents.seal import Evidence, seal_pdf
from app.notifications.models import EmailMessage
from app.privacy.access_log import record_hashed_view, record_view, who_looked
from app.privacy.models import RegisterExtract, ViewKind
from app.registers.models import SignatoryRegisterEntry
from app.registrations.data import InvalidFormData
from app.registrations.models import (
    DocumentKind,
    Errand,
    ErrandDocument,
    SigningInvitation,
    reference_with_prefix,
)
from app.staff.models import StaffMember

log = structlog.get_logger(__name__)

FORMAT = "behorighet-registerutdrag"
VERSION = 1
"""The JSON's shape; raise it when a field changes meaning or goes."""

PDF_MEDIA_TYPE = "application/pdf"
JSON_MEDIA_TYPE = "application/json"


class AlreadyDelivered(Exception):
    """The extract was delivered already (when and how is recorded)."""


def _utc(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _employer(employer: Employer | None) -> dict[str, str] | None:
    return {"name": employer.name, "orgnr": employer.orgnr} if employer else None


# --- what is held ----------------------------------------------------------------------


def _roles(session: Session, person: Person) -> list[dict[str, Any]]:
    grants = list(
        session.scalars(
            select(RoleGrant)
            .where(RoleGrant.person_id == person.id)
            .options(selectinload(RoleGrant.employer), selectinload(RoleGrant.codes))
            .order_by(RoleGrant.valid_from_dt, RoleGrant.id)
        )
    )
    errands = _references(session, [g.source_errand_id for g in grants])
    return [
        {
            "employer": _employer(g.employer),
            "role": g.role.value,
            "all_codes": g.is_all_codes,
            "codes": [c.code for c in g.codes],
            "contact_email": g.contact_email,
            "valid_from": _utc(g.valid_from_dt),
            "valid_to": _utc(g.valid_to_dt),
            "errand": errands.get(g.source_errand_id or 0),
        }
        for g in grants
    ]


def _references(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    rows = session.execute(select(Errand.id, Errand.reference).where(Errand.id.in_(wanted)))
    return {id_: reference for id_, reference in rows}


def _permissions(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ServicePermission, EmployerCode, Employer)
        .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
        .join(Employer, Employer.id == EmployerCode.employer_id)
        .where(ServicePermission.person_id == person.id)
        .order_by(ServicePermission.valid_from_dt, ServicePermission.id)
    )
    return [
        {
            "employer": _employer(employer),
            "employer_code": code.code,
            "service": permission.service.value,
            "valid_from": _utc(permission.valid_from_dt),
            "valid_to": _utc(permission.valid_to_dt),
        }
        for permission, code, employer in rows
    ]


def _changes(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.execute(
        select(PermissionChange, Employer)
        .join(Employer, Employer.id == PermissionChange.employer_id)
        .where(PermissionChange.person_id == person.id)
        .order_by(PermissionChange.id)
    )
    codes = {id_: code for id_, code in session.execute(select(EmployerCode.id, EmployerCode.code))}
    return [
        {
            "when": _utc(change.created_dt),
            "kind": change.kind.value,
            "action": change.action.value,
            "employer": _employer(employer),
            "role": change.role.value if change.role else None,
            "service": change.service.value if change.service else None,
            "employer_code": codes.get(change.employer_code_id or 0),
            "codes": change.codes,
        }
        for change, employer in rows
    ]


def _requests(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(PermissionRequest)
        .where(PermissionRequest.person_id == person.id)
        .options(selectinload(PermissionRequest.employer_code))
        .order_by(PermissionRequest.id)
    )
    return [
        {
            "employer_code": r.employer_code.code,
            "service": r.service.value,
            "message": r.message,
            "asked": _utc(r.created_dt),
            "decided": _utc(r.decided_dt),
            "outcome": r.outcome.value if r.outcome else None,
        }
        for r in rows
    ]


def _confirmations(session: Session, person: Person) -> list[dict[str, Any]]:
    rows = session.execute(
        select(InactivityConfirmation, Employer)
        .join(Employer, Employer.id == InactivityConfirmation.employer_id)
        .where(InactivityConfirmation.person_id == person.id)
        .order_by(InactivityConfirmation.id)
    )
    return [{"employer": _employer(e), "confirmed": _utc(c.confirmed_dt)} for c, e in rows]


_PARTS = {"person": "subject", "orderer": "subject", "replacement": "replacement"}


def _own_parts(errand: Errand, personnummer: str) -> dict[str, dict[str, Any]]:
    """What the errand's form says about this person, by their capacity in it."""
    try:
        progress = errand.progress
    except InvalidFormData:
        return {}
    parts: dict[str, dict[str, Any]] = {}
    signatories = (("signatory", "signatory"), ("co_signatory", "signatory"))
    for field, capacity in (*_PARTS.items(), *signatories):
        details = getattr(progress, field, None)
        if details is not None and getattr(details, "personnummer", None) == personnummer:
            parts[capacity] = {k: v for k, v in details.to_json().items() if v not in ("", None)}
    return parts


def _errands(session: Session, person: Person | None, personnummer: str) -> list[dict[str, Any]]:
    form = Errand.form_data
    named = or_(
        Errand.subject_personnummer == personnummer,
        form["personnummer"].as_string() == personnummer,
        form["signatory_personnummer"].as_string() == personnummer,
        form["co_signatory_personnummer"].as_string() == personnummer,
        form[("replacement", "personnummer")].as_string() == personnummer,
    )
    where = or_(named, Errand.submitted_by_id == person.id) if person else named
    errands = session.scalars(
        select(Errand).where(where).options(selectinload(Errand.employer)).order_by(Errand.id)
    )
    found = []
    for errand in errands:
        parts = _own_parts(errand, personnummer)
        capacities = sorted(parts)
        if person is not None and errand.submitted_by_id == person.id:
            capacities.insert(0, "submitter")
        if errand.subject_personnummer == personnummer and "subject" not in capacities:
            capacities.append("subject")
        found.append(
            {
                "reference": errand.reference,
                "kind": errand.kind.value,
                "state": errand.state.value,
                "employer": _employer(errand.employer),
                "capacities": capacities,
                "details": parts,
                "created": _utc(errand.created_dt),
                "received": _utc(errand.received_dt),
                "decided": _utc(errand.decided_dt),
            }
        )
    return found


def _invitations(session: Session, personnummer: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SigningInvitation)
        .where(SigningInvitation.signatory_personnummer == personnummer)
        .options(selectinload(SigningInvitation.errand))
        .order_by(SigningInvitation.id)
    )
    return [
        {
            "errand": i.errand.reference,
            "kind": i.kind.value,
            "email": i.email,
            "sent": _utc(i.created_dt),
            "ended": _utc(i.ended_dt),
            "outcome": i.outcome.value if i.outcome else None,
        }
        for i in rows
    ]


def _emails(session: Session, addresses: set[str]) -> list[dict[str, Any]]:
    """Every email sent to one of the person's addresses, alone or in a group's envelope.
    A group's email (the employer's orderers told of someone's role) is listed with its
    subject but without its text: that is about the other person."""
    if not addresses:
        return []
    group = cast(EmailMessage.group_addresses, String)
    emails = session.scalars(
        select(EmailMessage)
        .where(
            or_(
                EmailMessage.to_address.in_(addresses),
                *(group.contains(json.dumps(a), autoescape=True) for a in addresses),
            )
        )
        .order_by(EmailMessage.id)
    )
    found = []
    for email in emails:
        to = email.to_address
        if email.group_addresses is not None:  # to a group: this person's address only
            to = next((a for a in email.group_addresses if a in addresses), "")
            if not to:
                continue
        found.append(
            {
                "to": to,
                "subject": email.subject,
                "template": email.template,
                "language": email.language,
                "queued": _utc(email.created_dt),
                "sent": _utc(email.sent_dt),
                "text": email.text_body if email.group_addresses is None else None,
            }
        )
    return found


def _logins(session: Session, person: Person) -> list[str | None]:
    return [
        _utc(when)
        for when in session.scalars(
            select(AuditEvent.occurred_dt)
            .where(
                AuditEvent.action == "login.bankid",
                AuditEvent.object_type == "person",
                AuditEvent.object_id == str(person.id),
            )
            .order_by(AuditEvent.id)
        )
    ]


def collect(session: Session, key: bytes, personnummer: str) -> dict[str, Any]:
    """Everything the product holds about the person with this personnummer, as JSON
    values (times as UTC, ``…Z``); every category is there, empty when none is held."""
    person = session.scalar(select(Person).where(Person.personnummer == personnummer))
    staff = session.scalar(select(StaffMember).where(StaffMember.personnummer == personnummer))
    grants = (
        list(session.scalars(select(RoleGrant).where(RoleGrant.person_id == person.id)))
        if person
        else []
    )
    invitations = _invitations(session, personnummer)
    addresses = {a for a in (person.email if person else None, *(g.contact_email for g in grants))}
    addresses |= {i["email"] for i in invitations}
    addresses.discard(None)
    if staff is not None:
        addresses.add(staff.email)
    return {
        "format": FORMAT,
        "version": VERSION,
        "personnummer": personnummer,
        "person": {
            "given_name": person.given_name,
            "family_name": person.family_name,
            "email": person.email,
            "language": person.language,
            "registered": _utc(person.created_dt),
            "last_login": _utc(person.last_login_dt),
        }
        if person
        else None,
        "staff_member": {
            "name": staff.name,
            "email": staff.email,
            "caseworker": staff.is_caseworker,
            "intake_clerk": staff.is_intake_clerk,
            "team_lead": staff.is_team_lead,
            "active": staff.is_active,
        }
        if staff
        else None,
        "roles": _roles(session, person) if person else [],
        "service_permissions": _permissions(session, person) if person else [],
        "permission_changes": _changes(session, person) if person else [],
        "permission_requests": _requests(session, person) if person else [],
        "inactivity_confirmations": _confirmations(session, person) if person else [],
        "errands": _errands(session, person, personnummer),
        "signing_invitations": invitations,
        "signatory_register": [
            {"orgnr": e.orgnr, "name": e.name, "capacity": e.capacity}
            for e in session.scalars(
                select(SignatoryRegisterEntry)
                .where(SignatoryRegisterEntry.personnummer == personnummer)
                .order_by(SignatoryRegisterEntry.id)
            )
        ],
        "emails": _emails(session, {a for a in addresses if a}),
        "logins": _logins(session, person) if person else [],
        "access_log": [
            {
                "when": _utc(look.viewed_dt),
                "by": "staff" if look.by_staff else "api",
                "who": look.who,
                "what": look.what,
                "object": look.object_ref,
                "reason": look.reason,
            }
            for look in who_looked(session, key, personnummer)
        ],
    }


# --- making and delivering it ------------------------------------------------------------


def _attach(
    session: Session, extract: RegisterExtract, content: bytes, filename: str, media_type: str
) -> ErrandDocument:
    document = ErrandDocument(
        register_extract_id=extract.id,
        kind=DocumentKind.REGISTER_EXTRACT,
        media_type=media_type,
        filename=filename,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )
    session.add(document)
    return document


class NotSealed(Exception):
    """The extract could not be sealed: the seal, its timestamp authority or a revocation
    responder was unavailable. Nothing of it may be kept (the caller rolls back); the
    request can be made again."""


def make_extract(
    session: Session,
    key: bytes,
    agent: Agent,
    personnummer: str,
    *,
    request_note: str,
    language: str,
    material: Callable[[], SealMaterial],
) -> RegisterExtract:
    """Make the person's register extract: the request recorded, the making logged as a
    view of their data (so the extract lists it), the JSON and the sealed PDF/A (the JSON
    attached inside it) kept as the extract's documents, the whole audited. Raises
    :class:`NotSealed` when sealing fails (``material`` gives the seal when it is needed)."""
    assert agent.id is not None
    extract = RegisterExtract(
        reference=reference_with_prefix("RU"),
        subject_hash=subject_hash(key, personnummer),
        language=language,
        request_note=request_note.strip(),
        made_by_staff_id=agent.id,
    )
    session.add(extract)
    session.flush()
    record_view(
        session,
        key,
        agent,
        [personnummer],
        ViewKind.REGISTER_EXTRACT,
        extract.reference,
        request_note,
    )
    data = {
        "reference": extract.reference,
        "made": _utc(utcnow()),
        **collect(session, key, personnummer),
    }
    as_json = json.dumps(data, ensure_ascii=False, indent=2).encode()
    json_name = f"registerutdrag-{extract.reference}.json"
    rendered = render_register_extract(data, lang=language)
    try:
        pdf = seal_pdf(
            rendered,
            material=material(),
            evidence=[
                Evidence(json_name, as_json, JSON_MEDIA_TYPE, "The register extract as JSON")
            ],
            signer_name=None,
            lang=language,
        )
    except Exception as exc:  # the seal's files, the TSA's client, a responder: anything
        raise NotSealed(f"{type(exc).__name__}: {exc}"[:200]) from exc
    documents = [
        _attach(session, extract, pdf, f"registerutdrag-{extract.reference}.pdf", PDF_MEDIA_TYPE),
        _attach(session, extract, as_json, json_name, JSON_MEDIA_TYPE),
    ]
    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action="register_extract.made",
        object_type="register_extract",
        object_id=extract.id,
        data={
            "reference": extract.reference,
            "documents": {d.filename: d.sha256 for d in documents},
        },
    )
    return extract


def record_not_sealed(session: Session, agent: Agent, failure: NotSealed) -> None:
    """Audit a register extract that could not be sealed (why; never whose), and log it."""
    log.warning("register extract not sealed", error=str(failure))
    record_event(
        session,
        actor=agent.audit_label,
        action="register_extract.not_sealed",
        object_type="register_extract",
        object_id="-",
        data={"error": str(failure)},
    )


def deliver_extract(session: Session, agent: Agent, extract: RegisterExtract, note: str) -> None:
    """Record that the extract reached the person, and how; audited. Once."""
    if extract.delivered_dt is not None:
        raise AlreadyDelivered(extract.reference)
    extract.delivered_dt = utcnow()
    extract.delivered_by_staff_id = agent.id
    extract.delivery_note = note.strip()
    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action="register_extract.delivered",
        object_type="register_extract",
        object_id=extract.id,
        data={"reference": extract.reference},  # the note (an address, say) stays off the chain
    )


def find_extract(session: Session, reference: str) -> RegisterExtract | None:
    return session.scalar(
        select(RegisterExtract)
        .where(RegisterExtract.reference == reference)
        .options(selectinload(RegisterExtract.made_by), selectinload(RegisterExtract.delivered_by))
    )


def extract_documents(session: Session, extract: RegisterExtract) -> list[ErrandDocument]:
    return list(
        session.scalars(
            select(ErrandDocument)
            .where(ErrandDocument.register_extract_id == extract.id)
            .order_by(ErrandDocument.id)
        )
    )


def open_document(
    session: Session, agent: Agent, extract: RegisterExtract, document_id: int
) -> ErrandDocument | None:
    """One of this extract's documents (never another's, whatever the id), its opening
    logged as a view of the person's data."""
    document = session.scalar(
        select(ErrandDocument).where(
            ErrandDocument.id == document_id, ErrandDocument.register_extract_id == extract.id
        )
    )
    if document is not None:
        record_hashed_view(
            session,
            agent,
            [extract.subject_hash],
            ViewKind.REGISTER_EXTRACT_DOCUMENT,
            f"{extract.reference}/{document_id}",
        )
    return document


def recent_extracts(session: Session, limit: int = 50) -> list[RegisterExtract]:
    return list(
        session.scalars(
            select(RegisterExtract)
            .options(selectinload(RegisterExtract.made_by))
            .order_by(RegisterExtract.id.desc())
            .limit(limit)
        )
    )
