"""Submissions as the submitter sees them: create, sign, withdraw, list."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.access import service as access
from app.access.models import ORDERER_ROLES, Person, RoleGrant
from app.audit.service import record_event
from app.core.agents import Agent, AgentKind
from app.registrations.models import Channel, Submission, SubmissionKind
from workflows.state_machine import transition
from workflows.states import PENDING_STATES, Action, SubmissionState


class FormProblem(Exception):
    """Input that is well-formed but not acceptable; ``code`` names the rule."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


class NotYours(Exception):
    """The submission does not exist or belongs to someone else (the two look the same)."""


@dataclass(frozen=True)
class RegistrationData:
    orgnr: str
    personnummer: str
    given_name: str
    family_name: str
    email: str
    role: str
    signatory_name: str
    signatory_personnummer: str
    employer_codes: tuple[str, ...] = ()


def _require_person(agent: Agent) -> int:
    if agent.kind is not AgentKind.PERSON or agent.id is None:
        raise PermissionError("only a signed-in person submits errands")
    return agent.id


def create_registration(session: Session, agent: Agent, data: RegistrationData) -> Submission:
    """A draft registration, after the rules a form can be told about at once."""
    submitter_id = _require_person(agent)
    employer = access.find_employer(session, data.orgnr)
    if employer is None:
        raise FormProblem("orgnr", "unknown_employer")
    unknown = set(data.employer_codes) - {c.code for c in employer.codes}
    if unknown:
        raise FormProblem("employer_codes", "code_not_of_employer")
    already = session.scalar(
        select(RoleGrant.id)
        .join(RoleGrant.person)
        .where(
            RoleGrant.employer_id == employer.id,
            RoleGrant.role.in_(ORDERER_ROLES),
            RoleGrant.valid_to_dt.is_(None),
            Person.personnummer == data.personnummer,
        )
    )
    if already:
        raise FormProblem("personnummer", "already_orderer")
    pending = session.scalar(
        select(Submission.id).where(
            Submission.employer_id == employer.id,
            Submission.subject_personnummer == data.personnummer,
            Submission.state.in_(PENDING_STATES | {SubmissionState.DRAFT}),
        )
    )
    if pending:
        raise FormProblem("personnummer", "pending_errand")
    form_data = asdict(data)
    form_data["employer_codes"] = list(data.employer_codes)
    submission = Submission(
        kind=SubmissionKind.REGISTRATION,
        form_data=form_data,
        employer_id=employer.id,
        subject_personnummer=data.personnummer,
        submitted_by_id=submitter_id,
    )
    session.add(submission)
    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action="submission.created",
        object_type="submission",
        object_id=submission.id,
        data={"kind": submission.kind.value, "reference": submission.reference},
    )
    return submission


def own_submission(session: Session, agent: Agent, reference: str) -> Submission:
    submission = session.scalar(
        select(Submission)
        .where(Submission.reference == reference)
        .options(selectinload(Submission.employer), selectinload(Submission.submitted_by))
    )
    if (
        submission is None
        or submission.submitted_by_id != agent.id
        or (agent.kind is not AgentKind.PERSON)
    ):
        raise NotYours(reference)
    return submission


def own_submissions(session: Session, agent: Agent) -> list[Submission]:
    person_id = _require_person(agent)
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.submitted_by_id == person_id)
            .options(selectinload(Submission.employer))
            .order_by(Submission.created_dt.desc())
        )
    )


def sign_with_demo_signature(session: Session, agent: Agent, submission: Submission) -> None:
    """Demo and tests only: stands in for the BankID signature until e-ID signing exists."""
    transition(session, submission, Action.REQUEST_SIGNATURE, agent)
    submission.channel = Channel.E_SIGN
    signer = Agent.system("demo_signing")
    transition(session, submission, Action.SIGN, signer, data={"method": "demo"})
    transition(session, submission, Action.RECEIVE, signer)


def withdraw(session: Session, agent: Agent, submission: Submission) -> None:
    transition(session, submission, Action.WITHDRAW, agent)
