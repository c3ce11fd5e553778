"""The simulator's RP API: BankID's Relying Party API v6.0 (``auth``, ``sign``,
``phone/auth``, ``phone/sign``, ``collect``, ``cancel``), every call checked as BankID checks
it, and the errors a tester injected.

Plain functions on a session; the caller commits (also after a ``BankIdApiError``, which
may follow a change that must stay, such as the orders ``alreadyInProgress`` cancels).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.ids import InvalidIdNumber, normalise_personnummer
from app.db import utcnow
from devtools.bankid_simulator.models import (
    CallInitiator,
    FaultCode,
    HintCode,
    OrderKind,
    OrderStatus,
    SimulatorFault,
    SimulatorOrder,
)
from devtools.bankid_simulator.orders import (
    TWELVE_DIGITS,
    SimulatorConfig,
    effective_hint,
    expire_stale,
    finish,
    purge,
)

MAX_USER_VISIBLE_DATA = 40_000
MAX_USER_NON_VISIBLE_DATA = 200_000
_FAULT_STATUS = {
    FaultCode.UNAUTHORIZED: 401,
    FaultCode.REQUEST_TIMEOUT: 408,
    FaultCode.INTERNAL_ERROR: 500,
    FaultCode.MAINTENANCE: 503,
}
_ORDER_FIELDS = {"userVisibleData", "userNonVisibleData", "userVisibleDataFormat", "requirement"}
_KNOWN_FIELDS = {
    "auth": _ORDER_FIELDS | {"endUserIp", "returnUrl", "returnRisk", "web", "app"},
    "sign": _ORDER_FIELDS | {"endUserIp", "returnUrl", "returnRisk", "web", "app"},
    "phone/auth": _ORDER_FIELDS | {"personalNumber", "callInitiator"},
    "phone/sign": _ORDER_FIELDS | {"personalNumber", "callInitiator"},
}
_REQUIREMENTS = {"pinCode", "mrtd", "cardReader", "certificatePolicies", "personalNumber"}
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")


class BankIdApiError(Exception):
    """An error answer of the RP API: HTTP ``status`` and ``{errorCode, details}``."""

    def __init__(self, status: int, error_code: str, details: str) -> None:
        super().__init__(f"{error_code}: {details}")
        self.status = status
        self.error_code = error_code
        self.details = details

    def body(self) -> dict[str, str]:
        return {"errorCode": self.error_code, "details": self.details}


def invalid_parameters(details: str) -> BankIdApiError:
    return BankIdApiError(400, "invalidParameters", details)


def not_found(details: str = "Unknown endpoint") -> BankIdApiError:
    return BankIdApiError(404, "notFound", details)


ENDPOINTS = ("auth", "sign", "phone/auth", "phone/sign", "collect", "cancel")


def handle_rp_call(
    session: Session,
    endpoint: str,
    body: Any,
    config: SimulatorConfig,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One RP API call (``endpoint`` relative to ``/rp/v6.0/``), answered or raised."""
    now = now or utcnow()
    if endpoint not in ENDPOINTS:
        raise not_found()
    take_fault(session)
    if not isinstance(body, dict):
        raise invalid_parameters("Invalid JSON")
    if endpoint == "collect":
        return collect(session, body, config, now)
    if endpoint == "cancel":
        return cancel(session, body, config, now)
    return start_order(session, endpoint, body, config, now)


