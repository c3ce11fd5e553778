"""Fraud protection for the paper channel: an employer's lock against posted forms
(spärr), and the waiting period of an approved posted registration.

- **The lock.** A signatory of the employer (in the signatory register, by the
  personnummer of their e-ID login) switches it on and off. While it is on, a posted form
  for the employer is stopped when intake matches its scanned pages by their QR code
  (``stop_if_locked``); the submitter and the employer's signatories are emailed why.
- **The waiting period.** An approved posted registration takes effect only after
  ``PAPER_WAITING_DAYS`` (``workflows.states.APPROVED_ON_PAPER``): its start emails the
  employer's orderers and signatories (``start_waiting_period``), any of whom stops it
  with one e-ID action ("Det här känner vi inte till", ``dispute``): it goes back to a
  caseworker as suspected fraud. A scheduled actor applies the ones whose period is over
  (``take_effect_due``), once each.

Plain functions over a session and the acting agent; no Flask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import service as access
from app.access.models import ORDERER_ROLES, Employer, Person, RoleGrant
from app.audit.service import record_event
from app.core.agents import Agent, AgentKind
from app.core.i18n import SOURCE_LANG, long_date, translations
from app.core.ids import format_orgnr
from app.db import utcnow
from app.notifications.audience import language_for
from app.notifications.notices import KIND_NAMES, ROLE_NAMES
from app.notifications.queue import queue_email
from app.registers.service import LocalSignatoryRegister, Signatory, is_signatory
from app.registrations.data import RegistrationData
from app.registrations.models import Errand, RejectionReason
from app.safeguards.models import PaperLock
from workflows.state_machine import transition
from workflows.states import Action, ErrandState, Party

log = structlog.get_logger(__name__)

PAPER_LOCK_REASON = "paper_lock"
"""The reason recorded on a page and an errand stopped by the employer's lock."""
LOCK_PATH = "/sparr"
"""The employer's lock page (``app.safeguards.views``)."""
WAITING_PATH = "/vantetid"
"""Where the employer stops a posted registration in its waiting period
(``/vantetid/<reference>``)."""


