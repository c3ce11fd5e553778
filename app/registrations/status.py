"""What a submitter is told about their errand: its status in their words, the next step
and when SPV expects to decide. Plain values from the errand; ``app.labels`` names them.

The caseworkers' states are finer than the submitter needs and some say nothing to them
("Avslutad"): a submitter sees "Beviljad" or "Avslagen", and a step that fails shows as a
delay at once, not as the state it has not left."""

from __future__ import annotations

import enum
from datetime import datetime

from app.registrations.models import Errand
from workflows.states import ErrandState as S


class SubmitterStatus(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_SIGNATURE = "awaiting_signature"
    AWAITING_SIGNATORY = "awaiting_signatory"
    """Sent to the signatory, who signs with their own e-ID."""
    AWAITING_POST = "awaiting_post"
    RECEIVED = "received"
    IN_REVIEW = "in_review"
    AWAITING_COMPLETION = "awaiting_completion"
    GRANTED = "granted"
    """Beviljad: approved (being put in place, or done)."""
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    DELAYED = "delayed"
    """A step failed at SPV: it is tried again, or waits for SPV's staff."""
    STOPPED = "stopped"
    """Posted to an employer locked against paper: stopped at intake."""


class NextStep(enum.StrEnum):
    FILL_IN = "fill_in"
    SIGNATORY_SIGNS = "signatory_signs"
    POST_THE_FORM = "post_the_form"
    SPV_REVIEWS = "spv_reviews"
    ANSWER_SPV = "answer_spv"
    CHANGE_APPLIED = "change_applied"
    WAITING_PERIOD = "waiting_period"
    SPV_FIXES = "spv_fixes"
    NONE = "none"


_STATUS = {
    S.DRAFT: SubmitterStatus.DRAFT,
    S.AWAITING_SIGNATURE: SubmitterStatus.AWAITING_SIGNATURE,
    S.AWAITING_SIGNATORY: SubmitterStatus.AWAITING_SIGNATORY,
    S.SIGNED: SubmitterStatus.RECEIVED,
    S.AWAITING_POST: SubmitterStatus.AWAITING_POST,
    S.RECEIVED: SubmitterStatus.RECEIVED,
    S.VERIFYING: SubmitterStatus.RECEIVED,
    S.IN_REVIEW: SubmitterStatus.IN_REVIEW,
    S.AWAITING_COMPLETION: SubmitterStatus.AWAITING_COMPLETION,
    S.APPROVED: SubmitterStatus.GRANTED,
    S.AWAITING_EFFECT: SubmitterStatus.GRANTED,
    # The submitter is not told of the employer's suspicion: SPV is looking into it.
    S.SUSPECTED_FRAUD: SubmitterStatus.IN_REVIEW,
    S.APPLIED: SubmitterStatus.GRANTED,
    S.CLOSED: SubmitterStatus.GRANTED,  # closed only after being applied
    S.REJECTED: SubmitterStatus.REJECTED,
    S.WITHDRAWN: SubmitterStatus.WITHDRAWN,
    S.EXPIRED: SubmitterStatus.EXPIRED,
    S.FAILED: SubmitterStatus.DELAYED,
    S.STOPPED: SubmitterStatus.STOPPED,
}

_NEXT = {
    SubmitterStatus.DRAFT: NextStep.FILL_IN,
    SubmitterStatus.AWAITING_SIGNATURE: NextStep.SIGNATORY_SIGNS,
    SubmitterStatus.AWAITING_SIGNATORY: NextStep.SIGNATORY_SIGNS,
    SubmitterStatus.AWAITING_POST: NextStep.POST_THE_FORM,
    SubmitterStatus.RECEIVED: NextStep.SPV_REVIEWS,
    SubmitterStatus.IN_REVIEW: NextStep.SPV_REVIEWS,
    SubmitterStatus.AWAITING_COMPLETION: NextStep.ANSWER_SPV,
    SubmitterStatus.DELAYED: NextStep.SPV_FIXES,
}


def submitter_status(errand: Errand) -> SubmitterStatus:
    if errand.retrying_step is not None and errand.state not in (S.CLOSED, S.REJECTED):
        return SubmitterStatus.DELAYED
    return _STATUS[errand.state]


def next_step(errand: Errand) -> NextStep:
    status = submitter_status(errand)
    if status is SubmitterStatus.GRANTED and errand.state is S.APPROVED:
        return NextStep.CHANGE_APPLIED
    if errand.state is S.AWAITING_EFFECT:
        return NextStep.WAITING_PERIOD
    return _NEXT.get(status, NextStep.NONE)


_AWAITING_DECISION = frozenset(
    {S.RECEIVED, S.VERIFYING, S.IN_REVIEW, S.AWAITING_COMPLETION, S.SUSPECTED_FRAUD, S.FAILED}
)


def expected_decision(errand: Errand) -> datetime | None:
    """When SPV expects to decide (its due date), while the errand awaits a decision."""
    return errand.due_dt if errand.state in _AWAITING_DECISION else None
