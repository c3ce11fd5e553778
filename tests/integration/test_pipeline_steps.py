"""Pipeline steps: the checks' findings, idempotency, and a step that runs out of retries."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.models import RoleGrant
from app.core.agents import Agent
from app.db import utcnow
from app.registrations.models import (
    Channel,
    CheckOutcome,
    Errand,
    ErrandKind,
    VerificationCheck,
)
from tests.conftest import INGRID, login
from tests.factories import (
    claim_and_approve,
    public_base_url,
    received_by_esignature,
    registration_draft,
    verifiers,
)
from tests.support import wait_for
from workflows import pipeline
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.states import ErrandState

SYSTEM = Agent.system("test")


def _received(session: Session, **changes: Any) -> Errand:
    """A signed registration from David, received and waiting for verification."""
    return received_by_esignature(session, registration_draft(session, **changes))


def _outcomes(session: Session, errand: Errand) -> dict[str, tuple[CheckOutcome, list]]:
    checks = session.scalars(
        select(VerificationCheck).where(VerificationCheck.errand_id == errand.id)
    ).all()
    return {c.name: (c.outcome, c.findings) for c in checks}


def test_signatory_missing_from_the_register_is_flagged(session: Session) -> None:
    errand = _received(session, signatory_personnummer="198112189876")
    assert pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert _outcomes(session, errand)["signatory"] == (
        CheckOutcome.FLAGGED,
        ["not_in_signatory_register"],
    )
    assert errand.state is ErrandState.IN_REVIEW


def test_employer_code_of_another_employer_fails(session: Session) -> None:
    errand = _received(session)
    errand.form_data = {**errand.form_data, "employer_codes": ["A1001"]}
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    outcome, findings = _outcomes(session, errand)["employer"]
    assert (outcome, findings) == (CheckOutcome.FAILED, ["code_not_of_employer"])


def test_second_errand_for_same_person_is_flagged(session: Session) -> None:
    first = _received(session)
    pipeline.verify(session, first.id, SYSTEM, verifiers(session))
    # A paper errand for the same person arrives too (not through the web form's guard).
    second = Errand(
        kind=ErrandKind.REGISTRATION,
        channel=Channel.PAPER,
        state=ErrandState.RECEIVED,
        received_dt=utcnow(),
        employer_id=first.employer_id,
        form_data=first.form_data,
        subject_personnummer=first.subject_personnummer,
        submitted_by_id=first.submitted_by_id,
    )
    session.add(second)
    session.flush()
    pipeline.verify(session, second.id, SYSTEM, verifiers(session))
    assert _outcomes(session, second)["conflicts"] == (CheckOutcome.FLAGGED, ["pending_errand"])


def test_flagged_finding_is_shown_to_the_caseworker_in_swedish(
    client: FlaskClient, runtime: Runtime, session: Session
) -> None:
    with runtime.unit_of_work() as s:
        errand = _received(s, signatory_personnummer="198112189876")
        pipeline.verify(s, errand.id, SYSTEM, verifiers(s))
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert "Firmatecknaren finns inte i registret för arbetsgivaren." in page
    assert "Behöver granskas" in page


def test_steps_run_twice_do_the_work_once(session: Session) -> None:
    errand = _received(session)
    assert pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert not pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert len(_outcomes(session, errand)) == 5
    claim_and_approve(session, errand)
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert not pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    assert (
        session.scalar(
            select(func.count(RoleGrant.id)).where(RoleGrant.source_errand_id == errand.id)
        )
        == 1
    )


def test_unknown_errand_id_is_ignored(session: Session) -> None:
    assert not pipeline.verify(session, 999_999, SYSTEM, verifiers(session))
    assert not pipeline.apply(session, 999_999, SYSTEM, base_url=public_base_url())


@pytest.mark.parametrize("step", ["apply"])
def test_step_out_of_retries_moves_errand_to_failed(
    runtime: Runtime, session: Session, worker: dramatiq.Worker, client: FlaskClient, step: str
) -> None:
    with runtime.unit_of_work() as s:
        errand = _received(s)
        pipeline.verify(s, errand.id, SYSTEM, verifiers(s))
        # The form data lost a field on the way: applying it cannot succeed, however often.
        errand.form_data = {k: v for k, v in errand.form_data.items() if k != "given_name"}
        claim_and_approve(s, errand)
        s.flush()
        message = s.scalars(
            select(OutboxMessage).where(OutboxMessage.actor_name == "apply_errand")
        ).one()
    # Send it again with a short retry budget, as the relay would.
    actor = runtime.broker.get_actor("apply_errand")
    runtime.broker.enqueue(
        actor.message_with_options(
            kwargs=message.kwargs,
            outbox_id=message.id,
            max_retries=1,
            min_backoff=10,
            max_backoff=20,
        )
    )

    def failed() -> bool:
        session.expire_all()
        return session.get(Errand, errand.id).state is ErrandState.FAILED  # type: ignore[union-attr]

    wait_for(failed, message="the errand to be marked failed")
    stored = session.get(Errand, errand.id)
    assert stored is not None and stored.failed_step == step
    assert "given_name" in (stored.failure_reason or "")
    assert session.get(OutboxMessage, message.id).done_dt is not None  # type: ignore[union-attr]
    login(client, session, INGRID, staff=True)
    assert errand.reference in client.get("/handlaggning?lista=fel").get_data(as_text=True)
