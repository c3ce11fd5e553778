"""Errands as the submitter sees them: drafts saved step by step, then signed or posted.

Plain functions over a session and the acting agent. Each ``save_*`` asks the
employer's roster (``app.access.roster``) what the person may be told at once and
raises ``FormProblem`` naming the field; the pipeline's verification asks it again,
as SPV, after errand. The form's values are typed (``app.registrations.data``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from app.access import service as access
from app.access.models import ORDERER_ROLES, CodeStatus, Employer, Person, RoleGrant
from app.access.roster import Conflict, OpenErrand, RoleHolder, Roster
from app.audit.service import record_errand_event
from app.core.agents import Agent, AgentKind
from app.core.i18n import swedish_time
from app.core.ids import age_on
from app.core.paging import Order, Page, keyset_page
from app.core.text import LIKE_ESCAPE, contains_pattern, without_unsafe_characters
from app.db import utcnow
from app.registers.service import LocalSignatoryRegister, is_signatory, signs_jointly
from app.registrations.codes import ProblemCode, StepWarning
from app.registrations.data import (
    CoSignatoryDetails,
    EmployerDetails,
    FormProgress,
    FormStep,
    OrdererToRemove,
    PersonDetails,
    RegistrationData,
    RegistrationDraft,
    RemovalData,
    RemovalDraft,
    RemovalReason,
    SignatoryDetails,
)
from app.registrations.models import (
    BLANK_DRAFTS,
    Channel,
    CompletionRequest,
    DocumentKind,
    Errand,
    ErrandDocument,
    ErrandKind,
    InvitationOutcome,
    SigningInvitation,
)
from workflows.state_machine import draft_lapse, transition
from workflows.states import (
    EXPIRING_STATES,
    PENDING_STATES,
    Action,
    ErrandState,
    IllegalTransition,
    Refusal,
)


class FormProblem(Exception):
    """Input that is well-formed but not acceptable; ``code`` names the rule."""

    def __init__(self, field: str, code: ProblemCode) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


class NotYours(Exception):
    """The errand does not exist or belongs to someone else (the two look the same)."""


def _require_person(agent: Agent) -> int:
    if agent.kind is not AgentKind.PERSON or agent.id is None:
        raise PermissionError("only a signed-in person submits errands")
    return agent.id


def _audit(session: Session, agent: Agent, errand: Errand, action: str, **data: Any) -> None:
    record_errand_event(
        session, agent.audit_label, errand.id, action.removeprefix("errand."), **data
    )


# ---- reading ---------------------------------------------------------------------------


def own_errand(session: Session, agent: Agent, reference: str) -> Errand:
    errand = session.scalar(
        select(Errand)
        .where(Errand.reference == reference)
        .options(
            selectinload(Errand.employer).selectinload(Employer.codes),
            selectinload(Errand.submitted_by),
            selectinload(Errand.documents),
        )
    )
    if (
        errand is None
        or agent.kind is not AgentKind.PERSON
        or errand.submitted_by_id != agent.id
        or errand.kind is ErrandKind.SIGNATORY_CHANGE
    ):
        raise NotYours(reference)
    return errand


OWN_PAGE_SIZE = 25


def own_errands(
    session: Session,
    agent: Agent,
    *,
    search: str = "",
    page: int = 1,
    after: str = "",
    before: str = "",
) -> Page[Errand]:
    """A page of the errands the person submitted, newest first; ``search`` keeps those
    whose reference, employer (name or organisation number) or subject (name or
    personnummer) contains it."""
    person_id = _require_person(agent)
    # SPV's own review errands are not the submitter's (``ErrandKind.SIGNATORY_CHANGE``).
    query = select(Errand).where(
        Errand.submitted_by_id == person_id, Errand.kind != ErrandKind.SIGNATORY_CHANGE
    )
    text = " ".join(without_unsafe_characters(search).split())
    if text:
        pattern = contains_pattern(text)
        digits = "".join(ch for ch in text if ch.isdigit())
        employers = select(Employer.id).where(Employer.name.ilike(pattern, escape=LIKE_ESCAPE))
        if len(digits) == 10:
            employers = select(Employer.id).where(
                or_(Employer.name.ilike(pattern, escape=LIKE_ESCAPE), Employer.orgnr == digits)
            )
        subject = func.lower(
            func.coalesce(Errand.form_data["given_name"].as_string(), "")
            + " "
            + func.coalesce(Errand.form_data["family_name"].as_string(), "")
        )
        matches: list[ColumnElement[bool]] = [
            Errand.reference.ilike(pattern, escape=LIKE_ESCAPE),
            Errand.employer_id.in_(employers),
            subject.like(pattern.lower(), escape=LIKE_ESCAPE),
        ]
        if len(digits) == 12:
            matches.append(Errand.subject_personnummer == digits)
        query = query.where(or_(*matches))
    return keyset_page(
        session,
        query,
        Order(Errand.created_dt, Errand.id, descending=True),
        lambda e: e.created_dt,
        page=page,
        after=after,
        before=before,
        size=OWN_PAGE_SIZE,
        options=(selectinload(Errand.employer),),
    )


def is_lapsed(errand: Errand) -> bool:
    return errand.expires_dt is not None and errand.expires_dt <= utcnow()


def completed_steps(errand: Errand) -> list[str]:
    return [step.value for step in errand.progress.completed_steps]


def next_step(errand: Errand) -> str:
    """The first step not yet done, or ``review`` when all are."""
    step = errand.progress.next_step()
    return "review" if step is None else step.value


def document(errand: Errand, kind: DocumentKind) -> ErrandDocument | None:
    return next((d for d in reversed(errand.documents) if d.kind is kind), None)


# ---- the employer's roster -------------------------------------------------------------


def load_roster(session: Session, employer_id: int, *, drafts_of: int | None = None) -> Roster:
    """The employer's roster (``app.access.roster``): its active role grants and its open
    errands, that is the submitted ones and the drafts of the person ``drafts_of``."""
    holders = session.execute(
        select(Person.personnummer, RoleGrant.role)
        .join(RoleGrant.person)
        .where(RoleGrant.employer_id == employer_id, RoleGrant.valid_to_dt.is_(None))
    ).all()
    open_states: ColumnElement[bool] = Errand.state.in_(PENDING_STATES)
    if drafts_of is not None:
        own_drafts = and_(Errand.state == ErrandState.DRAFT, Errand.submitted_by_id == drafts_of)
        open_states = or_(open_states, own_drafts)
    errands = session.execute(
        select(Errand.id, Errand.subject_personnummer, Person.personnummer, Errand.state)
        .join(Person, Person.id == Errand.submitted_by_id)
        .where(
            Errand.employer_id == employer_id,
            Errand.subject_personnummer.is_not(None),
            Errand.kind != ErrandKind.SIGNATORY_CHANGE,
            open_states,
        )
    ).all()
    return Roster(
        tuple(RoleHolder(personnummer, role) for personnummer, role in holders),
        tuple(
            OpenErrand(id_, subject, submitter, state is ErrandState.DRAFT)
            for id_, subject, submitter, state in errands
            if subject is not None
        ),
    )


def _asker(agent: Agent) -> str | None:
    """Whom a form step answers: the submitter, or SPV itself when its clerk types in a
    paper form (``app.access.roster``: None is told everything)."""
    return None if agent.entered_by_staff_id is not None else agent.personnummer


def _roster(session: Session, agent: Agent, errand: Errand) -> Roster:
    assert errand.employer_id is not None
    return load_roster(session, errand.employer_id, drafts_of=agent.id)


_REFUSED = {
    Conflict.ALREADY_ORDERER: ProblemCode.ALREADY_ORDERER,
    Conflict.NOT_AN_ORDERER: ProblemCode.NOT_AN_ORDERER,
    Conflict.PENDING_ERRAND: ProblemCode.PENDING_ERRAND,
}
"""The conflicts a form step refuses (a removal leaving no orderer is only warned of)."""


def _refuse(field: str, conflicts: list[Conflict]) -> None:
    for conflict in conflicts:
        if conflict in _REFUSED:
            raise FormProblem(field, _REFUSED[conflict])


def _replacement_of(progress: RemovalDraft) -> str | None:
    return progress.replacement.personnummer if progress.replacement else None


def registered_replacement(session: Session, data: RemovalData) -> PersonDetails | None:
    """The new orderer a removal registers: its replacement, if the form's signature
    covers a registration (``replacement_is_registered``)."""
    if data.replacement is None:
        return None
    covered = replacement_is_registered(
        session, data.orderer, data.employer, data.signatory.personnummer
    )
    return data.replacement if covered else None


def would_leave_no_orderer(session: Session, errand: Errand) -> bool:
    """A removal with no replacement of the employer's only orderer (rule 8), as SPV sees
    it (casework and the apply step)."""
    if errand.kind is not ErrandKind.REMOVAL:
        return False
    progress = errand.progress
    assert isinstance(progress, RemovalDraft) and errand.employer_id is not None
    if progress.orderer is None:
        return False
    replacement = _replacement_of(progress)
    if progress.is_complete and replacement is not None:
        registered = registered_replacement(session, progress.complete())
        replacement = registered.personnummer if registered else None
    roster = load_roster(session, errand.employer_id)
    return roster.would_leave_no_orderer(progress.orderer.personnummer, replacement)


def warns_of_no_orderer_left(session: Session, agent: Agent, errand: Errand) -> bool:
    """Whether the removal form warns its submitter that no orderer would be left: only
    one who may be told who the employer's orderers are is warned."""
    progress = errand.progress
    if not isinstance(progress, RemovalDraft) or progress.orderer is None:
        return False
    conflicts = _roster(session, agent, errand).conflicts_removing(
        progress.orderer.personnummer, _replacement_of(progress), asker=_asker(agent)
    )
    return Conflict.WOULD_LEAVE_NO_ORDERER in conflicts


