"""Who a completed BankID identification signs in as."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.service import find_or_create_person
from app.audit.service import record_event
from app.core.agents import AgentKind
from app.core.i18n import SUPPORTED_LANGS
from app.db import utcnow
from app.eid.service import Identity
from app.staff.models import StaffMember


def resolve_login(
    session: Session, identity: Identity, language: str | None = None
) -> tuple[AgentKind, int]:
    """SPV staff sign in as staff; anyone else as a person (created at first login), whose
    emails from now on are in ``language``, the one they log in with."""
    staff = session.scalar(
        select(StaffMember).where(
            StaffMember.personnummer == identity.personnummer, StaffMember.is_active
        )
    )
    if staff is not None:
        kind, agent_id = AgentKind.STAFF, staff.id
    else:
        person = find_or_create_person(
            session, identity.personnummer, identity.given_name, identity.family_name
        )
        person.last_login_dt = utcnow()
        if language in SUPPORTED_LANGS:
            person.language = language
        kind, agent_id = AgentKind.PERSON, person.id
    record_event(
        session,
        actor=f"{kind.value}:{agent_id}",
        action="login.bankid",
        object_type=kind.value,
        object_id=agent_id,
    )
    return kind, agent_id
