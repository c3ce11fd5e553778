"""The simulator's orders and injected faults. Every web process reads and writes these rows."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import str_enum, utcnow
from devtools.db import DevtoolsBase


class OrderKind(enum.StrEnum):
    AUTH = "auth"
    SIGN = "sign"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    FAILED = "failed"
    COMPLETE = "complete"


class HintCode(enum.StrEnum):
    """BankID's hint codes (RP API v6.0, collect)."""

    # pending
    OUTSTANDING_TRANSACTION = "outstandingTransaction"
    NO_CLIENT = "noClient"
    STARTED = "started"
    USER_MRTD = "userMrtd"
    USER_CALL_CONFIRM = "userCallConfirm"
    USER_SIGN = "userSign"
    # failed
    EXPIRED_TRANSACTION = "expiredTransaction"
    CERTIFICATE_ERR = "certificateErr"
    USER_CANCEL = "userCancel"
    CANCELLED = "cancelled"
    START_FAILED = "startFailed"
    USER_DECLINED_CALL = "userDeclinedCall"
    NOT_SUPPORTED_BY_USER_APP = "notSupportedByUserApp"
    TRANSACTION_RISK_BLOCKED = "transactionRiskBlocked"


PENDING_HINTS = frozenset(
    {
        HintCode.OUTSTANDING_TRANSACTION,
        HintCode.NO_CLIENT,
        HintCode.STARTED,
        HintCode.USER_MRTD,
        HintCode.USER_CALL_CONFIRM,
        HintCode.USER_SIGN,
    }
)
FAILED_HINTS = frozenset(HintCode) - PENDING_HINTS


class CallInitiator(enum.StrEnum):
    USER = "user"
    RP = "RP"


class FaultCode(enum.StrEnum):
    """Errors a tester can make the RP API answer with, for the next few calls."""

    UNAUTHORIZED = "unauthorized"
    REQUEST_TIMEOUT = "requestTimeout"
    INTERNAL_ERROR = "internalError"
    MAINTENANCE = "maintenance"


class SimulatorOrder(DevtoolsBase):
    """One auth or sign order (phone or not), from start until purged after it ended."""

    __tablename__ = "bankid_sim_order"
    __table_args__ = (
        CheckConstraint(
            "status = 'complete' OR completion_data IS NULL", name="completion_only_when_complete"
        ),
        CheckConstraint("(status = 'complete') = (hint_code IS NULL)", name="hint_unless_complete"),
        CheckConstraint(
            "(call_initiator IS NULL) = (qr_start_secret IS NOT NULL)",
            name="phone_orders_have_no_qr",
        ),
        Index(
            "uq_bankid_sim_order_pending_personal_number",
            "required_personal_number",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_bankid_sim_order_status", "status", "expires_dt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_ref: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[OrderKind] = mapped_column(str_enum(OrderKind, "bankid_sim_order_kind"))
    call_initiator: Mapped[CallInitiator | None] = mapped_column(
        str_enum(CallInitiator, "bankid_sim_call_initiator")
    )
    """Set for ``phone/auth`` and ``phone/sign`` orders only."""
    end_user_ip: Mapped[str | None] = mapped_column(String(45))
    auto_start_token: Mapped[str | None] = mapped_column(String(36))
    qr_start_token: Mapped[str | None] = mapped_column(String(36), unique=True)
    qr_start_secret: Mapped[str | None] = mapped_column(String(36))
    user_visible_data: Mapped[str | None] = mapped_column(Text)
    """Base64, exactly as the RP sent it."""
    user_non_visible_data: Mapped[str | None] = mapped_column(Text)
    user_visible_data_format: Mapped[str | None] = mapped_column(String(32))
    requirement: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    required_personal_number: Mapped[str | None] = mapped_column(String(12))
    """``requirement.personalNumber``, or the phone order's ``personalNumber``."""
    return_risk: Mapped[bool] = mapped_column(default=False)
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, "bankid_sim_order_status"), default=OrderStatus.PENDING
    )
    hint_code: Mapped[HintCode | None] = mapped_column(str_enum(HintCode, "bankid_sim_hint_code"))
    personal_number: Mapped[str | None] = mapped_column(String(12))
    """The identity the tester picked in the app page."""
    given_name: Mapped[str | None] = mapped_column(String(100))
    surname: Mapped[str | None] = mapped_column(String(100))
    device_ip: Mapped[str | None] = mapped_column(String(45))
    completion_data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
    expires_dt: Mapped[datetime]
    opened_dt: Mapped[datetime | None]
    """When the app took the order (opened with the autostart token, or a QR code scanned)."""
    finished_dt: Mapped[datetime | None]
    """When it became ``failed`` or ``complete``; it can be collected for a while after."""

    @property
    def is_phone(self) -> bool:
        return self.call_initiator is not None


class SimulatorFault(DevtoolsBase):
    """The RP API answers the next ``remaining`` calls with this error."""

    __tablename__ = "bankid_sim_fault"
    __table_args__ = (CheckConstraint("remaining > 0", name="remaining_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    error_code: Mapped[FaultCode] = mapped_column(str_enum(FaultCode, "bankid_sim_fault_code"))
    remaining: Mapped[int]
    created_dt: Mapped[datetime] = mapped_column(default=utcnow)
