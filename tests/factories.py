"""Submissions in a given state, made through the same services and transitions as the product."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.agents import Agent, AgentKind
from app.registrations import service as registrations
from app.registrations.models import Channel, Submission
from tests.conftest import DAVID, INGRID, person_id, staff_id
from tests.support import REGISTRATION
from workflows.state_machine import transition
from workflows.states import Action


def david(session: Session) -> Agent:
    return Agent(AgentKind.PERSON, person_id(session, DAVID), DAVID)


def registration_draft(session: Session, **changes: str) -> Submission:
    """David's complete registration of Fredrik Falk at Provverket, still a draft."""
    fields = {
        **REGISTRATION,
        "orgnr": "2021004920",
        "personnummer": "198507049859",
        "signatory_personnummer": "195210039847",
        **changes,
    }
    return registrations.create_registration(
        session, david(session), registrations.RegistrationData(**fields)
    )


def received_by_esignature(session: Session, submission: Submission) -> Submission:
    """What a completed BankID signature does to a draft (without the PDF and seal)."""
    submitter = Agent(
        AgentKind.PERSON, submission.submitted_by_id, submission.submitted_by.personnummer
    )
    transition(session, submission, Action.REQUEST_SIGNATURE, submitter)
    submission.channel = Channel.E_SIGN
    bankid = Agent.system("bankid")
    transition(session, submission, Action.SIGN, bankid)
    transition(session, submission, Action.RECEIVE, bankid)
    return submission


def caseworker(session: Session, personnummer: str = INGRID) -> Agent:
    return Agent(AgentKind.STAFF, staff_id(session, personnummer), personnummer, is_caseworker=True)


def claim_and_approve(session: Session, submission: Submission, personnummer: str = INGRID) -> bool:
    """A caseworker takes the errand and approves it (True when decided)."""
    from app.casework import service as casework

    agent = caseworker(session, personnummer)
    assert casework.claim(session, agent, submission), "already claimed"
    return casework.approve_submission(session, agent, submission)
