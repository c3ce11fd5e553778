"""Submissions as the submitter sees them: drafts saved step by step, then signed or posted.

Plain functions over a session and the acting agent. Each ``save_*`` checks the
rules the person can be told about at once and raises ``FormProblem`` naming the
field; the pipeline's verification checks everything again after submission.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.access import service as access
from app.access.models import ORDERER_ROLES, Employer, Person, Role, RoleGrant
from app.audit.service import record_submission_event
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.registrations.models import (
    Channel,
    CompletionRequest,
    DocumentKind,
    Submission,
    SubmissionDocument,
    SubmissionKind,
)
from workflows.state_machine import transition
from workflows.states import EXPIRES_AFTER, PENDING_STATES, Action, SubmissionState

REGISTRATION_STEPS = ("employer", "codes", "person", "signatory")
REMOVAL_STEPS = ("employer", "orderer", "replacement", "signatory")


def steps_of(kind: SubmissionKind) -> tuple[str, ...]:
    return REGISTRATION_STEPS if kind is SubmissionKind.REGISTRATION else REMOVAL_STEPS


class FormProblem(Exception):
    """Input that is well-formed but not acceptable; ``code`` names the rule."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


class NotYours(Exception):
    """The submission does not exist or belongs to someone else (the two look the same)."""


def _require_person(agent: Agent) -> int:
    if agent.kind is not AgentKind.PERSON or agent.id is None:
        raise PermissionError("only a signed-in person submits errands")
    return agent.id


def _audit(
    session: Session, agent: Agent, submission: Submission, action: str, **data: Any
) -> None:
    record_submission_event(
        session, agent.audit_label, submission.id, action.removeprefix("submission."), **data
    )


# ---- reading ---------------------------------------------------------------------------


