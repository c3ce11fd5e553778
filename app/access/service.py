"""Permission store operations. Plain functions: a session and the acting agent, no Flask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.access import changelog
from app.access.models import (
    ORDERER_ROLES,
    ChangeAction,
    Employer,
    EmployerCode,
    Person,
    Role,
    RoleGrant,
    ServicePermission,
)
from app.audit.models import AuditEvent
from app.audit.service import record_event
from app.core.agents import Agent
from app.db import utcnow


def find_person(session: Session, personnummer: str) -> Person | None:
    return session.scalar(select(Person).where(Person.personnummer == personnummer))


def find_or_create_person(
    session: Session,
    personnummer: str,
    given_name: str,
    family_name: str,
    email: str | None = None,
) -> Person:
    person = find_person(session, personnummer)
    if person is None:
        person = Person(
            personnummer=personnummer, given_name=given_name, family_name=family_name, email=email
        )
        session.add(person)
        session.flush()
    elif email and not person.email:
        person.email = email
    return person


def find_employer(session: Session, orgnr: str) -> Employer | None:
    return session.scalar(
        select(Employer).where(Employer.orgnr == orgnr).options(selectinload(Employer.codes))
    )


def find_employer_by_orgnr_or_code(session: Session, query: str) -> Employer | None:
    """The employer with this organisation number (10 digits, or 12 with ``16``, a dash
    allowed) or with this employer code (any case)."""
    text = query.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    employer = None
    if len(digits) in (10, 12):
        employer = session.scalar(select(Employer).where(Employer.orgnr == digits[-10:]))
    if employer is None and text:
        employer = session.scalar(
            select(Employer)
            .join(EmployerCode, EmployerCode.employer_id == Employer.id)
            .where(func.upper(EmployerCode.code) == text.upper())
        )
    return employer


def lock_employer(session: Session, employer_id: int) -> Employer:
    """Serialise role changes for one employer (the at-least-one-orderer rule needs it).

    ``FOR NO KEY UPDATE``: the employer's key does not change, so rows that merely refer
    to the employer (foreign-key checks take ``FOR KEY SHARE``) are not held up.
    """
    return session.scalars(
        select(Employer).where(Employer.id == employer_id).with_for_update(key_share=True)
    ).one()


def register_orderer(
    session: Session,
    agent: Agent,
    *,
    employer: Employer,
    person: Person,
    role: Role,
    code_values: list[str],
    errand_id: int,
    contact_email: str | None = None,
    ends_on: date | None = None,
) -> RoleGrant:
    """Grant the orderer role an approved registration asks for (rules 7 and 9), until
    the end the form gives (``ends_on``), if any."""
    if role not in ORDERER_ROLES:
        raise ValueError(f"a registration grants an orderer role, not {role}")
    grant = RoleGrant(
        person_id=person.id,
        employer_id=employer.id,
        role=role,
        is_all_codes=not code_values,
        source_errand_id=errand_id,
        contact_email=contact_email,
        ends_on=ends_on,
    )
    if code_values:
        grant.codes = list(
            session.scalars(
                select(EmployerCode).where(
                    EmployerCode.employer_id == employer.id, EmployerCode.code.in_(code_values)
                )
            )
        )
    session.add(grant)
    session.flush()
    changelog.role_changed(session, grant, ChangeAction.GRANTED)
    record_event(
        session,
        actor=agent.audit_label,
        action="role_grant.created",
        object_type="role_grant",
        object_id=grant.id,
        data={
            "person_id": person.id,
            "employer_id": employer.id,
            "role": role.value,
            "codes": sorted(code_values) or "all",
            "errand_id": errand_id,
            **({"ends_on": str(ends_on)} if ends_on else {}),
        },
    )
    return grant


def active_grants(session: Session, employer_id: int) -> list[RoleGrant]:
    return list(
        session.scalars(
            select(RoleGrant)
            .where(RoleGrant.employer_id == employer_id, RoleGrant.valid_to_dt.is_(None))
            .options(selectinload(RoleGrant.person), selectinload(RoleGrant.codes))
            .order_by(RoleGrant.role, RoleGrant.id)
        )
    )


@dataclass(frozen=True)
class EmployerContact:
    name: str
    role: Role
    email: str | None


def orderers_and_administrators(session: Session, employer_id: int) -> list[EmployerContact]:
    """Who a user asks for permissions (rule 3), and what SPV tells a caller (rule 10)."""
    return contacts_of(active_grants(session, employer_id))


def contacts_of(grants: list[RoleGrant]) -> list[EmployerContact]:
    """The contacts of an employer's active grants (:func:`active_grants`)."""
    return [
        EmployerContact(g.person.full_name, g.role, g.contact_email or g.person.email)
        for g in grants
    ]