# ---- what a step says at once ------------------------------------------------------------


def step_warning(
    session: Session, errand: Errand, step: FormStep
) -> tuple[StepWarning, str] | None:
    """What the step says at once about the values saved at it, and a key that names
    those values (the person goes on once they have seen the warning for them): the
    signatory is not in the signatory register for the employer (SPV's verification flags
    it for the caseworker too), or every employer code chosen is closed."""
    progress = errand.progress
    if step is FormStep.SIGNATORY and progress.signatory and progress.employer:
        signer = progress.signatory.personnummer
        orderer = progress.orderer if isinstance(progress, RemovalDraft) else None
        if orderer is not None and orderer.personnummer == signer:
            return None  # an orderer removing themself signs; no register entry needed
        if not is_signatory(LocalSignatoryRegister(session), progress.employer.orgnr, signer):
            return StepWarning.SIGNATORY_NOT_IN_REGISTER, f"{step}:{signer}"
    if (
        step is FormStep.CODES
        and isinstance(progress, RegistrationDraft)
        and progress.employer_codes
        and errand.employer is not None
    ):
        closed = {c.code for c in errand.employer.codes if c.status is CodeStatus.CLOSED}
        if set(progress.employer_codes) <= closed:
            return StepWarning.ONLY_CLOSED_CODES, f"{step}:{','.join(progress.employer_codes)}"
    return None