def start_order(
    session: Session,
    endpoint: str,
    body: dict[str, Any],
    config: SimulatorConfig,
    now: datetime | None = None,
) -> dict[str, str]:
    """``auth``, ``sign``, ``phone/auth`` or ``phone/sign``."""
    now = now or utcnow()
    phone = endpoint.startswith("phone/")
    kind = OrderKind.SIGN if endpoint.endswith("sign") else OrderKind.AUTH
    unknown = sorted(set(body) - _KNOWN_FIELDS[endpoint])
    if unknown:
        raise invalid_parameters(f"Unknown parameter: {unknown[0]}")
    requirement = _requirement(body.get("requirement"), phone)
    visible = _base64_field(body, "userVisibleData", MAX_USER_VISIBLE_DATA, text=True)
    if kind is OrderKind.SIGN and not visible:
        raise invalid_parameters("userVisibleData is required for sign")
    hidden = _base64_field(body, "userNonVisibleData", MAX_USER_NON_VISIBLE_DATA)
    visible_format = body.get("userVisibleDataFormat")
    if visible_format is not None and visible_format != "simpleMarkdownV1":
        raise invalid_parameters("Invalid userVisibleDataFormat")
    if visible_format is not None and not visible:
        raise invalid_parameters("userVisibleDataFormat without userVisibleData")
    return_risk = body.get("returnRisk", False)
    if not isinstance(return_risk, bool):
        raise invalid_parameters("Invalid returnRisk")
    for name in ("web", "app"):
        if name in body and not isinstance(body[name], dict):
            raise invalid_parameters(f"Invalid {name}")
    if "returnUrl" in body and not isinstance(body["returnUrl"], str):
        raise invalid_parameters("Invalid returnUrl")

    call_initiator: CallInitiator | None = None
    end_user_ip: str | None = None
    personal_number: str | None
    if phone:
        personal_number = _personal_number(body.get("personalNumber"), "personalNumber")
        initiator = body.get("callInitiator")
        if initiator not in ("user", "RP"):
            raise invalid_parameters("Invalid callInitiator")
        call_initiator = CallInitiator(initiator)
    else:
        end_user_ip = _ip(body.get("endUserIp"))
        personal_number = requirement.get("personalNumber")

    expire_stale(session, now)
    purge(session, config, now)
    if personal_number:
        _refuse_if_in_progress(session, personal_number, now)

    order = SimulatorOrder(
        order_ref=str(uuid.uuid4()),
        kind=kind,
        call_initiator=call_initiator,
        end_user_ip=end_user_ip,
        auto_start_token=None if phone else str(uuid.uuid4()),
        qr_start_token=None if phone else str(uuid.uuid4()),
        qr_start_secret=None if phone else str(uuid.uuid4()),
        user_visible_data=body.get("userVisibleData") if visible else None,
        user_non_visible_data=body.get("userNonVisibleData") if hidden else None,
        user_visible_data_format=visible_format,
        requirement=requirement,
        required_personal_number=personal_number,
        return_risk=return_risk,
        status=OrderStatus.PENDING,
        hint_code=HintCode.OUTSTANDING_TRANSACTION,
        created_dt=now,
        expires_dt=now + config.order_ttl,
    )
    try:
        with session.begin_nested():
            session.add(order)
            session.flush()
    except IntegrityError:
        # Another process started an order for the same person at the same moment.
        assert personal_number is not None
        _refuse_if_in_progress(session, personal_number, now)
        raise
    if phone:
        return {"orderRef": order.order_ref}
    assert order.auto_start_token and order.qr_start_token and order.qr_start_secret
    return {
        "orderRef": order.order_ref,
        "autoStartToken": order.auto_start_token,
        "qrStartToken": order.qr_start_token,
        "qrStartSecret": order.qr_start_secret,
    }


