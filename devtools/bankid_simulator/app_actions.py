"""What the tester does in the simulator's app page: the person's BankID app (open an order
or scan its QR code, confirm a call, pick the BankID, scan the passport, approve, cancel,
fail) and the errors the RP API is to answer with next.

Plain functions on a session; the caller commits (also after an ``AppActionRefused``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import Person
from app.core.ids import InvalidIdNumber, normalise_personnummer
from app.db import utcnow
from app.registers.models import SignatoryRegisterEntry
from app.staff.models import StaffMember
from devtools.bankid_simulator.models import (
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
)
from devtools.bankid_simulator.signature import (
    SignedContent,
    build_signature,
    unique_hardware_id,
)
from devtools.pki import TestPki, UserIdentity

QR_TOLERANCE_S = 1
TESTER_FAILURES = (
    HintCode.CERTIFICATE_ERR,
    HintCode.START_FAILED,
    HintCode.NOT_SUPPORTED_BY_USER_APP,
    HintCode.TRANSACTION_RISK_BLOCKED,
)
"""Failures the app page can cause (the others have their own button, or come with time)."""

_QR = re.compile(r"^bankid\.([0-9a-f-]{36})\.(\d{1,6})\.([0-9a-f]{64})$")


class AppActionRefused(Exception):
    """What the tester asked of the app is not possible now; ``reason`` names why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    finish(order, HintCode.USER_DECLINED_CALL, now)
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
    if not TWELVE_DIGITS.match(identity.personal_number):
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
    pki: TestPki,
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
    credentials = pki.bankid_user(user)
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
        pki.bankid_chain(credentials.certificate),
    )
    signature = base64.b64encode(xml).decode("ascii")
    nonce = hashlib.sha1(signature.encode("ascii"), usedforsecurity=False).digest()
    ocsp_response = pki.bankid_ocsp_response(credentials.certificate, nonce, now)
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


def open_and_approve(
    session: Session,
    order_ref: str,
    personal_number: str,
    config: SimulatorConfig,
    pki: TestPki,
    now: datetime | None = None,
) -> SimulatorOrder:
    """All a person does in the app for an order at once: open it, pick their BankID and
    approve (the tests' and the benchmarks' shortcut through the app page)."""
    open_order(session, order_ref, config, now)
    return approve(session, order_ref, pki, identity_for(session, personal_number), now=now)


def cancel_in_app(session: Session, order_ref: str, now: datetime | None = None) -> SimulatorOrder:
    """The user presses Avbryt in the app: ``userCancel``."""
    now = now or utcnow()
    order = _pending_for_app(session, order_ref, now)
    finish(order, HintCode.USER_CANCEL, now)
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
    finish(order, hint, now)
    session.flush()
    return order


# -- helpers ---------------------------------------------------------------------------


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


def _decode_text(value: str | None) -> str | None:
    if not value:
        return None
    return base64.b64decode(value).decode("utf-8", errors="replace")


def _split_name(personal_number: str, name: str) -> UserIdentity:
    given, _, surname = name.strip().rpartition(" ")
    if not given:
        given, surname = surname, ""
    return UserIdentity(personal_number, given, surname)