def login_person(session: Session, agent: Agent) -> Person:
    """The person signed in (their name and personnummer from the e-ID login)."""
    return session.get_one(Person, _require_person(agent))


# ---- drafts ----------------------------------------------------------------------------


def _employer(session: Session, orgnr: str) -> Employer:
    employer = access.find_employer(session, orgnr)
    if employer is None:
        raise FormProblem("orgnr", ProblemCode.UNKNOWN_EMPLOYER)
    return employer


def _save(session: Session, agent: Agent, errand: Errand, step: FormStep, **values: Any) -> None:
    errand.progress = errand.progress.done(step, **values)
    _audit(session, agent, errand, "errand.step_saved", step=step.value)


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")


def _as_typed(value: Any) -> Any:
    """A typed value as it can be stored: text without control characters, or a list."""
    if isinstance(value, list):
        return [_as_typed(v) for v in value][:50]
    return str(value or "").translate(_CONTROL)[:500]


def save_typed(
    session: Session, agent: Agent, errand: Errand, step: FormStep, values: dict[str, Any]
) -> None:
    """ "Spara och fortsätt senare": keep what was typed at ``step``, valid or not; it is
    checked when the person goes on (the step is not done until then)."""
    _require_person(agent)
    typed = {name: _as_typed(value) for name, value in values.items()}
    errand.progress = errand.progress.with_typed(step, typed)
    _audit(session, agent, errand, "errand.step_saved", step=step.value, checked=False)


