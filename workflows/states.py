"""The errand state machine: every state, every action, one transition table.

Pure data and rules; no database, Flask or dramatiq. ``workflows.state_machine``
applies it to an errand and writes the audit event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta


class ErrandState(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_SIGNATORY = "awaiting_signatory"
    """Sent to the signatory named in the form, who signs it later in their own session."""
    AWAITING_SIGNATURE = "awaiting_signature"
    SIGNED = "signed"
    AWAITING_POST = "awaiting_post"
    RECEIVED = "received"
    VERIFYING = "verifying"
    IN_REVIEW = "in_review"
    AWAITING_COMPLETION = "awaiting_completion"
    APPROVED = "approved"
    AWAITING_EFFECT = "awaiting_effect"
    """An approved posted registration waiting out the paper waiting period
    (``PAPER_WAITING_PERIOD``): the employer's orderers and signatories may stop it."""
    SUSPECTED_FRAUD = "suspected_fraud"
    """Stopped in the waiting period by the employer ("Det här känner vi inte till"): back
    with a caseworker as suspected fraud; never applied."""
    APPLIED = "applied"
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    FAILED = "failed"
    STOPPED = "stopped"
    """A posted form stopped at intake: its employer has locked itself against paper
    (``app.safeguards``)."""


class Action(enum.StrEnum):
    REQUEST_SIGNATURE = "request_signature"
    SEND_TO_SIGNATORY = "send_to_signatory"
    """The submitter sends the form to the named signatory to sign later (an invitation)."""
    RECALL_INVITATION = "recall_invitation"
    """The submitter takes the invitation back: the draft can be changed again."""
    DECLINE = "decline"
    """The invited signatory declines to sign, with a reason: back to the submitter."""
    RETURN_TO_SIGNATORY = "return_to_signatory"
    """An invited signatory's BankID signing was abandoned or failed: they can sign again."""
    CANCEL_SIGNATURE = "cancel_signature"
    SIGN = "sign"
    CO_SIGN = "co_sign"
    """The first of two signatories who sign jointly has signed: the errand waits for the
    other's signature (``app.registrations.joint``)."""
    PRINT_FOR_POST = "print_for_post"
    RECEIVE = "receive"
    START_VERIFICATION = "start_verification"
    FINISH_VERIFICATION = "finish_verification"
    REQUEST_COMPLETION = "request_completion"
    COMPLETE = "complete"
    APPROVE = "approve"
    REJECT = "reject"
    APPLY = "apply"
    CLOSE = "close"
    WITHDRAW = "withdraw"
    EXPIRE = "expire"
    FAIL = "fail"
    RETRY = "retry"
    RETURN_TO_REVIEW = "return_to_review"
    """The apply step found the approved change can no longer be made as decided."""
    TAKE_EFFECT = "take_effect"
    """The paper waiting period is over: the approved registration goes on to be applied."""
    DISPUTE = "dispute"
    """The employer does not know of the posted registration ("Det här känner vi inte
    till"): it goes back to a caseworker as suspected fraud."""
    STOP_AT_INTAKE = "stop_at_intake"
    OPEN_REVIEW = "open_review"
    """SPV opens an errand of its own for a caseworker to review (a signatory who signed an
    orderer's registration stopped being a signatory): straight to review."""
    """The posted form's employer has locked itself against paper: stopped when matched."""


class Party(enum.StrEnum):
    """In what capacity someone acts on an errand."""

    SUBMITTER = "submitter"
    """The person who created the errand."""
    CASEWORKER = "caseworker"
    INTAKE_CLERK = "intake_clerk"
    SYSTEM = "system"
    """The pipeline itself (actors, schedulers)."""
    SIGNATORY = "signatory"
    """The person the form names as its signatory (matched by the personnummer of their
    e-ID login): the only one who signs it (``docs/rules.md``, the named signatory)."""
    EMPLOYER = "employer"
    """One of the errand's employer's current orderers or signatories (signatory register),
    as ``app.safeguards.service`` establishes before it acts: they stop a posted
    registration in its waiting period."""


