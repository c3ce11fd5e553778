"""What waits for a person of an employer when they log in: their drafts, forms waiting
for their signature, SPV's requests for completion, permission requests to answer and
inactive users to review. Plain queries; the page is ``app.core.views.todo``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.access import inactivity
from app.access.management import authority_at, pending_requests
from app.access.models import Employer, Person
from app.registrations.models import Errand, SigningInvitation
from app.registrations.service import is_lapsed
from workflows.states import ErrandState

WAITING_FOR_SIGNATURE = (ErrandState.AWAITING_SIGNATURE, ErrandState.AWAITING_SIGNATORY)
"""The states in which an errand waits for its signatory's e-signature (at the submitter's
desk, or by invitation)."""


@dataclass(frozen=True)
class ToReview:
    employer: Employer
    inactive_users: int
    pending_requests: int


@dataclass(frozen=True)
class ToDo:
    drafts: list[Errand] = field(default_factory=list)
    to_sign: list[Errand] = field(default_factory=list)
    completion_requested: list[Errand] = field(default_factory=list)
    reviews: list[ToReview] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.drafts or self.to_sign or self.completion_requested or self.reviews)


def to_do(session: Session, person_id: int) -> ToDo:
    """Everything that waits for the person, oldest first within each kind."""
    person = session.get_one(Person, person_id)
    open_states = (ErrandState.DRAFT, ErrandState.AWAITING_COMPLETION, *WAITING_FOR_SIGNATURE)
    errands = session.scalars(
        select(Errand)
        .where(Errand.submitted_by_id == person_id, Errand.state.in_(open_states))
        .options(selectinload(Errand.employer))
        .order_by(Errand.created_dt)
    ).all()
    for_signature = session.scalars(
        select(Errand)
        .where(
            Errand.state == ErrandState.AWAITING_SIGNATORY,
            Errand.id.in_(
                select(SigningInvitation.errand_id).where(
                    SigningInvitation.signatory_personnummer == person.personnummer,
                    SigningInvitation.ended_dt.is_(None),
                )
            ),
        )
        .options(selectinload(Errand.employer))
        .order_by(Errand.created_dt)
    ).all()
    reviews = []
    for employer in inactivity.reviewable_employers(session, person_id):
        scope = inactivity.review_scope(session, person_id, employer.id)
        assert scope is not None
        inactive = inactivity.count_users(
            session, employer.id, code_ids=scope.code_ids, marked_only=True
        )
        requests = len(pending_requests(session, authority_at(session, person_id, employer.id)))
        if inactive or requests:
            reviews.append(ToReview(employer, inactive, requests))
    return ToDo(
        drafts=[e for e in errands if e.state is ErrandState.DRAFT and not is_lapsed(e)],
        to_sign=[
            *(e for e in errands if e.state in WAITING_FOR_SIGNATURE),
            *(e for e in for_signature if e.submitted_by_id != person_id),
        ],
        completion_requested=[e for e in errands if e.state is ErrandState.AWAITING_COMPLETION],
        reviews=reviews,
    )
