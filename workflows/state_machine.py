"""Apply the transition table to an errand: guards, timestamps, audit, next step."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.audit.service import record_event
from app.config import Settings
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.registrations.models import Channel, Errand, ErrandKind
from workflows.outbox import add_message
from workflows.states import (
    APPROVED_ON_PAPER,
    DECISION_TIME,
    EXPIRES_AFTER,
    KEEPS_EXPIRY,
    LAPSES_AS_DRAFT,
    RESUME_STATE_OF_STEP,
    STEPS_ON_ENTRY,
    TERMINAL_STATES,
    Action,
    ErrandState,
    IllegalTransition,
    Party,
    Refusal,
    find_transition,
)

DRAFT_LAPSE_INFO = "behorighet.draft_lapse"
"""The ``Session.info`` key of the draft's time (:func:`lapse_info`)."""


def lapse_info(settings: Settings) -> dict[str, Any]:
    """``Session.info`` carrying the draft's time, ``RETENTION_DRAFTS_DAYS``, for a session
    factory (the composition root's: ``workflows.bootstrap.configure``)."""
    return {DRAFT_LAPSE_INFO: timedelta(days=settings.retention_drafts_days)}


def draft_lapse(session: Session) -> timedelta:
    """How long a draft, and an invitation to sign it, wait before they lapse:
    ``RETENTION_DRAFTS_DAYS`` – as the session carries it (:func:`lapse_info`), else that
    setting's default – the same days after which the retention rule ``drafts`` removes
    them (one setting for both)."""
    carried = session.info.get(DRAFT_LAPSE_INFO)
    if isinstance(carried, timedelta):
        return carried
    return timedelta(days=Settings.retention_drafts_days)


def lapse_after(session: Session, state: ErrandState) -> timedelta | None:
    """How long an errand entering ``state`` may wait before it lapses (None: it does not)."""
    return draft_lapse(session) if state in LAPSES_AS_DRAFT else EXPIRES_AFTER.get(state)


REVIEW_ONLY_REFUSES = frozenset({Action.REJECT, Action.REQUEST_COMPLETION, Action.WITHDRAW})
"""SPV's own review of an orderer's role (``ErrandKind.SIGNATORY_CHANGE``) has no
submitter to reject to, ask or be withdrawn by: the caseworker approves it (the role
stands); a role that should end is removed with the removal form."""


def parties_of(agent: Agent, errand: Errand) -> frozenset[Party]:
    """The capacities in which ``agent`` may act on ``errand``."""
    if agent.kind is AgentKind.SYSTEM:
        return frozenset({Party.SYSTEM})
    if agent.kind is AgentKind.PERSON:
        parties = set()
        if agent.id == errand.submitted_by_id:
            parties.add(Party.SUBMITTER)
        if is_named_signatory(agent, errand):
            parties.add(Party.SIGNATORY)
        return frozenset(parties)
    parties = set()
    if agent.is_caseworker:
        parties.add(Party.CASEWORKER)
    if agent.is_intake_clerk:
        parties.add(Party.INTAKE_CLERK)
    return frozenset(parties)


def is_named_signatory(agent: Agent, errand: Errand) -> bool:
    """Whether ``agent`` is a signatory the form names (the one, or either of two who sign
    jointly), by the personnummer of their e-ID login: the only people who sign the errand
    (``docs/rules.md``, the named signatory)."""
    progress = errand.progress
    named = {s.personnummer for s in (progress.signatory, progress.co_signatory) if s}
    return (
        agent.kind is AgentKind.PERSON
        and agent.personnummer is not None
        and agent.personnummer in named
    )


def is_posted_registration(errand: Errand) -> bool:
    """A registration that came on paper: approved, it waits out the waiting period."""
    return errand.channel is Channel.PAPER and errand.kind is ErrandKind.REGISTRATION


def check_four_eyes(errand: Errand, agent: Agent, action: Action) -> None:
    """Nobody decides an errand they submitted, that concerns themselves, or whose posted
    paper they took in as the intake clerk."""
    own = {errand.submitted_by.personnummer, errand.subject_personnummer}
    took_it_in = agent.kind is AgentKind.STAFF and agent.id == errand.received_by_staff_id
    if (agent.personnummer is not None and agent.personnummer in own) or took_it_in:
        raise IllegalTransition(
            errand.state,
            action,
            "four eyes: you cannot decide your own errand",
            Refusal.FOUR_EYES,
        )