def start_draft(
    session: Session, agent: Agent, kind: ErrandKind, orgnr: str, language: str = "sv"
) -> Errand:
    """A new draft for the employer with ``orgnr`` (the first step of both forms)."""
    submitter_id = _require_person(agent)
    employer = _employer(session, orgnr)
    errand = Errand(
        kind=kind,
        employer_id=employer.id,
        submitted_by_id=submitter_id,
        language=language if language in ("sv", "en") else "sv",
        expires_dt=utcnow() + draft_lapse(session),
    )
    errand.employer = employer
    errand.progress = BLANK_DRAFTS[kind].done(
        FormStep.EMPLOYER, employer=EmployerDetails(orgnr, employer.name)
    )
    session.add(errand)
    session.flush()
    _audit(
        session,
        agent,
        errand,
        "errand.created",
        kind=kind.value,
        reference=errand.reference,
    )
    return errand


def save_employer(session: Session, agent: Agent, errand: Errand, orgnr: str) -> None:
    employer = _employer(session, orgnr)
    if employer.id != errand.employer_id:
        # Another employer: its codes and orderers differ, so those steps start again.
        errand.progress = BLANK_DRAFTS[errand.kind]
        errand.employer_id = employer.id
        errand.employer = employer
    _save(
        session,
        agent,
        errand,
        FormStep.EMPLOYER,
        employer=EmployerDetails(orgnr, employer.name),
    )


def save_codes(
    session: Session, agent: Agent, errand: Errand, all_codes: bool, codes: list[str]
) -> None:
    assert errand.employer is not None
    owned = {c.code for c in errand.employer.codes}
    if not all_codes and (not codes or set(codes) - owned):
        raise FormProblem("codes", ProblemCode.CODE_NOT_OF_EMPLOYER)
    chosen = () if all_codes else tuple(sorted(codes))
    _save(session, agent, errand, FormStep.CODES, employer_codes=chosen)


MINIMUM_AGE = 15
"""Nobody younger is registered as an orderer (they cannot be given the responsibility)."""


def _orderer_role(person: PersonDetails) -> PersonDetails:
    """The person to register as an orderer: an orderer's role, and old enough."""
    if person.role not in ORDERER_ROLES:
        raise FormProblem("role", ProblemCode.NOT_AN_ORDERER_ROLE)
    if age_on(person.personnummer, swedish_time(utcnow()).date()) < MINIMUM_AGE:
        raise FormProblem("personnummer", ProblemCode.TOO_YOUNG)
    return person.stripped()