def employers_of_person(session: Session, person_id: int) -> list[Employer]:
    """Employers where the person holds a role or a service permission."""
    via_roles = select(RoleGrant.employer_id).where(
        RoleGrant.person_id == person_id, RoleGrant.valid_to_dt.is_(None)
    )
    via_permissions = (
        select(EmployerCode.employer_id)
        .join(ServicePermission, ServicePermission.employer_code_id == EmployerCode.id)
        .where(ServicePermission.person_id == person_id, ServicePermission.valid_to_dt.is_(None))
    )
    return list(
        session.scalars(
            select(Employer)
            .where(Employer.id.in_(via_roles.union(via_permissions)))
            .order_by(Employer.name)
        )
    )


def orderer_grants(session: Session, employer_id: int, personnummer: str) -> list[RoleGrant]:
    """The person's active (delegated) orderer grants at the employer, e.g. to end them."""
    return list(
        session.scalars(
            select(RoleGrant)
            .join(RoleGrant.person)
            .where(
                RoleGrant.employer_id == employer_id,
                RoleGrant.role.in_(ORDERER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
                Person.personnummer == personnummer,
            )
        )
    )


def grants_of_person(session: Session, person_id: int) -> list[RoleGrant]:
    return list(
        session.scalars(
            select(RoleGrant)
            .where(RoleGrant.person_id == person_id, RoleGrant.valid_to_dt.is_(None))
            .options(selectinload(RoleGrant.employer), selectinload(RoleGrant.codes))
        )
    )


def end_permissions(
    session: Session,
    actor: str,
    permissions: Sequence[ServicePermission],
    *,
    now: datetime,
    **data: Any,
) -> list[AuditEvent]:
    """End ``permissions``, the one way a service permission ends (an orderer's or an
    administrator's change, the recurring review, a planned end): ``valid_to_dt``, the
    permission change log (sessions end, the API's feed sees it) and one audit event
    ``service_permission.ended`` each by ``actor`` (an audit label), with ``data`` and the
    permission's person, service, code and planned end. The caller tells the people."""
    if not permissions:
        return []
    for permission in permissions:
        permission.valid_to_dt = max(now, permission.valid_from_dt)
    session.flush()
    changelog.service_permissions_changed(session, [], permissions)
    return [
        record_event(
            session,
            actor=actor,
            action="service_permission.ended",
            object_type="service_permission",
            object_id=permission.id,
            data={
                **data,
                "person_id": permission.person_id,
                "service": permission.service.value,
                "code": permission.employer_code.code,
                **({"ends_on": str(permission.ends_on)} if permission.ends_on else {}),
            },
        )
        for permission in permissions
    ]


def end_grant(
    session: Session,
    actor: str,
    grant: RoleGrant,
    *,
    errand_id: int | None = None,
    now: datetime | None = None,
    **data: Any,
) -> None:
    """End ``grant``, the one way a role ends (an approved removal errand, an orderer
    removing an administrator, the recurring review, a planned end): ``valid_to_dt``, the
    permission change log (sessions end, the API's feed sees it) and the audit event
    ``role_grant.ended`` by ``actor`` (an audit label) with ``data``. The caller tells the
    people."""
    grant.valid_to_dt = max(now or utcnow(), grant.valid_from_dt)
    if errand_id is not None:
        grant.revoked_by_errand_id = errand_id
    session.flush()
    changelog.role_changed(session, grant, ChangeAction.REVOKED)
    record_event(
        session,
        actor=actor,
        action="role_grant.ended",
        object_type="role_grant",
        object_id=grant.id,
        data={"errand_id": errand_id, **data} if errand_id is not None else data,
        employer_id=grant.employer_id,
    )
