"""The simulator's rules: BankID's RP API v6.0 and what the user does in the app.

Plain functions on a session; the caller commits (also after a ``BankIdApiError``, which
may follow a change that must stay, such as the orders ``alreadyInProgress`` cancels).

An order's life::

    start ── pending/outstandingTransaction ──(no app after a while)── pending/noClient
               │ app opened (autostart) or QR scanned
               ├── phone orders: pending/userCallConfirm ──(not in a call)── failed/userDeclinedCall
               │        │ call confirmed
               ▼        ▼
            pending/started ──(identity picked)── pending/userMrtd (mrtd required) ──┐
                                   │                                                  │
                                   ▼                                                  ▼
                            pending/userSign ──(Legitimera / Skriv under)── complete
    any pending order: app cancel → failed/userCancel; RP cancel or a new order for the same
    person → failed/cancelled; the tester's failures → failed/certificateErr, startFailed,
    notSupportedByUserApp, transactionRiskBlocked; time → failed/expiredTransaction.

A failed or complete order can be collected for ``retention`` after it ended; then BankID
answers ``invalidParameters`` ("No such order"), as it does for an orderRef it never issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access.models import Person
from app.config import Settings
from app.core.ids import InvalidIdNumber, normalise_personnummer
from app.db import utcnow
from app.eid.simulator.models import (
    FAILED_HINTS,
    CallInitiator,
    FaultCode,
    HintCode,
    OrderKind,
    OrderStatus,
    SimulatorFault,
    SimulatorOrder,
)
from app.eid.simulator.pki import SimulatorPki, UserIdentity
from app.eid.simulator.signature import SignedContent, build_signature, unique_hardware_id
from app.registers.models import SignatoryRegisterEntry
from app.staff.models import StaffMember

MAX_USER_VISIBLE_DATA = 40_000
MAX_USER_NON_VISIBLE_DATA = 200_000
QR_TOLERANCE_S = 1
TESTER_FAILURES = (
    HintCode.CERTIFICATE_ERR,
    HintCode.START_FAILED,
    HintCode.NOT_SUPPORTED_BY_USER_APP,
    HintCode.TRANSACTION_RISK_BLOCKED,
)
"""Failures the app page can cause (the others have their own button, or come with time)."""

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
_DIGITS12 = re.compile(r"^\d{12}$")
_QR = re.compile(r"^bankid\.([0-9a-f-]{36})\.(\d{1,6})\.([0-9a-f]{64})$")


@dataclass(frozen=True)
class SimulatorConfig:
    order_ttl: timedelta = timedelta(seconds=180)
    """A pending order fails with ``expiredTransaction`` this long after it started."""
    retention: timedelta = timedelta(seconds=180)
    """A failed or complete order can be collected this long after it ended."""
    no_client_after: timedelta = timedelta(seconds=5)
    """``outstandingTransaction`` turns into ``noClient`` when no app took the order by then."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SimulatorConfig:
        return cls(order_ttl=timedelta(seconds=settings.bankid_simulator_order_ttl_s))


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


