"""Every (state, action) pair on PostgreSQL: allowed ones move and audit atomically,
all others raise IllegalTransition and change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.registrations.models import Channel, Errand, ErrandKind
from tests.conftest import ANNA, DAVID, EVA, INGRID, KARIN, person_id, staff_id
from tests.support import REGISTRATION
from workflows.outbox import OutboxMessage
from workflows.state_machine import transition
from workflows.states import (
    EXPIRING_STATES,
    RESUME_STATE_OF_STEP,
    STEPS_ON_ENTRY,
    TRANSITION_TABLE,
    Action,
    ErrandState,
    IllegalTransition,
    Party,
)


@pytest.fixture
def db(session: Session) -> Session:
    """The test's session (its transaction is rolled back after the test, as every test's)."""
    return session


def _errand_in(session: Session, state: ErrandState) -> Errand:
    now = utcnow() - timedelta(minutes=5)
    errand = Errand(
        kind=ErrandKind.REGISTRATION,
        channel=Channel.E_SIGN,
        state=state,
        employer_id=1,
        subject_personnummer="198507049859",
        submitted_by_id=person_id(session, DAVID),
        received_dt=now,
        decided_dt=now,
        decided_by_staff_id=staff_id(session, INGRID),
        failed_step="apply",
        failure_reason="broker gone",
        form_data={**REGISTRATION, "orgnr": "2021004920", "signatory_personnummer": EVA},
    )
    session.add(errand)
    session.flush()
    return errand


def _agents(session: Session) -> dict[Party, Agent]:
    return {
        Party.SUBMITTER: Agent(AgentKind.PERSON, person_id(session, DAVID), DAVID),
        Party.CASEWORKER: Agent(
            AgentKind.STAFF, staff_id(session, INGRID), INGRID, is_caseworker=True
        ),
        Party.INTAKE_CLERK: Agent(
            AgentKind.STAFF, staff_id(session, KARIN), KARIN, is_intake_clerk=True
        ),
        Party.SYSTEM: Agent.system("test"),
        # The signatory the form names, logged in with their own e-ID.
        Party.SIGNATORY: Agent(AgentKind.PERSON, person_id(session, EVA), EVA),
        # Someone the caller vouches for as the employer's orderer or signatory.
        Party.EMPLOYER: Agent(AgentKind.PERSON, person_id(session, ANNA), ANNA),
    }


def _vouched(party: Party) -> Party | None:
    return Party.EMPLOYER if party is Party.EMPLOYER else None


def _audit_count(session: Session) -> int:
    return session.scalar(select(func.count(AuditEvent.id))) or 0


def _outbox_count(session: Session) -> int:
    return session.scalar(select(func.count(OutboxMessage.id))) or 0


def _snapshot(errand: Errand) -> tuple:
    return (
        errand.state,
        errand.received_dt,
        errand.decided_dt,
        errand.failed_step,
        errand.version,
    )


PAIRS = [(s, a) for s in ErrandState for a in Action]


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_state_action_pair(db: Session, state: ErrandState, action: Action) -> None:
    agents = _agents(db)
    rule = TRANSITION_TABLE.get((state, action))
    errand = _errand_in(db, state)
    forbidden = [p for p in Party if rule is None or p not in rule.allowed_parties]

    for party in forbidden:
        before, audits, messages = _snapshot(errand), _audit_count(db), _outbox_count(db)
        with pytest.raises(IllegalTransition) as raised:
            transition(db, errand, action, agents[party], vouched=_vouched(party))
        assert action.value in str(raised.value) and state.value in str(raised.value)
        assert _snapshot(errand) == before
        assert (_audit_count(db), _outbox_count(db)) == (audits, messages)

    if rule is None:
        return
    party = sorted(rule.allowed_parties)[0]
    audits = _audit_count(db)
    inner = db.begin_nested()
    target = transition(
        db,
        errand,
        action,
        agents[party],
        reason="test",
        failed_step="verify" if action is Action.FAIL else None,
        vouched=_vouched(party),
    )
    expected = RESUME_STATE_OF_STEP["apply"] if action is Action.RETRY else rule.target
    assert target == expected and errand.state == expected
    event = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert _audit_count(db) == audits + 1
    assert event.action == f"errand.{action.value}"
    assert event.data["from"] == state.value and event.data["to"] == expected.value
    steps = sorted(
        db.scalars(
            select(OutboxMessage.actor_name).where(OutboxMessage.errand_id == errand.id)
        ).all()
    )
    assert steps == sorted(STEPS_ON_ENTRY.get(expected, ()))
    assert (errand.expires_dt is not None) == (expected in EXPIRING_STATES)
    # Same transaction: undoing it takes the state change and its audit event together.
    inner.rollback()
    db.expire_all()
    assert db.get(Errand, errand.id).state == state  # type: ignore[union-attr]
    assert _audit_count(db) == audits


def test_caseworker_cannot_decide_own_errand(db: Session) -> None:
    errand = _errand_in(db, ErrandState.IN_REVIEW)
    # The same human as the submitter, signed in as SPV staff.
    self_deciding = Agent(AgentKind.STAFF, staff_id(db, INGRID), DAVID, is_caseworker=True)
    for action in (Action.APPROVE, Action.REJECT):
        with pytest.raises(IllegalTransition, match="four eyes"):
            transition(db, errand, action, self_deciding)
    assert errand.state is ErrandState.IN_REVIEW


def test_caseworker_cannot_decide_errand_about_themselves(db: Session) -> None:
    errand = _errand_in(db, ErrandState.IN_REVIEW)
    errand.subject_personnummer = INGRID
    caseworker = Agent(AgentKind.STAFF, staff_id(db, INGRID), INGRID, is_caseworker=True)
    with pytest.raises(IllegalTransition, match="four eyes"):
        transition(db, errand, Action.APPROVE, caseworker)


def test_other_person_is_not_the_submitter(db: Session) -> None:
    errand = _errand_in(db, ErrandState.DRAFT)
    stranger = Agent(AgentKind.PERSON, person_id(db, "198112189876"), "198112189876")
    with pytest.raises(IllegalTransition, match="nobody"):
        transition(db, errand, Action.WITHDRAW, stranger)