class Refused(Exception):
    """The signed-in person may not do this; ``code`` says why (``app.safeguards.views``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NotFound(Exception):
    """Nothing this person may see (another employer's errand looks the same as none)."""


# ---- who acts for the employer -------------------------------------------------------


def signatories_of(session: Session, employer: Employer) -> list[Signatory]:
    """The employer's signatories, as the signatory register says."""
    return LocalSignatoryRegister(session).signatories(employer.orgnr)


def is_employer_signatory(session: Session, agent: Agent, employer: Employer) -> bool:
    """Whether the e-ID-identified person signs for the employer (signatory register)."""
    return (
        agent.kind is AgentKind.PERSON
        and agent.personnummer is not None
        and is_signatory(LocalSignatoryRegister(session), employer.orgnr, agent.personnummer)
    )


def _orderer_grants(session: Session, employer_id: int) -> list[RoleGrant]:
    return list(
        session.scalars(
            select(RoleGrant)
            .where(
                RoleGrant.employer_id == employer_id,
                RoleGrant.role.in_(ORDERER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
            )
            .order_by(RoleGrant.id)
        )
    )


def is_current_orderer(session: Session, agent: Agent, employer_id: int) -> bool:
    return agent.kind is AgentKind.PERSON and any(
        grant.person_id == agent.id for grant in _orderer_grants(session, employer_id)
    )


@dataclass(frozen=True)
class EmployerLock:
    """An employer on the lock page, as the signed-in person sees it."""

    employer: Employer
    lock: PaperLock | None
    may_switch: bool
    """The person is one of the employer's signatories: switches the lock on and off."""
    waiting: list[Errand]
    """Its posted registrations in their waiting period, for its orderers and signatories
    (who may stop them); empty for anyone else."""


def lock_of(session: Session, employer_id: int) -> PaperLock | None:
    return session.get(PaperLock, employer_id)


def locked_employer_ids(session: Session, employer_ids: set[int]) -> set[int]:
    """Which of ``employer_ids`` are locked against posted forms (one query)."""
    if not employer_ids:
        return set()
    return set(
        session.scalars(
            select(PaperLock.employer_id).where(PaperLock.employer_id.in_(employer_ids))
        )
    )


def lock_page(session: Session, agent: Agent) -> list[EmployerLock]:
    """The employers the person signs for (may switch their lock) and those where they hold
    a role or permission (see it only), by name."""
    assert agent.kind is AgentKind.PERSON and agent.id is not None
    orgnrs = LocalSignatoryRegister(session).organisations_of(agent.personnummer or "")
    signing = list(session.scalars(select(Employer).where(Employer.orgnr.in_(orgnrs))))
    signs_for = {e.id for e in signing}
    employers = {e.id: e for e in access.employers_of_person(session, agent.id)}
    employers.update({e.id: e for e in signing})
    locks = {
        lock.employer_id: lock
        for lock in session.scalars(select(PaperLock).where(PaperLock.employer_id.in_(employers)))
    }
    orders_for = set(
        session.scalars(
            select(RoleGrant.employer_id).where(
                RoleGrant.person_id == agent.id,
                RoleGrant.role.in_(ORDERER_ROLES),
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    )
    waiting: dict[int, list[Errand]] = {}
    for errand in session.scalars(
        select(Errand)
        .where(
            Errand.state == ErrandState.AWAITING_EFFECT,
            Errand.employer_id.in_(signs_for | orders_for),
        )
        .order_by(Errand.takes_effect_dt, Errand.id)
    ):
        waiting.setdefault(errand.employer_id or 0, []).append(errand)
    return [
        EmployerLock(e, locks.get(e.id), e.id in signs_for, waiting.get(e.id, []))
        for e in sorted(employers.values(), key=lambda e: e.name)
    ]


def switch_on(
    session: Session, agent: Agent, employer: Employer, contact_email: str | None
) -> PaperLock:
    """The signatory locks the employer against posted forms (nothing if it is on)."""
    if not is_employer_signatory(session, agent, employer):
        raise Refused("not_signatory")
    access.lock_employer(session, employer.id)  # two signatories at once: one lock
    lock = lock_of(session, employer.id)
    if lock is not None:
        return lock
    assert agent.id is not None
    lock = PaperLock(
        employer_id=employer.id,
        locked_by_person_id=agent.id,
        contact_email=(contact_email or "").strip() or None,
    )
    session.add(lock)
    _switched(session, agent, employer, "on", contact_email=lock.contact_email)
    return lock


def switch_off(session: Session, agent: Agent, employer: Employer) -> bool:
    """The signatory unlocks the employer; False when it was not locked."""
    if not is_employer_signatory(session, agent, employer):
        raise Refused("not_signatory")
    access.lock_employer(session, employer.id)
    lock = lock_of(session, employer.id)
    if lock is None:
        return False
    session.delete(lock)
    _switched(session, agent, employer, "off", locked_since=lock.locked_dt.isoformat())
    return True


def _switched(session: Session, agent: Agent, employer: Employer, how: str, **data: object) -> None:
    """The audit event of a switch of the lock (``paper_lock.on``, ``paper_lock.off``)."""
    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action=f"paper_lock.{how}",
        object_type="employer",
        object_id=employer.id,
        data=data,
    )


# ---- the stop at intake --------------------------------------------------------------


def stop_if_locked(session: Session, agent: Agent, errand: Errand) -> bool:
    """Intake matched a posted form's page to ``errand``: when its employer is locked, the
    errand is stopped (``stopped``, the reason in its history) and its people are told
    (the ``notify_stopped`` step). True when stopped now."""
    if errand.employer_id is None or lock_of(session, errand.employer_id) is None:
        return False
    session.refresh(errand, with_for_update=True)  # a clerk may be at it too
    if errand.state is not ErrandState.AWAITING_POST:
        return False
    transition(session, errand, Action.STOP_AT_INTAKE, agent, reason=PAPER_LOCK_REASON)
    return True


@dataclass(frozen=True)
class _Recipient:
    address: str
    name: str
    language: str


def _person_recipient(person: Person, address: str | None) -> _Recipient | None:
    if not address:
        log.warning("email.no_address", person_id=person.id)
        return None
    return _Recipient(address, person.full_name, person.language or SOURCE_LANG)


def _signatory_recipients(session: Session, errand: Errand, employer: Employer) -> list[_Recipient]:
    """The employer's signatories SPV has an address for: those known as people with an
    email, the address the lock was switched on with, and the one the form gives for its
    signatory when that signatory is in the register."""
    found: list[_Recipient] = []
    register = signatories_of(session, employer)
    numbers = [s.personnummer for s in register]
    for person in session.scalars(select(Person).where(Person.personnummer.in_(numbers))):
        if person.email:
            found.append(_Recipient(person.email, person.full_name, person.language or SOURCE_LANG))
    lock = lock_of(session, employer.id)
    if lock is not None and lock.contact_email:
        found.append(_Recipient(lock.contact_email, lock.locked_by.full_name, SOURCE_LANG))
    try:
        named = errand.data.signatory
    except Exception:
        named = None
    if named is not None and named.email and named.personnummer in numbers:
        found.append(_Recipient(named.email, named.name, SOURCE_LANG))
    return found


def _orderer_recipients(session: Session, employer_id: int) -> list[_Recipient]:
    found = []
    for grant in _orderer_grants(session, employer_id):
        recipient = _person_recipient(grant.person, grant.contact_email or grant.person.email)
        if recipient is not None:
            found.append(recipient)
    return found


def _once_each(recipients: list[_Recipient]) -> list[_Recipient]:
    seen: set[str] = set()
    unique = []
    for recipient in recipients:
        if recipient.address.lower() not in seen:
            seen.add(recipient.address.lower())
            unique.append(recipient)
    return unique


def _errand_context(errand: Errand, lang: str) -> dict[str, object]:
    employer = errand.employer
    assert employer is not None
    role = ""
    data = errand.data
    if isinstance(data, RegistrationData):
        role = translations(lang).gettext(ROLE_NAMES[data.person.role])
    return {
        "reference": errand.reference,
        "kind": translations(lang).gettext(KIND_NAMES[errand.kind]),
        "employer": employer.name,
        "orgnr": format_orgnr(employer.orgnr),
        "subject": errand.subject_name,
        "role": role,
    }


def _email_each(
    session: Session,
    errand: Errand,
    recipients: list[_Recipient],
    template: str,
    base_url: str,
    context: Callable[[str], dict[str, object]],
) -> int:
    """One email about ``errand`` to each address once (once ever: the address is in its
    dedupe key), in the recipient's language. Returns how many were queued now."""
    queued = 0
    for recipient in _once_each(recipients):
        email = queue_email(
            session,
            base_url=base_url,
            dedupe_key=f"{template}:{errand.id}:{recipient.address.lower()}",
            to=recipient.address,
            name=recipient.name,
            language=recipient.language,
            template=template,
            context={
                **_errand_context(errand, recipient.language),
                **context(recipient.language),
            },
            errand_id=errand.id,
        )
        queued += email is not None
    return queued


def notify_stopped(session: Session, errand_id: int, *, base_url: str) -> int:
    """Tell the submitter and the employer's signatories that a posted form was stopped by
    the employer's lock (once each: safe to run twice). Returns the emails queued."""
    errand = session.get(Errand, errand_id)
    if errand is None or errand.state is not ErrandState.STOPPED or errand.employer is None:
        return 0
    submitter = errand.submitted_by
    recipients = []
    own = _person_recipient(submitter, submitter.email)
    if own is not None:
        recipients.append(_Recipient(own.address, own.name, language_for(submitter, errand)))
    recipients += _signatory_recipients(session, errand, errand.employer)
    return _email_each(
        session,
        errand,
        recipients,
        "paper_lock_stopped",
        base_url,
        lambda _lang: {"path": LOCK_PATH},
    )


# ---- the waiting period --------------------------------------------------------------


def start_waiting_period(
    session: Session, errand_id: int, *, period: timedelta, base_url: str
) -> bool:
    """An approved posted registration starts its waiting period: it takes effect
    ``period`` after the approval, and the employer's orderers and signatories are emailed
    how to stop it. Safe to run twice. False when there is nothing to do."""
    errand = session.get(Errand, errand_id, with_for_update=True)
    if errand is None or errand.state is not ErrandState.AWAITING_EFFECT:
        return False
    assert errand.decided_dt is not None and errand.employer is not None
    if errand.takes_effect_dt is None:
        errand.takes_effect_dt = errand.decided_dt + period
        session.flush()
    recipients = _orderer_recipients(session, errand.employer.id)
    recipients += _signatory_recipients(session, errand, errand.employer)
    takes_effect = errand.takes_effect_dt
    _email_each(
        session,
        errand,
        recipients,
        "waiting_period_started",
        base_url,
        lambda lang: {
            "takes_effect": long_date(takes_effect, lang),
            "path": f"{WAITING_PATH}/{errand.reference}",
        },
    )
    return True


def may_dispute(session: Session, agent: Agent, errand: Errand) -> bool:
    """The employer's current orderers and signatories stop its posted registrations."""
    employer = errand.employer
    return employer is not None and (
        is_current_orderer(session, agent, employer.id)
        or is_employer_signatory(session, agent, employer)
    )


def waiting_errand(session: Session, agent: Agent, reference: str) -> Errand:
    """A posted registration in (or stopped in) its waiting period, for one of its
    employer's orderers or signatories; ``NotFound`` for anyone else."""
    errand = session.scalar(select(Errand).where(Errand.reference == reference.strip().upper()))
    in_waiting_period = errand is not None and (
        errand.takes_effect_dt is not None
        or errand.state is ErrandState.SUSPECTED_FRAUD
        or errand.decision_code == RejectionReason.SUSPECTED_FRAUD.value
    )
    if errand is None or not in_waiting_period or not may_dispute(session, agent, errand):
        raise NotFound(reference)
    return errand


def dispute(session: Session, agent: Agent, errand: Errand) -> None:
    """ "Det här känner vi inte till": the employer's orderer or signatory stops the posted
    registration in its waiting period; it goes back to a caseworker as suspected fraud and
    is never applied as it stands. ``Refused`` when too late or not theirs."""
    session.refresh(errand, with_for_update=True)
    if not may_dispute(session, agent, errand):
        raise Refused("not_employer")
    if errand.state is not ErrandState.AWAITING_EFFECT:
        raise Refused("not_waiting")
    transition(
        session, errand, Action.DISPUTE, agent, reason="unknown_to_employer", vouched=Party.EMPLOYER
    )


def take_effect_due(session: Session, agent: Agent, now: datetime | None = None) -> int:
    """Scheduled: the posted registrations whose waiting period is over go on to be applied
    (``approved``, which queues the apply step). Each errand is locked and its state checked
    again, so a run twice, or at once in two workers, moves each one once. Returns how many."""
    now = now or utcnow()
    due = session.scalars(
        select(Errand.id)
        .where(Errand.state == ErrandState.AWAITING_EFFECT, Errand.takes_effect_dt <= now)
        .order_by(Errand.takes_effect_dt, Errand.id)
    ).all()
    moved = 0
    for errand_id in due:
        errand = session.scalars(
            select(Errand).where(Errand.id == errand_id).with_for_update(skip_locked=True)
        ).one_or_none()
        if (
            errand is None
            or errand.state is not ErrandState.AWAITING_EFFECT
            or errand.takes_effect_dt is None
            or errand.takes_effect_dt > now
        ):
            continue
        transition(session, errand, Action.TAKE_EFFECT, agent)
        moved += 1
    return moved
