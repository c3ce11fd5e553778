"""Signing by invitation: the submitter sends the form to the signatory it names, who logs
in with their own e-ID later, reads the whole form and signs it (``signing``) or declines.

Only the named signatory opens an invitation: the link's token finds it, and the
personnummer of the e-ID login must be the one the form names (``is_named_signatory``);
for anyone else, and for a link that has ended, it does not exist. Tokens are random
(256 bits), stored as SHA-256 only, and open nothing but this errand for its signatory.
Each email carries its own link; the links of an errand end together when it is signed,
declined, taken back, printed, withdrawn or expired (``service.end_invitations``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record_errand_event
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.notifications import notices
from app.registrations.models import (
    Errand,
    InvitationKind,
    InvitationOutcome,
    SigningInvitation,
)
from app.registrations.service import (
    _require_complete,
    end_invitations,
    open_invitations,
)
from workflows.state_machine import is_named_signatory, transition
from workflows.states import (
    SIGNATORY_REMINDER_BEFORE,
    SUBMITTER_REMINDER_INTERVAL,
    Action,
    ErrandState,
    IllegalTransition,
    Refusal,
)


class InvitationNotFound(Exception):
    """No open invitation for this person behind the link (the cases look the same)."""


class TooSoon(Exception):
    """The signatory was reminded a moment ago; the next reminder may go at ``next_dt``."""

    def __init__(self, next_dt: datetime) -> None:
        super().__init__(next_dt.isoformat())
        self.next_dt = next_dt


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_link(
    session: Session,
    errand: Errand,
    kind: InvitationKind,
    email: str,
    sent_by: Agent | None,
    base_url: str,
    signatory: str | None = None,
) -> str:
    """A link for ``signatory`` (a personnummer; the form's signatory if not given)."""
    token = secrets.token_urlsafe(32)
    assert errand.expires_dt is not None
    session.add(
        SigningInvitation(
            errand_id=errand.id,
            kind=kind,
            token_sha256=token_digest(token),
            signatory_personnummer=signatory or errand.data.signatory.personnummer,
            email=email,
            expires_dt=errand.expires_dt,
            sent_by_person_id=sent_by.id if sent_by else None,
        )
    )
    session.flush()
    notices.notify_signing_invitation(
        session,
        errand,
        token=token,
        to=email,
        reminder=kind is not InvitationKind.INVITATION,
        base_url=base_url,
        name=next((s.name for s in errand.data.signatories if s.personnummer == signatory), None),
    )
    return token


def send_to_signatory(
    session: Session,
    agent: Agent,
    errand: Errand,
    email: str,
    *,
    base_url: str,
    co_email: str | None = None,
) -> str:
    """draft → awaiting_signatory: the signatory is emailed a link. The invitation expires
    with the draft. Returns the link's token (it is stored hashed only). Where two sign
    jointly, the second signatory is emailed a link of their own at ``co_email``."""
    _require_complete(errand, Action.SEND_TO_SIGNATORY)
    co_signatory = errand.data.co_signatory
    if co_signatory is not None and not (co_email or "").strip():
        raise IllegalTransition(
            errand.state, Action.SEND_TO_SIGNATORY, "both signatories' emails", Refusal.INCOMPLETE
        )
    sent_to = {"email": email} | ({"co_email": (co_email or "").strip()} if co_signatory else {})
    transition(session, errand, Action.SEND_TO_SIGNATORY, agent, data=sent_to)
    token = _new_link(session, errand, InvitationKind.INVITATION, email.strip(), agent, base_url)
    if co_signatory is not None:
        assert co_email is not None
        _new_link(
            session,
            errand,
            InvitationKind.INVITATION,
            co_email.strip(),
            agent,
            base_url,
            co_signatory.personnummer,
        )
    return token


def _newest_by_signatory(links: list[SigningInvitation]) -> list[SigningInvitation]:
    """Each invited signatory's newest open link (the links come newest first)."""
    newest: dict[str, SigningInvitation] = {}
    for link in links:
        newest.setdefault(link.signatory_personnummer, link)
    return list(newest.values())


def remind(
    session: Session, agent: Agent, errand: Errand, *, base_url: str, now: datetime | None = None
) -> str:
    """The submitter reminds the signatory: a new email with a link of its own, at most
    once per ``SUBMITTER_REMINDER_INTERVAL``."""
    if errand.state is not ErrandState.AWAITING_SIGNATORY or agent.id != errand.submitted_by_id:
        raise IllegalTransition(errand.state, Action.SEND_TO_SIGNATORY, "no invitation to remind")
    links = open_invitations(session, errand)
    now = now or utcnow()
    sent_by_people = [link for link in links if link.kind is not InvitationKind.EXPIRY_REMINDER]
    last = max((link.created_dt for link in sent_by_people), default=None)
    if last is not None and now < last + SUBMITTER_REMINDER_INTERVAL:
        raise TooSoon(last + SUBMITTER_REMINDER_INTERVAL)
    if not links:
        email = errand.data.signatory.email
        token = _new_link(session, errand, InvitationKind.REMINDER, email, agent, base_url)
    for link in _newest_by_signatory(links):  # each signatory yet to sign, where two do
        token = _new_link(
            session,
            errand,
            InvitationKind.REMINDER,
            link.email,
            agent,
            base_url,
            link.signatory_personnummer,
        )
    _audit(session, agent, errand, "signatory_reminded")
    return token


def recall(session: Session, agent: Agent, errand: Errand) -> None:
    """The submitter takes the invitation back: the links end and the draft can be changed."""
    transition(session, errand, Action.RECALL_INVITATION, agent)
    end_invitations(session, errand, InvitationOutcome.RECALLED)


def for_signatory(session: Session, agent: Agent, token: str) -> tuple[SigningInvitation, Errand]:
    """The open invitation behind ``token`` and its errand, for the signatory it names.

    Anyone else – another person, SPV staff, a link that has ended or never was – gets
    ``InvitationNotFound`` and learns nothing."""
    link = session.scalar(
        select(SigningInvitation).where(SigningInvitation.token_sha256 == token_digest(token))
    )
    if link is None:
        raise InvitationNotFound
    return _for_named_signatory(agent, link)


def for_signatory_by_reference(
    session: Session, agent: Agent, reference: str
) -> tuple[SigningInvitation, Errand]:
    """The errand with ``reference`` and its newest open invitation, for the signatory it
    names (the pages behind the link, and a signatory's own list of forms to sign); for
    anyone else, or with no open invitation, ``InvitationNotFound``."""
    errand = session.scalar(select(Errand).where(Errand.reference == reference))
    links = open_invitations(session, errand) if errand is not None else []
    links = [link for link in links if link.signatory_personnummer == agent.personnummer]
    if not links:
        raise InvitationNotFound
    return _for_named_signatory(agent, links[0])


def _for_named_signatory(agent: Agent, link: SigningInvitation) -> tuple[SigningInvitation, Errand]:
    if not link.is_open or agent.kind is not AgentKind.PERSON:
        raise InvitationNotFound
    if not secrets.compare_digest(agent.personnummer or "", link.signatory_personnummer):
        raise InvitationNotFound
    errand = link.errand
    if not is_named_signatory(agent, errand) or errand.state not in (
        ErrandState.AWAITING_SIGNATORY,
        ErrandState.AWAITING_SIGNATURE,
    ):
        raise InvitationNotFound
    return link, errand


def decline(session: Session, agent: Agent, errand: Errand, reason: str, *, base_url: str) -> None:
    """The signatory declines, with a reason: the errand is the submitter's draft again
    and the submitter is emailed why."""
    reason = reason.strip()
    if not reason:
        raise IllegalTransition(errand.state, Action.DECLINE, "a reason", Refusal.INCOMPLETE)
    transition(session, errand, Action.DECLINE, agent, reason=reason)
    end_invitations(session, errand, InvitationOutcome.DECLINED, reason)
    notices.notify_signatory_answered(session, errand, declined_reason=reason, base_url=base_url)


def signed(session: Session, errand: Errand, *, base_url: str) -> None:
    """Tell the submitter that the invited signatory signed."""
    notices.notify_signatory_answered(session, errand, declined_reason=None, base_url=base_url)


def remind_before_expiry(session: Session, *, base_url: str, now: datetime | None = None) -> int:
    """Scheduled: remind each invited signatory once, ``SIGNATORY_REMINDER_BEFORE`` the
    invitation expires. Safe to run anywhere at once. Returns how many were reminded."""
    now = now or utcnow()
    due = session.scalars(
        select(Errand)
        .where(
            Errand.state == ErrandState.AWAITING_SIGNATORY,
            Errand.expires_dt > now,
            Errand.expires_dt <= now + SIGNATORY_REMINDER_BEFORE,
        )
        .order_by(Errand.expires_dt)
        .limit(200)
        .with_for_update(skip_locked=True)
    ).all()
    reminded = 0
    system = Agent.system("signing_reminder")
    for errand in due:
        links = open_invitations(session, errand)
        if not links or any(link.kind is InvitationKind.EXPIRY_REMINDER for link in links):
            continue
        for link in _newest_by_signatory(links):
            _new_link(
                session,
                errand,
                InvitationKind.EXPIRY_REMINDER,
                link.email,
                None,
                base_url,
                link.signatory_personnummer,
            )
        _audit(session, system, errand, "signatory_reminded_before_expiry")
        reminded += 1
    return reminded


def _audit(session: Session, agent: Agent, errand: Errand, action: str) -> None:
    record_errand_event(session, agent.audit_label, errand.id, action)