S = ErrandState
A = Action

# Where a failed step resumes when a caseworker retries it.
RESUME_STATE_OF_STEP: dict[str, ErrandState] = {
    "receipt": S.RECEIVED,
    "verify": S.RECEIVED,
    "apply": S.APPROVED,
    "archive": S.APPLIED,
    "waiting": S.AWAITING_EFFECT,
}


@dataclass(frozen=True)
class Transition:
    source: ErrandState
    action: Action
    target: ErrandState
    allowed_parties: frozenset[Party]


def _t(source: S, action: A, target: S, *parties: Party) -> Transition:
    return Transition(source, action, target, frozenset(parties))


SUB, CW, IC, SYS, SIG, EMP = (
    Party.SUBMITTER,
    Party.CASEWORKER,
    Party.INTAKE_CLERK,
    Party.SYSTEM,
    Party.SIGNATORY,
    Party.EMPLOYER,
)

TRANSITIONS: tuple[Transition, ...] = (
    _t(S.DRAFT, A.REQUEST_SIGNATURE, S.AWAITING_SIGNATURE, SUB),
    _t(S.AWAITING_SIGNATURE, A.CANCEL_SIGNATURE, S.DRAFT, SUB, SYS),
    # Signing by invitation: the signatory signs later, in their own session.
    _t(S.DRAFT, A.SEND_TO_SIGNATORY, S.AWAITING_SIGNATORY, SUB),
    _t(S.AWAITING_SIGNATORY, A.REQUEST_SIGNATURE, S.AWAITING_SIGNATURE, SIG),
    _t(S.AWAITING_SIGNATURE, A.RETURN_TO_SIGNATORY, S.AWAITING_SIGNATORY, SIG, SYS),
    _t(S.AWAITING_SIGNATORY, A.DECLINE, S.DRAFT, SIG),
    _t(S.AWAITING_SIGNATORY, A.RECALL_INVITATION, S.DRAFT, SUB),
    _t(S.AWAITING_SIGNATORY, A.PRINT_FOR_POST, S.AWAITING_POST, SUB),
    _t(S.AWAITING_SIGNATORY, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.AWAITING_SIGNATORY, A.EXPIRE, S.EXPIRED, SYS),
    _t(S.AWAITING_SIGNATURE, A.SIGN, S.SIGNED, SYS),
    _t(S.AWAITING_SIGNATURE, A.CO_SIGN, S.AWAITING_SIGNATORY, SYS),
    _t(S.DRAFT, A.PRINT_FOR_POST, S.AWAITING_POST, SUB, IC),
    _t(S.SIGNED, A.RECEIVE, S.RECEIVED, SYS),
    _t(S.AWAITING_POST, A.RECEIVE, S.RECEIVED, IC, SYS),
    _t(S.RECEIVED, A.START_VERIFICATION, S.VERIFYING, SYS),
    _t(S.VERIFYING, A.FINISH_VERIFICATION, S.IN_REVIEW, SYS),
    _t(S.IN_REVIEW, A.REQUEST_COMPLETION, S.AWAITING_COMPLETION, CW),
    _t(S.AWAITING_COMPLETION, A.COMPLETE, S.IN_REVIEW, SUB),
    _t(S.IN_REVIEW, A.APPROVE, S.APPROVED, CW),
    _t(S.IN_REVIEW, A.REJECT, S.REJECTED, CW),
    _t(S.APPROVED, A.APPLY, S.APPLIED, SYS),
    # Another removal applied first, and this one would now leave no orderer (rule 8).
    _t(S.APPROVED, A.RETURN_TO_REVIEW, S.IN_REVIEW, SYS),
    _t(S.APPLIED, A.CLOSE, S.CLOSED, SYS),
    # Paper: a posted registration approved waits out the waiting period (``APPROVED_ON_PAPER``),
    # then takes effect; the employer may stop it meanwhile, and a stopped one is rejected.
    _t(S.AWAITING_EFFECT, A.TAKE_EFFECT, S.APPROVED, SYS),
    _t(S.AWAITING_EFFECT, A.DISPUTE, S.SUSPECTED_FRAUD, EMP),
    _t(S.SUSPECTED_FRAUD, A.REJECT, S.REJECTED, CW),
    # Paper: the employer has locked itself against posted forms.
    _t(S.AWAITING_POST, A.STOP_AT_INTAKE, S.STOPPED, SYS, IC),
    # SPV's own review of an orderer's role (``ErrandKind.SIGNATORY_CHANGE``).
    _t(S.DRAFT, A.OPEN_REVIEW, S.IN_REVIEW, SYS),
    _t(S.DRAFT, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.AWAITING_SIGNATURE, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.AWAITING_POST, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.IN_REVIEW, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.AWAITING_COMPLETION, A.WITHDRAW, S.WITHDRAWN, SUB),
    _t(S.DRAFT, A.EXPIRE, S.EXPIRED, SYS),
    _t(S.AWAITING_SIGNATURE, A.EXPIRE, S.EXPIRED, SYS),
    _t(S.AWAITING_POST, A.EXPIRE, S.EXPIRED, SYS),
    _t(S.AWAITING_COMPLETION, A.EXPIRE, S.EXPIRED, SYS),
    _t(S.RECEIVED, A.FAIL, S.FAILED, SYS),
    _t(S.VERIFYING, A.FAIL, S.FAILED, SYS),
    _t(S.APPROVED, A.FAIL, S.FAILED, SYS),
    _t(S.APPLIED, A.FAIL, S.FAILED, SYS),
    _t(S.AWAITING_EFFECT, A.FAIL, S.FAILED, SYS),
    # The target of a retry is the failed step's resume state (RESUME_STATE_OF_STEP).
    _t(S.FAILED, A.RETRY, S.FAILED, CW),
)