def own_submission(session: Session, agent: Agent, reference: str) -> Submission:
    submission = session.scalar(
        select(Submission)
        .where(Submission.reference == reference)
        .options(
            selectinload(Submission.employer).selectinload(Employer.codes),
            selectinload(Submission.submitted_by),
            selectinload(Submission.documents),
        )
    )
    if (
        submission is None
        or agent.kind is not AgentKind.PERSON
        or submission.submitted_by_id != agent.id
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


def is_lapsed(submission: Submission) -> bool:
    return submission.expires_dt is not None and submission.expires_dt <= utcnow()


def completed_steps(submission: Submission) -> list[str]:
    return list(submission.form_data.get("completed_steps", []))


def next_step(submission: Submission) -> str:
    """The first step not yet done, or ``review`` when all are."""
    done = set(completed_steps(submission))
    return next((s for s in steps_of(submission.kind) if s not in done), "review")


def document(submission: Submission, kind: DocumentKind) -> SubmissionDocument | None:
    return next((d for d in reversed(submission.documents) if d.kind is kind), None)


# ---- rules shared by the steps ---------------------------------------------------------


def _employer(session: Session, orgnr: str) -> Employer:
    employer = access.find_employer(session, orgnr)
    if employer is None:
        raise FormProblem("orgnr", "unknown_employer")
    return employer


def _orderer_grants(session: Session, employer_id: int, personnummer: str) -> list[RoleGrant]:
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


def _other_pending_errand(session: Session, submission: Submission, personnummer: str) -> bool:
    return (
        session.scalar(
            select(Submission.id)
            .where(
                Submission.id != submission.id,
                Submission.employer_id == submission.employer_id,
                Submission.subject_personnummer == personnummer,
                Submission.state.in_(PENDING_STATES | {SubmissionState.DRAFT}),
            )
            .limit(1)
        )
        is not None
    )


def would_leave_no_orderer(session: Session, submission: Submission) -> bool:
    """A removal with no replacement of the employer's only orderer (rule 8)."""
    data = submission.form_data
    if submission.kind is not SubmissionKind.REMOVAL or data.get("replacement"):
        return False
    if submission.employer_id is None or not data.get("personnummer"):
        return False
    holders = session.scalars(
        select(Person.personnummer)
        .join(RoleGrant, RoleGrant.person_id == Person.id)
        .where(
            RoleGrant.employer_id == submission.employer_id,
            RoleGrant.role == Role.ORDERER,
            RoleGrant.valid_to_dt.is_(None),
        )
    ).all()
    return set(holders) <= {data["personnummer"]}


def _complete(submission: Submission, step: str, values: dict[str, Any]) -> None:
    done = completed_steps(submission)
    if step not in done:
        done.append(step)
    submission.form_data = {**submission.form_data, **values, "completed_steps": done}


# ---- drafts ----------------------------------------------------------------------------


def start_draft(
    session: Session, agent: Agent, kind: SubmissionKind, orgnr: str, language: str = "sv"
) -> Submission:
    """A new draft for the employer with ``orgnr`` (the first step of both forms)."""
    submitter_id = _require_person(agent)
    employer = _employer(session, orgnr)
    submission = Submission(
        kind=kind,
        employer_id=employer.id,
        submitted_by_id=submitter_id,
        language=language if language in ("sv", "en") else "sv",
        expires_dt=utcnow() + EXPIRES_AFTER[SubmissionState.DRAFT],
        form_data={},
    )
    submission.employer = employer
    _complete(submission, "employer", {"orgnr": orgnr, "employer_name": employer.name})
    session.add(submission)
    session.flush()
    _audit(
        session,
        agent,
        submission,
        "submission.created",
        kind=kind.value,
        reference=submission.reference,
    )
    return submission


def save_employer(session: Session, agent: Agent, submission: Submission, orgnr: str) -> None:
    employer = _employer(session, orgnr)
    if employer.id != submission.employer_id:
        # Another employer: its codes and orderers differ, so those steps start again.
        submission.form_data = {"completed_steps": []}
        submission.employer_id = employer.id
        submission.employer = employer
    _complete(submission, "employer", {"orgnr": orgnr, "employer_name": employer.name})
    _audit(session, agent, submission, "submission.step_saved", step="employer")


def save_codes(
    session: Session, agent: Agent, submission: Submission, all_codes: bool, codes: list[str]
) -> None:
    assert submission.employer is not None
    owned = {c.code for c in submission.employer.codes}
    if not all_codes and (not codes or set(codes) - owned):
        raise FormProblem("codes", "code_not_of_employer")
    _complete(
        submission,
        "codes",
        {"all_codes": all_codes, "employer_codes": [] if all_codes else sorted(codes)},
    )
    _audit(session, agent, submission, "submission.step_saved", step="codes")


PERSON_FIELDS = ("personnummer", "given_name", "family_name", "title", "email", "phone", "role")


def _person_values(values: dict[str, Any]) -> dict[str, Any]:
    person = {k: (values.get(k) or "").strip() for k in PERSON_FIELDS}
    Role(person["role"])  # raises for anything but a known role
    if person["role"] not in ORDERER_ROLES:
        raise FormProblem("role", "not_an_orderer_role")
    return person


def save_person(
    session: Session, agent: Agent, submission: Submission, values: dict[str, Any]
) -> None:
    person = _person_values(values)
    assert submission.employer_id is not None
    if _orderer_grants(session, submission.employer_id, person["personnummer"]):
        raise FormProblem("personnummer", "already_orderer")
    if _other_pending_errand(session, submission, person["personnummer"]):
        raise FormProblem("personnummer", "pending_errand")
    submission.subject_personnummer = person["personnummer"]
    _complete(submission, "person", person)
    _audit(session, agent, submission, "submission.step_saved", step="person")


def save_orderer_to_remove(
    session: Session,
    agent: Agent,
    submission: Submission,
    reason: str,
    personnummer: str,
    given_name: str,
    family_name: str,
) -> None:
    assert submission.employer_id is not None
    if reason == "self" and personnummer != agent.personnummer:
        raise FormProblem("personnummer", "self_removal_of_other")
    if not _orderer_grants(session, submission.employer_id, personnummer):
        raise FormProblem("personnummer", "not_an_orderer")
    if _other_pending_errand(session, submission, personnummer):
        raise FormProblem("personnummer", "pending_errand")
    submission.subject_personnummer = personnummer
    _complete(
        submission,
        "orderer",
        {
            "reason": reason,
            "personnummer": personnummer,
            "given_name": given_name.strip(),
            "family_name": family_name.strip(),
        },
    )
    _audit(session, agent, submission, "submission.step_saved", step="orderer")


def save_replacement(
    session: Session, agent: Agent, submission: Submission, values: dict[str, Any] | None
) -> None:
    """``values`` is the new orderer to register in the same errand, or None for none."""
    replacement = None
    if values is not None:
        replacement = _person_values(values)
        assert submission.employer_id is not None
        if replacement["personnummer"] == submission.subject_personnummer:
            raise FormProblem("personnummer", "replacement_is_removed")
        if _orderer_grants(session, submission.employer_id, replacement["personnummer"]):
            raise FormProblem("personnummer", "already_orderer")
    _complete(submission, "replacement", {"replacement": replacement})
    _audit(session, agent, submission, "submission.step_saved", step="replacement")


def save_signatory(
    session: Session, agent: Agent, submission: Submission, name: str, personnummer: str, title: str
) -> None:
    _complete(
        submission,
        "signatory",
        {
            "signatory_name": name.strip(),
            "signatory_personnummer": personnummer,
            "signatory_title": title.strip(),
        },
    )
    _audit(session, agent, submission, "submission.step_saved", step="signatory")


# ---- leaving the draft -----------------------------------------------------------------


def _require_complete(submission: Submission, action: Action) -> None:
    if next_step(submission) != "review":
        from workflows.states import IllegalTransition

        raise IllegalTransition(submission.state, action, "the form is not complete", "incomplete")


def attach_document(
    session: Session,
    submission: Submission,
    kind: DocumentKind,
    content: bytes,
    filename: str,
    media_type: str = "application/pdf",
) -> SubmissionDocument:
    import hashlib

    doc = SubmissionDocument(
        submission_id=submission.id,
        kind=kind,
        media_type=media_type,
        filename=filename,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )
    session.add(doc)
    session.flush()
    session.expire(submission, ["documents"])
    return doc


def print_for_post(
    session: Session, agent: Agent, submission: Submission, printed_pdf: bytes
) -> None:
    """The postal route: the printed form is kept, and SPV waits for the signed paper."""
    _require_complete(submission, Action.PRINT_FOR_POST)
    transition(session, submission, Action.PRINT_FOR_POST, agent)
    submission.channel = Channel.PAPER
    attach_document(
        session, submission, DocumentKind.PRINTED, printed_pdf, f"{submission.reference}.pdf"
    )


def withdraw(session: Session, agent: Agent, submission: Submission) -> None:
    transition(session, submission, Action.WITHDRAW, agent)


def open_completion_request(submission: Submission) -> CompletionRequest | None:
    """The caseworker's unanswered request for more, if the errand waits for one."""
    if submission.state is not SubmissionState.AWAITING_COMPLETION:
        return None
    return next((r for r in reversed(submission.completion_requests) if r.is_open), None)


def answer_completion(
    session: Session, agent: Agent, submission: Submission, answer: str
) -> CompletionRequest:
    """The submitter's answer: the errand goes back to its caseworker and the due date
    runs again from where it stood."""
    request = open_completion_request(submission)
    transition(session, submission, Action.COMPLETE, agent)
    assert request is not None  # awaiting_completion always has an open request
    request.answer = answer.strip()
    request.answered_dt = utcnow()
    session.flush()
    return request


def expire_lapsed(session: Session, limit: int = 200) -> int:
    """Move drafts and errands whose time ran out to ``expired``. Returns how many."""
    lapsed = session.scalars(
        select(Submission)
        .where(Submission.state.in_(EXPIRES_AFTER), Submission.expires_dt <= utcnow())
        .order_by(Submission.expires_dt)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    system = Agent.system("expiry")
    for submission in lapsed:
        transition(session, submission, Action.EXPIRE, system)
    return len(lapsed)


# ---- all steps at once (tests, scripts, a clerk typing in a paper form) ----------------


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
    title: str = "Personalchef"
    phone: str = ""
    signatory_title: str = "Generaldirektör"
    employer_codes: tuple[str, ...] = ()


def _save_signatory_of(
    session: Session, agent: Agent, submission: Submission, data: RegistrationData | RemovalData
) -> None:
    save_signatory(
        session,
        agent,
        submission,
        data.signatory_name,
        data.signatory_personnummer,
        data.signatory_title,
    )


def create_registration(session: Session, agent: Agent, data: RegistrationData) -> Submission:
    """A complete registration draft, every step's rules applied."""
    submission = start_draft(session, agent, SubmissionKind.REGISTRATION, data.orgnr)
    save_codes(session, agent, submission, not data.employer_codes, list(data.employer_codes))
    save_person(session, agent, submission, asdict(data))
    _save_signatory_of(session, agent, submission, data)
    return submission


@dataclass(frozen=True)
class RemovalData:
    orgnr: str
    reason: str
    """``self`` (the orderer removes themself) or ``left``."""
    personnummer: str
    given_name: str
    family_name: str
    signatory_name: str
    signatory_personnummer: str
    signatory_title: str = "Generaldirektör"
    replacement: dict[str, Any] | None = None
    """The new orderer's person fields (as ``save_replacement`` takes them), or None."""


def create_removal(session: Session, agent: Agent, data: RemovalData) -> Submission:
    """A complete removal draft, every step's rules applied."""
    submission = start_draft(session, agent, SubmissionKind.REMOVAL, data.orgnr)
    save_orderer_to_remove(
        session, agent, submission, data.reason, data.personnummer, data.given_name,
        data.family_name,
    )  # fmt: skip
    save_replacement(session, agent, submission, data.replacement)
    _save_signatory_of(session, agent, submission, data)
    return submission
