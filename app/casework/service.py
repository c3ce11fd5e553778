"""The caseworker queue and decisions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.core.agents import Agent
from app.registrations.models import Submission
from workflows.state_machine import transition
from workflows.states import Action, SubmissionState


class NotFound(Exception):
    pass


def queue(
    session: Session,
    states: tuple[SubmissionState, ...] = (SubmissionState.IN_REVIEW,),
    limit: int = 50,
) -> list[Submission]:
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.state.in_(states))
            .options(selectinload(Submission.employer), selectinload(Submission.checks))
            .order_by(Submission.received_dt, Submission.id)
            .limit(limit)
        )
    )


def errand(session: Session, reference: str) -> Submission:
    submission = session.scalar(
        select(Submission)
        .where(Submission.reference == reference)
        .options(
            selectinload(Submission.employer),
            selectinload(Submission.checks),
            selectinload(Submission.submitted_by),
        )
    )
    if submission is None:
        raise NotFound(reference)
    return submission


def approve_submission(session: Session, agent: Agent, submission: Submission) -> None:
    transition(session, submission, Action.APPROVE, agent)


def reject_submission(session: Session, agent: Agent, submission: Submission, reason: str) -> None:
    transition(session, submission, Action.REJECT, agent, reason=reason)
