"""Refusals are kept: a 403, or a 404 for another person's or employer's object, is an
``access.denied`` audit event (who, which page, which object) that survives the request's
own rollback; and a BankID order that fails or is cancelled keeps its hint code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.service import record_event
from app.db import utcnow
from app.eid.models import EidOrder, OrderStatus
from app.web import db
from devtools.bankid_simulator.app_actions import cancel_in_app, fail
from devtools.bankid_simulator.models import HintCode, SimulatorOrder
from tests.conftest import ANNA, DAVID, login, person_id, staff_id
from tests.integration.test_slice import file_and_sign_registration
from tests.support import csrf_token


def _denials(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == "access.denied").order_by(AuditEvent.id)
        )
    )


def test_another_persons_errand_is_a_recorded_denial(client: FlaskClient, session: Session) -> None:
    reference = file_and_sign_registration(client, session)
    login(client, session, ANNA)
    assert _denials(session) == []
    assert client.get(f"/mina-arenden/{reference}").status_code == 404
    token = csrf_token(client.get("/mina-arenden").get_data(True))
    assert (
        client.post(f"/mina-arenden/{reference}/aterkalla", data={"csrf_token": token}).status_code
        == 404
    )
    denials = _denials(session)
    assert [(d.actor, d.object_type, d.object_id, d.data["status"]) for d in denials] == [
        (
            f"person:{person_id(session, ANNA)}",
            "registrations.errand",
            f"reference={reference}",
            404,
        ),
        (
            f"person:{person_id(session, ANNA)}",
            "registrations.withdraw",
            f"reference={reference}",
            404,
        ),
    ]
    assert denials[1].data["method"] == "POST"
    assert denials[1].data["path"] == f"/mina-arenden/{reference}/aterkalla"


def test_a_forbidden_page_is_a_recorded_denial(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    assert client.get("/handlaggning").status_code == 403
    login(client, session, "199104239919", staff=True)  # Karin, a clerk
    assert client.get("/hantera-behorigheter/anvandare/1").status_code == 403
    assert [(d.actor, d.object_type, d.object_id, d.data["status"]) for d in _denials(session)] == [
        (f"person:{person_id(session, DAVID)}", "casework.queue", "", 403),
        (
            f"staff:{staff_id(session, '199104239919')}",
            "access.user",
            "person_id=1",
            403,
        ),
    ]


def test_an_address_that_is_no_page_is_no_denial(client: FlaskClient, session: Session) -> None:
    login(client, session, DAVID)
    assert client.get("/finns-inte").status_code == 404
    assert _denials(session) == []


def test_the_denial_is_kept_though_the_requests_work_is_undone(
    app: Flask, client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, session, DAVID)

    def half_done_then_refused() -> Any:
        record_event(db(), actor="test", action="half.done", object_type="x", object_id=1)
        abort(403)

    monkeypatch.setitem(app.view_functions, "core.todo", half_done_then_refused)
    assert client.get("/att-gora").status_code == 403
    session.expire_all()
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "half.done")).all() == []
    assert [d.object_type for d in _denials(session)] == ["core.todo"]


# --- failed BankID orders -------------------------------------------------------------------


def _start_login(client: FlaskClient) -> EidOrder:
    page = client.get("/logga-in").get_data(as_text=True)
    client.post("/logga-in", data={"csrf_token": csrf_token(page), "device": "other"})
    with client.application.extensions["behorighet"].unit_of_work() as s:
        order = s.scalars(select(EidOrder).order_by(EidOrder.id.desc())).first()
        assert order is not None
        s.expunge(order)
        return order


def _failures(session: Session, order_id: int) -> list[dict[str, Any]]:
    session.expire_all()
    return [
        e.data
        for e in session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "eid.order_failed", AuditEvent.object_id == str(order_id)
            )
        )
    ]


@pytest.mark.parametrize("hint", ["userCancel", "expiredTransaction", "startFailed"])
def test_a_failed_bankid_order_keeps_its_hint_code(
    client: FlaskClient, session: Session, hint: str
) -> None:
    order = _start_login(client)
    runtime = client.application.extensions["behorighet"]
    with runtime.unit_of_work() as s:
        if hint == "userCancel":
            cancel_in_app(s, order.order_ref)
        elif hint == "expiredTransaction":  # its time at BankID ran out
            s.execute(
                update(SimulatorOrder)
                .where(SimulatorOrder.order_ref == order.order_ref)
                .values(expires_dt=utcnow() - timedelta(seconds=1))
            )
        else:
            fail(s, order.order_ref, HintCode(hint))
    page = client.get("/logga-in/bankid").get_data(as_text=True)
    assert "Åtgärden avbruten." in page or "försök igen" in page.lower()
    stored = session.get(EidOrder, order.id)
    session.refresh(stored)
    assert (stored.status, stored.hint_code) == (OrderStatus.FAILED, hint)
    assert [(f["purpose"], f["hint_code"]) for f in _failures(session, order.id)] == [
        ("login", hint)
    ]
    client.get("/logga-in/bankid")  # asked again: recorded once
    assert len(_failures(session, order.id)) == 1


def test_a_cancelled_bankid_order_keeps_the_hint_it_had(
    client: FlaskClient, session: Session
) -> None:
    order = _start_login(client)
    client.get("/logga-in/bankid")  # collected once: outstandingTransaction
    page = client.get("/logga-in/bankid").get_data(as_text=True)
    client.post("/logga-in/avbryt", data={"csrf_token": csrf_token(page)})
    assert [(f["hint_code"], f["last_hint_code"]) for f in _failures(session, order.id)] == [
        ("cancelled", "outstandingTransaction")
    ]