class AppActionRefused(Exception):
    """What the tester asked of the app is not possible now; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the RP API ------------------------------------------------------------------------

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
    _finish(order, HintCode.CANCELLED, now)
    return {}


def effective_hint(order: SimulatorOrder, config: SimulatorConfig, now: datetime) -> HintCode:
    """The hint ``collect`` reports: ``noClient`` once an untaken order has waited a while."""
    assert order.hint_code is not None
    if (
        order.status is OrderStatus.PENDING
        and order.hint_code is HintCode.OUTSTANDING_TRANSACTION
        and now - order.created_dt >= config.no_client_after
    ):
        return HintCode.NO_CLIENT
    return order.hint_code


def expire_stale(session: Session, now: datetime) -> None:
    """Pending orders past their time fail with ``expiredTransaction`` (one statement)."""
    session.execute(
        update(SimulatorOrder)
        .where(SimulatorOrder.status == OrderStatus.PENDING, SimulatorOrder.expires_dt <= now)
        .values(
            status=OrderStatus.FAILED,
            hint_code=HintCode.EXPIRED_TRANSACTION,
            finished_dt=SimulatorOrder.expires_dt,
        )
        .execution_options(synchronize_session="fetch")
    )


def purge(session: Session, config: SimulatorConfig, now: datetime) -> None:
    """Forget orders that ended longer than ``retention`` ago."""
    session.execute(
        delete(SimulatorOrder)
        .where(
            SimulatorOrder.status != OrderStatus.PENDING,
            SimulatorOrder.finished_dt < now - config.retention,
        )
        .execution_options(synchronize_session=False)
    )


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


def inject_fault(session: Session, error_code: FaultCode, count: int = 1) -> SimulatorFault:
    """The next ``count`` RP API calls answer with ``error_code``."""
    if not 1 <= count <= 100:
        raise AppActionRefused("bad_count")
    fault = SimulatorFault(error_code=error_code, remaining=count)
    session.add(fault)
    session.flush()
    return fault


# -- the app ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingOrder:
    """An order as the app page shows it."""

    order: SimulatorOrder
    hint: HintCode
    seconds_left: int
    visible_text: str | None
    identities: list[UserIdentity] = field(default_factory=list)
    """Whom the tester may complete it as (only the required person, when there is one)."""

    @property
    def order_ref(self) -> str:
        return self.order.order_ref


def pending_orders(
    session: Session, config: SimulatorConfig, now: datetime | None = None
) -> list[PendingOrder]:
    """Every pending order, newest first, with who may complete it."""
    now = now or utcnow()
    expire_stale(session, now)
    orders = session.scalars(
        select(SimulatorOrder)
        .where(SimulatorOrder.status == OrderStatus.PENDING)
        .order_by(SimulatorOrder.created_dt.desc(), SimulatorOrder.id.desc())
    ).all()
    everyone: list[UserIdentity] | None = None
    shown = []
    for order in orders:
        if order.required_personal_number:
            identities = [identity_for(session, order.required_personal_number)]
        else:
            everyone = everyone if everyone is not None else known_identities(session)
            identities = everyone
        shown.append(
            PendingOrder(
                order=order,
                hint=effective_hint(order, config, now),
                seconds_left=max(0, math.ceil((order.expires_dt - now).total_seconds())),
                visible_text=_decode_text(order.user_visible_data),
                identities=identities,
            )
        )
    return shown


def recent_orders(
    session: Session, config: SimulatorConfig, now: datetime | None = None, limit: int = 10
) -> list[SimulatorOrder]:
    """Orders that ended and can still be collected, newest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(SimulatorOrder)
            .where(
                SimulatorOrder.status != OrderStatus.PENDING,
                SimulatorOrder.finished_dt >= now - config.retention,
            )
            .order_by(SimulatorOrder.finished_dt.desc(), SimulatorOrder.id.desc())
            .limit(limit)
        ).all()
    )


def known_identities(session: Session) -> list[UserIdentity]:
    """The seeded persons and SPV staff, by name."""
    identities = {
        p.personnummer: UserIdentity(p.personnummer, p.given_name, p.family_name)
        for p in session.scalars(select(Person)).all()
    }
    for member in session.scalars(select(StaffMember)).all():
        identities.setdefault(member.personnummer, _split_name(member.personnummer, member.name))
    return sorted(identities.values(), key=lambda i: (i.surname, i.given_name, i.personal_number))


def identity_for(session: Session, personal_number: str) -> UserIdentity:
    """The person or staff member with this number; a made-up name for anyone else."""
    person = session.scalars(
        select(Person).where(Person.personnummer == personal_number)
    ).one_or_none()
    if person is not None:
        return UserIdentity(personal_number, person.given_name, person.family_name)
    member = session.scalars(
        select(StaffMember).where(StaffMember.personnummer == personal_number)
    ).one_or_none()
    if member is not None:
        return _split_name(personal_number, member.name)
    signatory = session.scalars(
        select(SignatoryRegisterEntry).where(SignatoryRegisterEntry.personnummer == personal_number)
    ).first()
    if signatory is not None:
        return _split_name(personal_number, signatory.name)
    return UserIdentity(personal_number, "Test", "Testsson")


def parse_personal_number(value: str) -> str:
    """What a tester types: 10 or 12 digits, with or without a dash."""
    try:
        return normalise_personnummer(value)
    except InvalidIdNumber:
        raise AppActionRefused("bad_personal_number") from None


