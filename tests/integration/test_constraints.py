"""What must always hold is enforced by the database itself, whatever code writes to it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.access.models import Role, RoleGrant
from app.audit.models import AuditEvent
from app.registrations.models import Errand, ErrandKind
from tests.conftest import ANNA, DAVID, person_id
from workflows.states import ErrandState


def test_orderer_grant_needs_a_source_errand(session: Session) -> None:
    session.add(RoleGrant(person_id=person_id(session, DAVID), employer_id=1, role=Role.ORDERER))
    with pytest.raises(IntegrityError, match="orderer_from_errand"):
        session.flush()


def test_administrator_needs_an_appointing_person(session: Session) -> None:
    session.add(
        RoleGrant(person_id=person_id(session, DAVID), employer_id=1, role=Role.ADMINISTRATOR)
    )
    with pytest.raises(IntegrityError, match="administrator_appointed_by_person"):
        session.flush()


def test_one_active_grant_per_person_employer_and_role(session: Session) -> None:
    existing = session.scalars(
        select(RoleGrant).where(RoleGrant.role == Role.ADMINISTRATOR)
    ).first()
    assert existing is not None
    session.add(
        RoleGrant(
            person_id=existing.person_id,
            employer_id=existing.employer_id,
            role=Role.ADMINISTRATOR,
            granted_by_person_id=person_id(session, ANNA),
        )
    )
    with pytest.raises(IntegrityError, match="uq_role_grant_active"):
        session.flush()


def test_received_errand_needs_channel_and_date(session: Session) -> None:
    session.add(
        Errand(
            kind=ErrandKind.REGISTRATION,
            state=ErrandState.IN_REVIEW,
            employer_id=1,
            submitted_by_id=person_id(session, DAVID),
        )
    )
    with pytest.raises(IntegrityError, match="received_has_channel_and_employer"):
        session.flush()


def test_unknown_state_is_refused_by_the_database(session: Session) -> None:
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE errand SET state = 'lost' WHERE id = 1"))


def test_audit_events_cannot_be_changed_or_deleted(session: Session) -> None:
    assert session.scalar(select(AuditEvent.id).limit(1)) is not None
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(update(AuditEvent).values(action="rewritten"))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_event"))