def _resume_due_date(errand: Errand, now: datetime) -> None:
    """The time spent waiting for the submitter does not count against SPV's due date."""
    if errand.paused_dt is not None and errand.due_dt is not None:
        errand.due_dt += now - errand.paused_dt
        errand.reminded_dt = None
        errand.escalated_dt = None
    errand.paused_dt = None


def transition(
    session: Session,
    errand: Errand,
    action: Action,
    agent: Agent,
    *,
    reason: str | None = None,
    failed_step: str | None = None,
    data: dict[str, Any] | None = None,
    vouched: Party | None = None,
) -> ErrandState:
    """Move ``errand`` by ``action`` or raise ``IllegalTransition`` having changed nothing.

    ``vouched``: a capacity the caller has established from the database that
    :func:`parties_of` cannot see (only ``Party.EMPLOYER``: the employer's orderer or
    signatory, ``app.safeguards.service``)."""
    source = errand.state
    parties = parties_of(agent, errand)
    if vouched is Party.EMPLOYER and agent.kind is AgentKind.PERSON:
        parties |= {Party.EMPLOYER}
    rule = find_transition(source, action, parties)
    target = rule.target
    if is_posted_registration(errand):
        target = APPROVED_ON_PAPER.get((source, action), target)
    now = utcnow()

    if errand.kind is ErrandKind.SIGNATORY_CHANGE and action in REVIEW_ONLY_REFUSES:
        raise IllegalTransition(
            source, action, "SPV's own review is only approved", Refusal.NOT_PERMITTED
        )
    if action in (Action.APPROVE, Action.REJECT):
        check_four_eyes(errand, agent, action)
    if action is Action.FAIL and not (failed_step and reason):
        raise IllegalTransition(
            source, action, "a failure needs the step and the reason", Refusal.INCOMPLETE
        )
    if action is Action.RETRY:
        resume = RESUME_STATE_OF_STEP.get(errand.failed_step or "")
        if resume is None:
            raise IllegalTransition(
                source, action, "the failed step cannot be retried", Refusal.INCOMPLETE
            )
        target = resume
    if action in (Action.RECEIVE, Action.OPEN_REVIEW) and errand.channel is None:
        raise IllegalTransition(
            source, action, "the channel must be known when received", Refusal.INCOMPLETE
        )

    errand.state = target
    if (source, target) not in KEEPS_EXPIRY or errand.expires_dt is None:
        expires_after = lapse_after(session, target)
        errand.expires_dt = now + expires_after if expires_after else None
    errand.ended_dt = now if target in TERMINAL_STATES else None
    if action in (Action.RECEIVE, Action.OPEN_REVIEW):
        errand.received_dt = now
        errand.due_dt = now + DECISION_TIME
        errand.received_by_staff_id = agent.id if agent.kind is AgentKind.STAFF else None
    elif action in (Action.APPROVE, Action.REJECT):
        errand.decided_dt = now
        errand.decided_by_staff_id = agent.id
    elif action is Action.RETURN_TO_REVIEW:
        errand.decided_dt = None
        errand.decided_by_staff_id = None
    elif action is Action.DISPUTE:
        # Back to the caseworker who approved it, to decide again, with a new due date.
        errand.decided_dt = None
        errand.decided_by_staff_id = None
        errand.takes_effect_dt = None
        errand.due_dt = now + DECISION_TIME
        errand.reminded_dt = None
        errand.escalated_dt = None
    elif action is Action.FAIL:
        errand.failed_step = failed_step
        errand.failure_reason = reason
    elif action is Action.RETRY:
        errand.failed_step = None
        errand.failure_reason = None
        errand.retrying_step = None
        errand.step_attempt = errand.step_max_attempts = None
        errand.step_error = None
        errand.step_error_dt = None
    elif action is Action.REQUEST_COMPLETION:
        errand.paused_dt = now
    elif action is Action.COMPLETE:
        _resume_due_date(errand, now)

    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action=f"errand.{action.value}",
        object_type="errand",
        object_id=errand.id,
        data={"from": source.value, "to": target.value, "reason": reason, **(data or {})},
    )
    for step in STEPS_ON_ENTRY.get(target, ()):
        add_message(session, step, errand_id=errand.id)
    return target