def open_order(
    session: Session, order_ref: str, config: SimulatorConfig, now: datetime | None = None
) -> SimulatorOrder:
    """The app starts with the order (autostart token, or the phone app receiving it)."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.opened_dt is not None:
        raise AppActionRefused("already_open")
    order.opened_dt = now
    order.hint_code = HintCode.USER_CALL_CONFIRM if order.is_phone else HintCode.STARTED
    session.flush()
    return order


def scan_qr(session: Session, qr_content: str, now: datetime | None = None) -> SimulatorOrder:
    """The app scans an animated QR code: valid for its order within ±1 s, as at BankID."""
    now = now or utcnow()
    match = _QR.match(qr_content.strip())
    if match is None:
        raise AppActionRefused("qr_unreadable")
    expire_stale(session, now)
    order = session.scalars(
        select(SimulatorOrder)
        .where(
            SimulatorOrder.qr_start_token == match.group(1),
            SimulatorOrder.status == OrderStatus.PENDING,
        )
        .with_for_update()
    ).one_or_none()
    if order is None or order.qr_start_token is None or order.qr_start_secret is None:
        raise AppActionRefused("qr_unknown")
    if order.opened_dt is not None:
        raise AppActionRefused("already_open")
    if not verify_qr_content(
        qr_content.strip(), order.qr_start_token, order.qr_start_secret, order.created_dt, now
    ):
        raise AppActionRefused("qr_invalid")
    order.opened_dt = now
    order.hint_code = HintCode.STARTED
    session.flush()
    return order


def qr_code_content(qr_start_token: str, qr_start_secret: str, seconds: int) -> str:
    """BankID's animated QR code at ``seconds`` after the order started."""
    code = hmac.new(qr_start_secret.encode(), str(seconds).encode(), hashlib.sha256).hexdigest()
    return f"bankid.{qr_start_token}.{seconds}.{code}"


def verify_qr_content(
    qr_content: str,
    qr_start_token: str,
    qr_start_secret: str,
    started: datetime,
    now: datetime,
    tolerance_s: int = QR_TOLERANCE_S,
) -> bool:
    """Whether ``qr_content`` is the order's code for a second within ``tolerance_s`` of now."""
    match = _QR.match(qr_content)
    if match is None or not hmac.compare_digest(match.group(1), qr_start_token):
        return False
    seconds = int(match.group(2))
    elapsed = math.floor((now - started).total_seconds())
    if abs(seconds - elapsed) > tolerance_s:
        return False
    expected = qr_code_content(qr_start_token, qr_start_secret, seconds)
    return hmac.compare_digest(expected, qr_content)


def confirm_call(session: Session, order_ref: str, now: datetime | None = None) -> SimulatorOrder:
    """A phone order: the user confirms being in a call with the RP."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.hint_code is not HintCode.USER_CALL_CONFIRM:
        raise AppActionRefused("not_waiting_for_call")
    order.hint_code = HintCode.STARTED
    session.flush()
    return order


def decline_call(session: Session, order_ref: str, now: datetime | None = None) -> SimulatorOrder:
    """A phone order: the user says they are not in a call with the RP."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.hint_code is not HintCode.USER_CALL_CONFIRM:
        raise AppActionRefused("not_waiting_for_call")
    _finish(order, HintCode.USER_DECLINED_CALL, now)
    session.flush()
    return order


def choose_identity(
    session: Session,
    order_ref: str,
    identity: UserIdentity,
    device_ip: str | None,
    now: datetime | None = None,
) -> SimulatorOrder:
    """The user picks the BankID to use: ``userSign`` (or ``userMrtd`` first when required)."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.hint_code is not HintCode.STARTED:
        raise AppActionRefused("not_started")
    if order.required_personal_number and identity.personal_number != (
        order.required_personal_number
    ):
        # BankID's app only lists the IDs that may complete the order.
        raise AppActionRefused("wrong_person")
    if not _DIGITS12.match(identity.personal_number):
        raise AppActionRefused("bad_personal_number")
    order.personal_number = identity.personal_number
    order.given_name = identity.given_name
    order.surname = identity.surname
    order.device_ip = device_ip or order.end_user_ip
    order.hint_code = HintCode.USER_MRTD if order.requirement.get("mrtd") else HintCode.USER_SIGN
    session.flush()
    return order


def scan_mrtd(session: Session, order_ref: str, now: datetime | None = None) -> SimulatorOrder:
    """The user scans their passport or ID card (``requirement.mrtd``)."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.hint_code is not HintCode.USER_MRTD:
        raise AppActionRefused("not_waiting_for_mrtd")
    order.hint_code = HintCode.USER_SIGN
    session.flush()
    return order


