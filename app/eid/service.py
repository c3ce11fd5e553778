"""Starting, polling and finishing BankID orders. Plain functions; the client is pybankid's.

Follows BankID's RP guidelines: collect at most every two seconds, a fresh animated QR
code every second, the recommended user message for every hint and error code.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from bankid import exceptions as bankid_errors
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record_event
from app.db import utcnow
from app.eid.models import EidOrder, OrderPurpose, OrderStatus

COLLECT_INTERVAL = timedelta(seconds=2)


class BankIdClient(Protocol):
    """What the product uses of pybankid's ``BankIDClient``."""

    def authenticate(self, end_user_ip: str, **kwargs: Any) -> Any: ...
    def sign(self, end_user_ip: str, user_visible_data: str, **kwargs: Any) -> Any: ...
    def collect(self, order_ref: str) -> Any: ...
    def cancel(self, order_ref: str) -> bool: ...
    def generate_qr_code_content(
        self, qr_start_token: str, start_t: Any, qr_start_secret: str
    ) -> str: ...


class EidError(Exception):
    """BankID refused or failed; ``code`` is BankID's errorCode (or ``internalError``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_ERROR_CODES = {
    bankid_errors.AlreadyInProgressError: "alreadyInProgress",
    bankid_errors.InvalidParametersError: "invalidParameters",
    bankid_errors.NotFoundError: "notFound",
    bankid_errors.RequestTimeoutError: "requestTimeout",
    bankid_errors.MaintenanceError: "maintenance",
    bankid_errors.UnauthorizedError: "unauthorized",
}


FAILURES: tuple[type[Exception], ...] = (bankid_errors.BankIDError, httpx.HTTPError, ValueError)
"""What a call to BankID may raise: BankID's error answers, and an outage (no connection, a
timeout, an answer that is not BankID's JSON, say a proxy's error page). Each is an
:class:`EidError` (``internalError`` when not BankID's own code), shown with BankID's
recommended message, never a 500."""


def _error(exc: Exception) -> EidError:
    for cls, code in _ERROR_CODES.items():
        if isinstance(exc, cls):
            return EidError(code)
    return EidError("internalError")


def new_binding() -> tuple[str, str]:
    """A value for the browser's session and the digest stored with the order."""
    value = secrets.token_urlsafe(32)
    return value, binding_digest(value)


def binding_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _store(
    session: Session, purpose: OrderPurpose, response: Any, binding: str, **fields: Any
) -> EidOrder:
    order = EidOrder(
        purpose=purpose,
        order_ref=response["orderRef"],
        auto_start_token=response["autoStartToken"],
        qr_start_token=response["qrStartToken"],
        qr_start_secret=response["qrStartSecret"],
        browser_binding=binding,
        started_dt=utcnow(),
        **fields,
    )
    session.add(order)
    session.flush()
    return order


def start_login(session: Session, client: BankIdClient, end_user_ip: str, binding: str) -> EidOrder:
    try:
        response = client.authenticate(end_user_ip=end_user_ip)
    except FAILURES as exc:
        raise _error(exc) from exc
    return _store(session, OrderPurpose.LOGIN, response, binding)


def start_signing(
    session: Session,
    client: BankIdClient,
    end_user_ip: str,
    binding: str,
    *,
    errand_id: int,
    document: bytes,
    visible_text: str,
    signer_personnummer: str,
) -> EidOrder:
    """A sign order that only ``signer_personnummer`` can complete, carrying the PDF's hash."""
    digest = hashlib.sha256(document).hexdigest()
    try:
        response = client.sign(
            end_user_ip=end_user_ip,
            user_visible_data=visible_text,
            user_visible_data_format="simpleMarkdownV1",
            user_non_visible_data=digest,
            requirement={"personalNumber": signer_personnummer},
        )
    except FAILURES as exc:
        raise _error(exc) from exc
    return _store(
        session,
        OrderPurpose.SIGN,
        response,
        binding,
        errand_id=errand_id,
        document=document,
        document_sha256=digest,
    )


def find_order(
    session: Session, order_id: int | None, binding_value: str | None, purpose: OrderPurpose
) -> EidOrder | None:
    """The order this browser started (``None`` for anyone else's)."""
    if order_id is None or not binding_value:
        return None
    order = session.scalars(
        select(EidOrder).where(EidOrder.id == order_id).with_for_update()
    ).one_or_none()
    if order is None or order.purpose is not purpose:
        return None
    if not secrets.compare_digest(order.browser_binding, binding_digest(binding_value)):
        return None
    return order


@dataclass(frozen=True)
class OrderState:
    status: OrderStatus
    hint_code: str | None
    qr_content: str | None
    """The animated QR code's content for this second (while pending)."""


def poll(
    session: Session,
    client: BankIdClient,
    order: EidOrder,
    interval: timedelta = COLLECT_INTERVAL,
    now: datetime | None = None,
) -> OrderState:
    """The order's state; asks BankID (``collect``) at most once per ``interval``."""
    now = now or utcnow()
    if order.status is OrderStatus.PENDING and (
        order.last_collect_dt is None or now - order.last_collect_dt >= interval
    ):
        order.last_collect_dt = now
        try:
            response = client.collect(order.order_ref)
        except FAILURES as exc:
            order.status, order.hint_code = OrderStatus.FAILED, _error(exc).code
        else:
            order.hint_code = response.get("hintCode") or order.hint_code
            if response["status"] == "complete":
                order.status = OrderStatus.COMPLETE
                order.completion = dict(response["completionData"])
            elif response["status"] == "failed":
                order.status = OrderStatus.FAILED
        if order.status is OrderStatus.FAILED:
            _record_failure(session, order)
        session.flush()
    qr = None
    if order.status is OrderStatus.PENDING:
        qr = client.generate_qr_code_content(
            order.qr_start_token, order.started_dt, order.qr_start_secret
        )
    return OrderState(order.status, order.hint_code, qr)


def pending_orders(session: Session, errand_id: int) -> list[EidOrder]:
    """The errand's sign orders still pending (a signing page left open or closed)."""
    return list(
        session.scalars(
            select(EidOrder).where(
                EidOrder.errand_id == errand_id,
                EidOrder.purpose == OrderPurpose.SIGN,
                EidOrder.status == OrderStatus.PENDING,
            )
        )
    )


def _record_failure(session: Session, order: EidOrder, **data: Any) -> None:
    """Keep why an order ended without an identity or signature: BankID's hint code (say
    ``userCancel``, ``expiredTransaction``, ``startFailed``), or ``cancelled`` with the hint
    it had when the person cancelled it here, in the audit log (``eid.order_failed``)."""
    record_event(
        session,
        actor="system:bankid",
        action="eid.order_failed",
        object_type="eid_order",
        object_id=order.id,
        data={
            "purpose": order.purpose.value,
            "order_ref": order.order_ref,
            "hint_code": order.hint_code,
            "errand_id": order.errand_id,
            **data,
        },
    )


def cancel(session: Session, client: BankIdClient, order: EidOrder) -> None:
    if order.status is OrderStatus.PENDING:
        with contextlib.suppress(*FAILURES):  # gone at BankID, or unreachable: cancelled here
            client.cancel(order.order_ref)
        last_hint = order.hint_code
        order.status, order.hint_code = OrderStatus.FAILED, "cancelled"
        _record_failure(session, order, last_hint_code=last_hint)
        session.flush()


@dataclass(frozen=True)
class Identity:
    personnummer: str
    given_name: str
    family_name: str


def use_completion(session: Session, order: EidOrder) -> Identity:
    """The identity of a completed order, which can be used only once."""
    if order.status is not OrderStatus.COMPLETE or not order.completion:
        raise EidError("notComplete")
    order.status = OrderStatus.USED
    session.flush()
    user = order.completion["user"]
    return Identity(user["personalNumber"], user.get("givenName", ""), user.get("surname", ""))