TRANSITION_TABLE: dict[tuple[ErrandState, Action], Transition] = {
    (t.source, t.action): t for t in TRANSITIONS
}

APPROVED_ON_PAPER: dict[tuple[ErrandState, Action], ErrandState] = {
    (S.IN_REVIEW, A.APPROVE): S.AWAITING_EFFECT,
}
"""Where a posted registration goes instead of the table's target: approved, it takes
effect only after the paper waiting period (an e-signed one at once)."""

PAPER_WAITING_PERIOD = timedelta(days=14)
"""How long an approved posted registration waits before it takes effect (the default of
the setting ``PAPER_WAITING_DAYS``)."""

TERMINAL_STATES = frozenset({S.CLOSED, S.REJECTED, S.WITHDRAWN, S.EXPIRED, S.STOPPED})

# States in which the errand has reached SPV (received_dt is set).
RECEIVED_STATES = frozenset(
    {
        S.RECEIVED,
        S.VERIFYING,
        S.IN_REVIEW,
        S.AWAITING_COMPLETION,
        S.APPROVED,
        S.AWAITING_EFFECT,
        S.SUSPECTED_FRAUD,
        S.APPLIED,
        S.CLOSED,
        S.REJECTED,
    }
)
# States that carry a caseworker's decision.
DECIDED_STATES = frozenset({S.APPROVED, S.AWAITING_EFFECT, S.APPLIED, S.CLOSED, S.REJECTED})
# States in which an errand for the same person and employer blocks a new one.
PENDING_STATES = frozenset(
    {
        S.AWAITING_SIGNATORY,
        S.AWAITING_SIGNATURE,
        S.SIGNED,
        S.AWAITING_POST,
        S.RECEIVED,
        S.VERIFYING,
        S.IN_REVIEW,
        S.AWAITING_COMPLETION,
        S.APPROVED,
        S.AWAITING_EFFECT,
        S.SUSPECTED_FRAUD,
        S.FAILED,
    }
)