def approve(
    session: Session,
    order_ref: str,
    pki: SimulatorPki,
    identity: UserIdentity | None = None,
    device_ip: str | None = None,
    now: datetime | None = None,
) -> SimulatorOrder:
    """Legitimera / Skriv under: the order completes with a signature and an OCSP response.

    From ``started`` an identity picks the BankID first (through ``userSign``).
    """
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    if order.hint_code is HintCode.STARTED and identity is not None:
        order = choose_identity(session, order_ref, identity, device_ip, now)
    if order.hint_code is not HintCode.USER_SIGN:
        raise AppActionRefused(
            "not_waiting_for_mrtd" if order.hint_code is HintCode.USER_MRTD else "not_started"
        )
    assert order.personal_number and order.given_name is not None and order.surname is not None
    user = UserIdentity(order.personal_number, order.given_name, order.surname)
    credentials = pki.user(user)
    uhi = unique_hardware_id(user.personal_number)
    device_ip = order.device_ip or order.end_user_ip or "127.0.0.1"
    xml = build_signature(
        SignedContent(
            function="Signing" if order.kind is OrderKind.SIGN else "Identification",
            user_visible_data=order.user_visible_data,
            user_non_visible_data=order.user_non_visible_data,
            uhi=uhi,
            device_ip=device_ip,
            mrtd=bool(order.requirement.get("mrtd")),
        ),
        credentials.key,
        pki.chain(credentials.certificate),
    )
    signature = base64.b64encode(xml).decode("ascii")
    nonce = hashlib.sha1(signature.encode("ascii"), usedforsecurity=False).digest()
    ocsp_response = pki.ocsp_response(credentials.certificate, nonce, now)
    completion: dict[str, Any] = {
        "user": {
            "personalNumber": user.personal_number,
            "name": user.name,
            "givenName": user.given_name,
            "surname": user.surname,
        },
        "device": {"ipAddress": device_ip, "uhi": uhi},
        "bankIdIssueDate": credentials.certificate.not_valid_before_utc.date().isoformat(),
        "signature": signature,
        "ocspResponse": base64.b64encode(ocsp_response).decode("ascii"),
    }
    if "mrtd" in order.requirement:
        completion["stepUp"] = {"mrtd": bool(order.requirement["mrtd"])}
    if order.return_risk:
        completion["risk"] = "low"
    order.status = OrderStatus.COMPLETE
    order.hint_code = None
    order.completion_data = completion
    order.finished_dt = now
    session.flush()
    return order


def cancel_in_app(session: Session, order_ref: str, now: datetime | None = None) -> SimulatorOrder:
    """The user presses Avbryt in the app: ``userCancel``."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    _finish(order, HintCode.USER_CANCEL, now)
    session.flush()
    return order


def fail(
    session: Session, order_ref: str, hint: HintCode, now: datetime | None = None
) -> SimulatorOrder:
    """A failure the tester causes (``certificateErr``, ``startFailed``, …)."""
    now = now or utcnow()
    if hint not in TESTER_FAILURES:
        raise AppActionRefused("bad_failure")
    order = _pending_for_app(session, order_ref, now)
    _finish(order, hint, now)
    session.flush()
    return order


# -- helpers ---------------------------------------------------------------------------


def _finish(order: SimulatorOrder, hint: HintCode, now: datetime) -> None:
    assert hint in FAILED_HINTS
    order.status = OrderStatus.FAILED
    order.hint_code = hint
    order.finished_dt = now


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
        _finish(order, HintCode.CANCELLED, now)
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


def _pending_for_app(session: Session, order_ref: str, now: datetime) -> SimulatorOrder:
    expire_stale(session, now)
    order = session.scalars(
        select(SimulatorOrder).where(SimulatorOrder.order_ref == order_ref).with_for_update()
    ).one_or_none()
    if order is None:
        raise AppActionRefused("no_such_order")
    if order.status is not OrderStatus.PENDING:
        raise AppActionRefused("order_ended")
    return order


def _ip(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid_parameters("endUserIp is required")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise invalid_parameters("Invalid endUserIp") from None


def _personal_number(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _DIGITS12.match(value):
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


def _decode_text(value: str | None) -> str | None:
    if not value:
        return None
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _split_name(personal_number: str, name: str) -> UserIdentity:
    given, _, surname = name.strip().rpartition(" ")
    if not given:
        given, surname = surname, ""
    return UserIdentity(personal_number, given, surname)