def save_person(session: Session, agent: Agent, errand: Errand, person: PersonDetails) -> None:
    """The person to register; told of a conflict only if the submitter may know it."""
    person = _orderer_role(person)
    conflicts = _roster(session, agent, errand).conflicts_registering(
        person.personnummer, asker=_asker(agent), errand_id=errand.id
    )
    _refuse("personnummer", conflicts)
    errand.subject_personnummer = person.personnummer
    _save(session, agent, errand, FormStep.PERSON, person=person)


def save_orderer_to_remove(
    session: Session,
    agent: Agent,
    errand: Errand,
    reason: str,
    personnummer: str,
    given_name: str,
    family_name: str,
) -> None:
    """The orderer to remove; told of a conflict only if the submitter may know it."""
    removal_reason = RemovalReason(reason)
    if removal_reason is RemovalReason.SELF and personnummer != agent.personnummer:
        raise FormProblem("personnummer", ProblemCode.SELF_REMOVAL_OF_OTHER)
    conflicts = _roster(session, agent, errand).conflicts_removing(
        personnummer, asker=_asker(agent), errand_id=errand.id
    )
    _refuse("personnummer", conflicts)
    errand.subject_personnummer = personnummer
    orderer = OrdererToRemove(removal_reason, personnummer, given_name.strip(), family_name.strip())
    _save(session, agent, errand, FormStep.ORDERER, orderer=orderer)


def save_replacement(
    session: Session, agent: Agent, errand: Errand, replacement: PersonDetails | None
) -> None:
    """The new orderer to register in the same errand, or None for none."""
    if replacement is not None:
        replacement = _orderer_role(replacement)
        removed = errand.subject_personnummer
        assert removed is not None  # the orderer step comes first
        if replacement.personnummer == removed:
            raise FormProblem("personnummer", ProblemCode.REPLACEMENT_IS_REMOVED)
        conflicts = _roster(session, agent, errand).conflicts_removing(
            removed, replacement.personnummer, asker=_asker(agent), errand_id=errand.id
        )
        if Conflict.REPLACEMENT_ALREADY_ORDERER in conflicts:
            raise FormProblem("personnummer", ProblemCode.ALREADY_ORDERER)
    _save(session, agent, errand, FormStep.REPLACEMENT, replacement=replacement)


def save_signatory(
    session: Session,
    agent: Agent,
    errand: Errand,
    name: str,
    personnummer: str,
    title: str,
    email: str = "",
    co_signatory: SignatoryDetails | None = None,
) -> None:
    """Who signs. A removal naming a new orderer is refused the departing orderer as its
    signatory (``replacement_is_registered``), unless SPV's clerk types in a paper that
    is signed so: then it is what it is, and only the removal is carried out. Where the
    employer signs two jointly, a second, different signatory (``co_signatory``) is
    needed (``co_signatory_kept``); elsewhere it is not kept."""
    signatory = SignatoryDetails(name.strip(), personnummer, title.strip(), email.strip())
    progress = errand.progress
    second = co_signatory_kept(session, agent, progress, signatory, co_signatory)
    if (
        isinstance(progress, RemovalDraft)
        and progress.replacement is not None
        and progress.orderer is not None
        and agent.entered_by_staff_id is None
        and not replacement_is_registered(
            session, progress.orderer, progress.employer, signatory.personnummer
        )
    ):
        raise FormProblem("signatory_personnummer", ProblemCode.REPLACEMENT_NEEDS_SIGNATORY)
    _save(session, agent, errand, FormStep.SIGNATORY, signatory=signatory, co_signatory=second)


def _signs_alone_anyway(progress: FormProgress, signatory: SignatoryDetails) -> bool:
    """An orderer removing themself (and naming nobody new) signs alone."""
    return (
        isinstance(progress, RemovalDraft)
        and progress.orderer is not None
        and progress.replacement is None
        and progress.orderer.personnummer == signatory.personnummer
    )


