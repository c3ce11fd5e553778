"""Apply the transition table to a submission: guards, timestamps, audit, next step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.audit.service import record_event
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.registrations.models import Submission
from workflows.outbox import add_message
from workflows.states import (
    DECISION_TIME,
    EXPIRES_AFTER,
    RESUME_STATE_OF_STEP,
    STEPS_ON_ENTRY,
    Action,
    IllegalTransition,
    Party,
    Refusal,
    SubmissionState,
    find_transition,
)


def parties_of(agent: Agent, submission: Submission) -> frozenset[Party]:
    """The capacities in which ``agent`` may act on ``submission``."""
    if agent.kind is AgentKind.SYSTEM:
        return frozenset({Party.SYSTEM})
    if agent.kind is AgentKind.PERSON:
        is_submitter = agent.id == submission.submitted_by_id
        return frozenset({Party.SUBMITTER}) if is_submitter else frozenset()
    parties = set()
    if agent.is_caseworker:
        parties.add(Party.CASEWORKER)
    if agent.is_intake_clerk:
        parties.add(Party.INTAKE_CLERK)
    return frozenset(parties)


def check_four_eyes(submission: Submission, agent: Agent, action: Action) -> None:
    """Nobody decides an errand they submitted, that concerns themselves, or whose posted
    paper they took in as the intake clerk."""
    own = {submission.submitted_by.personnummer, submission.subject_personnummer}
    took_it_in = agent.kind is AgentKind.STAFF and agent.id == submission.received_by_staff_id
    if (agent.personnummer is not None and agent.personnummer in own) or took_it_in:
        raise IllegalTransition(
            submission.state,
            action,
            "four eyes: you cannot decide your own errand",
            Refusal.FOUR_EYES,
        )


def _resume_due_date(submission: Submission, now: datetime) -> None:
    """The time spent waiting for the submitter does not count against SPV's due date."""
    if submission.paused_dt is not None and submission.due_dt is not None:
        submission.due_dt += now - submission.paused_dt
        submission.reminded_dt = None
        submission.escalated_dt = None
    submission.paused_dt = None


def transition(
    session: Session,
    submission: Submission,
    action: Action,
    agent: Agent,
    *,
    reason: str | None = None,
    failed_step: str | None = None,
    data: dict[str, Any] | None = None,
) -> SubmissionState:
    """Move ``submission`` by ``action`` or raise ``IllegalTransition`` having changed nothing."""
    source = submission.state
    rule = find_transition(source, action, parties_of(agent, submission))
    target = rule.target
    now = utcnow()

    if action in (Action.APPROVE, Action.REJECT):
        check_four_eyes(submission, agent, action)
    if action is Action.FAIL and not (failed_step and reason):
        raise IllegalTransition(
            source, action, "a failure needs the step and the reason", Refusal.INCOMPLETE
        )
    if action is Action.RETRY:
        resume = RESUME_STATE_OF_STEP.get(submission.failed_step or "")
        if resume is None:
            raise IllegalTransition(
                source, action, "the failed step cannot be retried", Refusal.INCOMPLETE
            )
        target = resume
    if action is Action.RECEIVE and submission.channel is None:
        raise IllegalTransition(
            source, action, "the channel must be known when received", Refusal.INCOMPLETE
        )

    submission.state = target
    expires_after = EXPIRES_AFTER.get(target)
    submission.expires_dt = now + expires_after if expires_after else None
    if action is Action.RECEIVE:
        submission.received_dt = now
        submission.due_dt = now + DECISION_TIME
        submission.received_by_staff_id = agent.id if agent.kind is AgentKind.STAFF else None
    elif action in (Action.APPROVE, Action.REJECT):
        submission.decided_dt = now
        submission.decided_by_staff_id = agent.id
    elif action is Action.RETURN_TO_REVIEW:
        submission.decided_dt = None
        submission.decided_by_staff_id = None
    elif action is Action.FAIL:
        submission.failed_step = failed_step
        submission.failure_reason = reason
    elif action is Action.RETRY:
        submission.failed_step = None
        submission.failure_reason = None
    elif action is Action.REQUEST_COMPLETION:
        submission.paused_dt = now
    elif action is Action.COMPLETE:
        _resume_due_date(submission, now)

    session.flush()
    record_event(
        session,
        actor=agent.audit_label,
        action=f"submission.{action.value}",
        object_type="submission",
        object_id=submission.id,
        data={"from": source.value, "to": target.value, "reason": reason, **(data or {})},
    )
    for step in STEPS_ON_ENTRY.get(target, ()):
        add_message(session, step, submission_id=submission.id)
    return target