def collect(
    session: Session, body: dict[str, Any], config: SimulatorConfig, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    order = _order_for(session, body, config, now)
    answer: dict[str, Any] = {"orderRef": order.order_ref, "status": order.status.value}
    if order.status is OrderStatus.COMPLETE:
        answer["completionData"] = order.completion_data
    else:
        answer["hintCode"] = effective_hint(order, config, now).value
    return answer


def cancel(
    session: Session, body: dict[str, Any], config: SimulatorConfig, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    order = _order_for(session, body, config, now)
    if order.status is not OrderStatus.PENDING:
        raise invalid_parameters("Order already finished")
    finish(order, HintCode.CANCELLED, now)
    return {}


def take_fault(session: Session) -> None:
    """Answer with an injected error while one is left."""
    fault = session.scalars(
        select(SimulatorFault).order_by(SimulatorFault.id).limit(1).with_for_update()
    ).first()
    if fault is None:
        return
    error = BankIdApiError(
        _FAULT_STATUS[fault.error_code], fault.error_code.value, "Injected by the simulator"
    )
    if fault.remaining <= 1:
        session.delete(fault)
    else:
        fault.remaining -= 1
    session.flush()
    raise error


# -- checks ----------------------------------------------------------------------------


def _refuse_if_in_progress(session: Session, personal_number: str, now: datetime) -> None:
    """BankID refuses a second order for a person and cancels the one in progress."""
    in_progress = session.scalars(
        select(SimulatorOrder)
        .where(
            SimulatorOrder.status == OrderStatus.PENDING,
            or_(
                SimulatorOrder.required_personal_number == personal_number,
                SimulatorOrder.personal_number == personal_number,
            ),
        )
        .with_for_update()
    ).all()
    if not in_progress:
        return
    for order in in_progress:
        finish(order, HintCode.CANCELLED, now)
    session.flush()
    raise BankIdApiError(400, "alreadyInProgress", "Order already in progress for pno")


def _order_for(
    session: Session, body: dict[str, Any], config: SimulatorConfig, now: datetime
) -> SimulatorOrder:
    unknown = sorted(set(body) - {"orderRef"})
    if unknown:
        raise invalid_parameters(f"Unknown parameter: {unknown[0]}")
    order_ref = body.get("orderRef")
    if not isinstance(order_ref, str) or not order_ref:
        raise invalid_parameters("orderRef is required")
    try:
        canonical = str(uuid.UUID(order_ref))
    except ValueError:
        raise invalid_parameters("Invalid orderRef") from None
    if canonical != order_ref.lower():
        raise invalid_parameters("Invalid orderRef")
    expire_stale(session, now)
    order = session.scalars(
        select(SimulatorOrder).where(SimulatorOrder.order_ref == canonical).with_for_update()
    ).one_or_none()
    if order is None or (
        order.finished_dt is not None and order.finished_dt < now - config.retention
    ):
        raise invalid_parameters("No such order")
    return order


def _ip(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid_parameters("endUserIp is required")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid_parameters("Invalid endUserIp") from None


def _personal_number(value: Any, name: str) -> str:
    if not isinstance(value, str) or not TWELVE_DIGITS.match(value):
        raise invalid_parameters(f"Invalid {name}")
    try:
        normalised = normalise_personnummer(value)
    except InvalidIdNumber:
        raise invalid_parameters(f"Invalid {name}") from None
    if normalised != value:
        raise invalid_parameters(f"Invalid {name}")
    return value


def _requirement(value: Any, phone: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid_parameters("Invalid requirement")
    unknown = sorted(set(value) - _REQUIREMENTS)
    if unknown:
        raise invalid_parameters(f"Invalid requirement: {unknown[0]}")
    for flag in ("pinCode", "mrtd"):
        if flag in value and not isinstance(value[flag], bool):
            raise invalid_parameters(f"Invalid requirement: {flag}")
    if "cardReader" in value and value["cardReader"] not in ("class1", "class2"):
        raise invalid_parameters("Invalid requirement: cardReader")
    if "certificatePolicies" in value:
        policies = value["certificatePolicies"]
        if (
            not isinstance(policies, list)
            or not policies
            or not all(isinstance(p, str) and _OID.match(p) for p in policies)
        ):
            raise invalid_parameters("Invalid requirement: certificatePolicies")
    if "personalNumber" in value:
        if phone:
            raise invalid_parameters("Invalid requirement: personalNumber")
        _personal_number(value["personalNumber"], "requirement: personalNumber")
    return dict(value)


def _base64_field(body: dict[str, Any], name: str, limit: int, text: bool = False) -> bytes:
    value = body.get(name)
    if value is None:
        return b""
    if not isinstance(value, str) or not value:
        raise invalid_parameters(f"Invalid {name}")
    if len(value) > limit:
        raise invalid_parameters(f"{name} is too long")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameters(f"Invalid {name}") from None
    if text:
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_parameters(f"Invalid {name}") from None
    return decoded