# The pipeline steps to enqueue when an errand enters a state.
STEPS_ON_ENTRY: dict[ErrandState, tuple[str, ...]] = {
    S.RECEIVED: ("issue_receipt", "verify_errand"),
    S.APPROVED: ("apply_errand",),
    # The decision letter, filed with the errand's documents (then applied → closed).
    S.APPLIED: ("archive_errand",),
    S.REJECTED: ("archive_errand",),
    # The waiting period starts: its end is set and the employer is told (``app.safeguards``).
    S.AWAITING_EFFECT: ("start_waiting_period",),
    # The submitter and the employer's signatories are told why the form was stopped.
    S.STOPPED: ("notify_stopped",),
}

LAPSES_AS_DRAFT: frozenset[ErrandState] = frozenset({S.DRAFT, S.AWAITING_SIGNATORY})
"""States that lapse after the draft's time, ``RETENTION_DRAFTS_DAYS`` (one setting: a
draft lapses and is then removed after the same days; ``workflows.state_machine.
lapse_after``). The invitation lapses with the draft (its expiry carries over:
``KEEPS_EXPIRY``)."""

# How long an errand may wait for its submitter in another state before it expires.
EXPIRES_AFTER: dict[ErrandState, timedelta] = {
    # A BankID order lives a few minutes; an errand left here (the page closed) goes back
    # to where it can be signed again (``app.registrations.service.expire_lapsed``).
    S.AWAITING_SIGNATURE: timedelta(minutes=15),
    S.AWAITING_POST: timedelta(days=60),
    S.AWAITING_COMPLETION: timedelta(days=30),
}

EXPIRING_STATES: frozenset[ErrandState] = LAPSES_AS_DRAFT | frozenset(EXPIRES_AFTER)
"""Every state an errand lapses from when its ``expires_dt`` has passed."""

KEEPS_EXPIRY: frozenset[tuple[ErrandState, ErrandState]] = frozenset(
    {
        (S.DRAFT, S.AWAITING_SIGNATORY),
        (S.AWAITING_SIGNATORY, S.DRAFT),
    }
)
"""Moves that keep the errand's expiry: an invitation expires with the draft it was sent
from, and a draft the invitation returns to keeps its time."""

SIGNATORY_REMINDER_BEFORE = timedelta(days=3)
"""How long before an invitation expires its signatory is reminded (once)."""

SUBMITTER_REMINDER_INTERVAL = timedelta(days=1)
"""How often the submitter may remind the invited signatory."""

DECISION_TIME = timedelta(days=10)
"""SPV's service level: a received errand is decided within this time.

The clock stands still while the errand waits for the submitter's completion."""

DUE_REMINDER_BEFORE = timedelta(days=2)
"""How long before the due date the caseworker holding the errand is reminded; once the
due date has passed, the errand is escalated to the team leads."""


class Refusal(enum.StrEnum):
    """Why an action on an errand was refused (``IllegalTransition.code``)."""

    WRONG_STATE = "wrong_state"
    NOT_PERMITTED = "not_permitted"
    FOUR_EYES = "four_eyes"
    INCOMPLETE = "incomplete"
    CHECKS_FAILED = "checks_failed"
    UNACKNOWLEDGED_FINDINGS = "unacknowledged_findings"


class IllegalTransition(Exception):
    """The action is not allowed in the errand's current state, or not for this party.

    ``code`` says why, for the UI to put in words (``app.labels``); ``reason`` says it in
    English for logs and tests.
    """

    def __init__(
        self,
        state: ErrandState,
        action: Action,
        reason: str,
        code: Refusal = Refusal.WRONG_STATE,
    ) -> None:
        super().__init__(f"cannot {action.value} an errand in state {state.value}: {reason}")
        self.state = state
        self.action = action
        self.reason = reason
        self.code = code


def find_transition(state: ErrandState, action: Action, parties: frozenset[Party]) -> Transition:
    """The transition for ``action`` in ``state``, if one of ``parties`` may take it."""
    transition = TRANSITION_TABLE.get((state, action))
    if transition is None:
        raise IllegalTransition(state, action, "not allowed in this state")
    if not parties & transition.allowed_parties:
        names = ", ".join(sorted(p.value for p in parties)) or "nobody"
        raise IllegalTransition(state, action, f"not allowed for {names}", Refusal.NOT_PERMITTED)
    return transition
