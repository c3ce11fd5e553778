"""The vertical slice end to end on PostgreSQL, with the in-process, Redis and RabbitMQ brokers:
form → received → verify actor → caseworker queue → approve → apply actor → orderer grant."""

from __future__ import annotations

import re

import dramatiq
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.models import Role, RoleGrant
from app.audit.models import AuditEvent
from app.audit.service import verify_chain
from app.registrations.models import CheckOutcome, Errand
from tests.conftest import DAVID, INGRID, login, sign_with_bankid
from tests.support import RABBITMQ_URL, REDIS_URL, csrf_token, require_service, walk_registration
from tests.support import wait_for as _wait_for
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.states import ErrandState


@pytest.fixture(
    params=[
        pytest.param("stub://", id="in-process"),
        pytest.param(REDIS_URL, id="redis"),
        pytest.param(RABBITMQ_URL, id="rabbitmq"),
    ]
)
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = request.param
    if url.startswith("redis"):
        require_service("Redis")
    elif url.startswith("amqp"):
        require_service("RabbitMQ")
    return url


def _state(runtime: Runtime, reference: str) -> ErrandState:
    with runtime.session_factory() as s:
        return s.scalars(select(Errand.state).where(Errand.reference == reference)).one()


def file_and_sign_registration(client: FlaskClient, session: Session) -> str:
    """David (HR at Provverket) files a registration and signs it. Returns its reference."""
    login(client, session, DAVID)
    reference = walk_registration(client)
    assert re.fullmatch(r"BB-[0-9A-Z]{4}-[0-9A-Z]{4}", reference)
    page = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "Utkast" in page
    sign_with_bankid(client, reference)
    return reference


def test_registration_flows_from_form_to_grant(
    client: FlaskClient, runtime: Runtime, session: Session, worker: dramatiq.Worker
) -> None:
    reference = file_and_sign_registration(client, session)

    _wait_for(
        lambda: _state(runtime, reference) is ErrandState.IN_REVIEW,
        message="the verify actor to put the errand in review",
    )
    errand = session.scalars(select(Errand).where(Errand.reference == reference)).one()
    assert {c.name: c.outcome for c in errand.checks} == {
        "id_numbers": CheckOutcome.PASSED,
        "employer": CheckOutcome.PASSED,
        "signatory": CheckOutcome.PASSED,
        "signature": CheckOutcome.PASSED,
        "conflicts": CheckOutcome.PASSED,
    }

    client.post("/logga-ut", data={"csrf_token": csrf_token(client.get("/").get_data(True))})
    login(client, session, INGRID, staff=True)
    queue = client.get("/handlaggning").get_data(as_text=True)
    assert reference in queue
    page = client.get(f"/handlaggning/{reference}").get_data(as_text=True)
    assert "Firmatecknare enligt registret" in page
    claimed = client.post(f"/handlaggning/{reference}/ta", data={"csrf_token": csrf_token(page)})
    assert claimed.status_code == 302
    approved = client.post(
        f"/handlaggning/{reference}/godkann", data={"csrf_token": csrf_token(page)}
    )
    assert approved.status_code == 302

    _wait_for(
        lambda: _state(runtime, reference) is ErrandState.CLOSED,
        message="the apply actor to grant the role and the archive actor to close the errand",
    )
    session.expire_all()
    grants = session.scalars(select(RoleGrant).where(RoleGrant.source_errand_id == errand.id)).all()
    assert len(grants) == 1
    assert grants[0].role is Role.ORDERER and grants[0].person.personnummer == "198507049859"
    assert grants[0].employer.orgnr == "2021004920" and grants[0].is_all_codes

    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "errand", AuditEvent.object_id == str(errand.id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "errand.created",
        "errand.step_saved",  # the three steps after the employer
        "errand.step_saved",
        "errand.step_saved",
        "errand.request_signature",
        "errand.sign",
        "errand.receive",
        "errand.start_verification",
        "errand.finish_verification",
        "errand.claimed",
        "errand.approve",
        "errand.apply",
        "errand.close",
    ]
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "role_grant.created")
        )
        == 1
    )
    _wait_for(lambda: _all_messages_done(runtime), message="every outbox message to be done")
    assert verify_chain(session).is_intact


def _all_messages_done(runtime: Runtime) -> bool:
    with runtime.session_factory() as s:
        # The errand's steps (its emails have no errand id; test_notifications sends them).
        rows = s.scalars(select(OutboxMessage).where(OutboxMessage.errand_id.is_not(None))).all()
        # receipt, verify, apply, archive
        return len(rows) == 4 and all(r.done_dt is not None for r in rows)


def test_a_posted_removal_flows_from_scan_to_closed(
    runtime: Runtime, session: Session, worker: dramatiq.Worker
) -> None:
    """The paper channel on each broker: printed, scanned in a batch the read actor sorts,
    confirmed by the clerk, verified, approved, applied and archived."""
    from app.intake import reading
    from app.intake.models import BatchSource, PaperForm
    from tests import scan_corpus as corpus
    from tests.factories import (
        caseworker,
        clerk,
        confirm_signed_paper,
        printed,
        printed_for_post,
        removal_draft,
    )

    errand = printed_for_post(session, removal_draft(session))
    data = corpus.as_tiff(corpus.scan_pdf(printed(errand), ["rotated+1", "bilevel-200"]))
    reading.receive_file(session, clerk(session), data, "post.tif", BatchSource.UPLOAD)
    session.commit()

    def assembled() -> PaperForm | None:
        session.expire_all()
        return session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))

    _wait_for(lambda: assembled() is not None, message="the read actor to assemble the form")
    form = assembled()
    assert form is not None
    confirm_signed_paper(session, form)
    session.commit()
    _wait_for(
        lambda: _state(runtime, errand.reference) is ErrandState.IN_REVIEW,
        message="the verify actor",
    )
    session.expire_all()
    assert {c.name: c.outcome for c in errand.checks}["signature"] is CheckOutcome.PASSED
    ingrid = caseworker(session, INGRID)
    from app.casework import service as casework

    assert casework.claim(session, ingrid, errand)
    assert casework.approve_errand(session, ingrid, errand)
    session.commit()
    _wait_for(
        lambda: _state(runtime, errand.reference) is ErrandState.CLOSED,
        message="the apply and archive actors",
    )
    session.expire_all()
    grants = session.scalars(
        select(RoleGrant).where(RoleGrant.employer_id == errand.employer_id)
    ).all()
    active = {g.person.personnummer for g in grants if g.valid_to_dt is None}
    assert DAVID not in active and "198507049859" in active
    # Rule 5: each person whose permission changed is emailed.
    from app.notifications.models import EmailMessage

    emailed = session.execute(
        select(EmailMessage.template, EmailMessage.to_name).where(
            EmailMessage.errand_id == errand.id
        )
    ).all()
    assert ("role_ended", "David Dahl") in emailed
    assert ("role_granted", "Fredrik Falk") in emailed
    assert verify_chain(session).is_intact
