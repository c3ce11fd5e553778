"""Who is told about a change, at which address, and in which language."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.access.models import ORDERER_ROLES, Person, RoleGrant
from app.core.i18n import SOURCE_LANG
from app.registrations.models import Errand

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Recipient:
    person: Person
    address: str
    is_affected: bool
    """The person whose permission changed (not one of the orderers told about it)."""


def _address(person: Person, grant: RoleGrant | None = None) -> str | None:
    """The work address given for the role, else the person's own."""
    return (grant.contact_email if grant else None) or person.email


def language_for(person: Person, errand: Errand | None) -> str:
    """The errand's language for its submitter; for anyone else the language they last
    logged in with (Swedish for someone who never has)."""
    if errand is not None and errand.submitted_by_id == person.id:
        return errand.language
    return person.language or SOURCE_LANG


def grant_audience(session: Session, grant: RoleGrant) -> list[Recipient]:
    """The person of ``grant``, then the employer's other active orderers (once each)."""
    recipients: list[Recipient] = []
    seen = {grant.person_id}
    address = _address(grant.person, grant)
    if address:
        recipients.append(Recipient(grant.person, address, True))
    else:
        log.warning("email.no_address", person_id=grant.person_id, grant_id=grant.id)
    orderers = session.scalars(
        select(RoleGrant)
        .where(
            RoleGrant.employer_id == grant.employer_id,
            RoleGrant.role.in_(ORDERER_ROLES),
            RoleGrant.valid_to_dt.is_(None),
        )
        .options(selectinload(RoleGrant.person))
        .order_by(RoleGrant.id)
    )
    for other in orderers:
        if other.person_id in seen:
            continue
        seen.add(other.person_id)
        address = _address(other.person, other)
        if address:
            recipients.append(Recipient(other.person, address, False))
        else:
            log.warning("email.no_address", person_id=other.person_id, grant_id=grant.id)
    return recipients