def co_signatory_kept(
    session: Session,
    agent: Agent,
    progress: FormProgress,
    signatory: SignatoryDetails,
    typed: SignatoryDetails | None,
) -> CoSignatoryDetails | None:
    """The second signatory the signatory step keeps: where the employer signs two
    jointly, a person other than the first (``FormProblem`` without one); elsewhere none.
    SPV's clerk types a paper in as it is (verification flags a missing second one)."""
    employer = progress.employer
    if employer is None or not signs_jointly(LocalSignatoryRegister(session), employer.orgnr):
        return None
    if _signs_alone_anyway(progress, signatory):
        return None
    if typed is None or not typed.personnummer or typed.personnummer == signatory.personnummer:
        if agent.entered_by_staff_id is not None:
            return None
        raise FormProblem("co_signatory_personnummer", ProblemCode.CO_SIGNATORY_NEEDED)
    return CoSignatoryDetails(
        typed.name.strip(), typed.personnummer, typed.title.strip(), typed.email.strip()
    )


def replacement_is_registered(
    session: Session,
    orderer: OrdererToRemove,
    employer: EmployerDetails | None,
    signer_personnummer: str,
) -> bool:
    """Rule: a registration is always signed by the signatory. A removal's new orderer is
    registered only when the form is signed by one of the employer's signatories (the
    signatory register), or by anyone but the departing orderer (the signatory register
    check flags a signer it does not know for the caseworker); the departing orderer's
    own signature covers the removal alone."""
    if signer_personnummer != orderer.personnummer or employer is None:
        return True
    return is_signatory(LocalSignatoryRegister(session), employer.orgnr, signer_personnummer)


# ---- leaving the draft -----------------------------------------------------------------


def _require_complete(errand: Errand, action: Action) -> None:
    if not errand.progress.is_complete:
        raise IllegalTransition(
            errand.state, action, "the form is not complete", Refusal.INCOMPLETE
        )


def attach_document(
    session: Session,
    errand: Errand,
    kind: DocumentKind,
    content: bytes,
    filename: str,
    media_type: str = "application/pdf",
) -> ErrandDocument:
    import hashlib

    doc = ErrandDocument(
        errand_id=errand.id,
        kind=kind,
        media_type=media_type,
        filename=filename,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
    )
    session.add(doc)  # inserted at the next flush, with the others of the step in one go
    session.expire(errand, ["documents"])
    return doc


def print_for_post(session: Session, agent: Agent, errand: Errand, printed_pdf: bytes) -> None:
    """The postal route: the printed form is kept, and SPV waits for the signed paper."""
    _require_complete(errand, Action.PRINT_FOR_POST)
    transition(session, errand, Action.PRINT_FOR_POST, agent)
    end_invitations(session, errand, InvitationOutcome.PRINTED)
    errand.channel = Channel.PAPER
    attach_document(session, errand, DocumentKind.PRINTED, printed_pdf, f"{errand.reference}.pdf")


def withdraw(session: Session, agent: Agent, errand: Errand) -> None:
    transition(session, errand, Action.WITHDRAW, agent)
    end_invitations(session, errand, InvitationOutcome.WITHDRAWN)


# ---- invitations to sign: the links of the current round ---------------------------------


def open_invitations(session: Session, errand: Errand) -> list[SigningInvitation]:
    """The links emailed to the signatory that still open the errand, newest first."""
    return list(
        session.scalars(
            select(SigningInvitation)
            .where(SigningInvitation.errand_id == errand.id, SigningInvitation.ended_dt.is_(None))
            .order_by(SigningInvitation.created_dt.desc(), SigningInvitation.id.desc())
        )
    )


def last_invitation(session: Session, errand: Errand) -> SigningInvitation | None:
    """The errand's newest link, open or ended (its outcome, a decline's reason)."""
    return session.scalars(
        select(SigningInvitation)
        .where(SigningInvitation.errand_id == errand.id)
        .order_by(SigningInvitation.created_dt.desc(), SigningInvitation.id.desc())
        .limit(1)
    ).first()


def end_invitations(
    session: Session, errand: Errand, outcome: InvitationOutcome, reason: str | None = None
) -> int:
    """End every open link of the errand (they no longer open it), and with them the
    round's first joint signature, if any. Returns how many."""
    links = open_invitations(session, errand)
    now = utcnow()
    for link in links:
        link.ended_dt, link.outcome, link.decline_reason = now, outcome, reason
    errand.first_signature_order_id = None
    session.flush()
    return len(links)


def back_to_signable(session: Session, errand: Errand, agent: Agent, **data: Any) -> None:
    """awaiting_signature → where it can be signed again: the invited signatory's
    invitation (its expiry kept), or the submitter's draft."""
    links = open_invitations(session, errand)
    if links:
        transition(session, errand, Action.RETURN_TO_SIGNATORY, agent, **data)
        errand.expires_dt = links[0].expires_dt
        session.flush()
    else:
        transition(session, errand, Action.CANCEL_SIGNATURE, agent, **data)


def open_completion_request(errand: Errand) -> CompletionRequest | None:
    """The caseworker's unanswered request for more, if the errand waits for one."""
    if errand.state is not ErrandState.AWAITING_COMPLETION:
        return None
    return next((r for r in reversed(errand.completion_requests) if r.is_open), None)


def answer_completion(
    session: Session, agent: Agent, errand: Errand, answer: str
) -> CompletionRequest:
    """The submitter's answer: the errand goes back to its caseworker and the due date
    runs again from where it stood."""
    request = open_completion_request(errand)
    transition(session, errand, Action.COMPLETE, agent)
    assert request is not None  # awaiting_completion always has an open request
    request.answer = answer.strip()
    request.answered_dt = utcnow()
    session.flush()
    return request


def expire_lapsed(session: Session, limit: int = 200) -> int:
    """Move drafts and errands whose time ran out to ``expired`` (their invitations end
    too). A signing left unfinished (the page closed) goes back to where it can be signed
    again instead. Returns how many moved."""
    lapsed = session.scalars(
        select(Errand)
        .where(Errand.state.in_(EXPIRING_STATES), Errand.expires_dt <= utcnow())
        .order_by(Errand.expires_dt)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    system = Agent.system("expiry")
    for errand in lapsed:
        if errand.state is ErrandState.AWAITING_SIGNATURE:
            back_to_signable(session, errand, system, reason="abandoned")
            continue
        transition(session, errand, Action.EXPIRE, system)
        end_invitations(session, errand, InvitationOutcome.EXPIRED)
    return len(lapsed)


# ---- all steps at once (tests, scripts, a clerk typing in a paper form) ----------------


def _save_signatory_of(
    session: Session, agent: Agent, errand: Errand, data: RegistrationData | RemovalData
) -> None:
    s = data.signatory
    save_signatory(
        session, agent, errand, s.name, s.personnummer, s.title, s.email, data.co_signatory
    )


def create_registration(session: Session, agent: Agent, data: RegistrationData) -> Errand:
    """A complete registration draft, every step's rules applied."""
    errand = start_draft(session, agent, ErrandKind.REGISTRATION, data.employer.orgnr)
    save_codes(session, agent, errand, data.all_codes, list(data.employer_codes))
    save_person(session, agent, errand, data.person)
    _save_signatory_of(session, agent, errand, data)
    return errand


def create_removal(session: Session, agent: Agent, data: RemovalData) -> Errand:
    """A complete removal draft, every step's rules applied."""
    errand = start_draft(session, agent, ErrandKind.REMOVAL, data.employer.orgnr)
    orderer = data.orderer
    save_orderer_to_remove(
        session, agent, errand, orderer.reason, orderer.personnummer, orderer.given_name,
        orderer.family_name,
    )  # fmt: skip
    save_replacement(session, agent, errand, data.replacement)
    _save_signatory_of(session, agent, errand, data)
    return errand
