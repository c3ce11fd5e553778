"""An order's life in the simulator, shared by the RP API (:mod:`.rp_api`) and the app
(:mod:`.app_actions`). Plain functions on a session; the caller commits.

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

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from devtools.bankid_simulator.models import (
    FAILED_HINTS,
    HintCode,
    OrderStatus,
    SimulatorOrder,
)
from devtools.settings import StandInSettings

TWELVE_DIGITS = re.compile(r"^\d{12}$")
"""A personal number as BankID takes it."""


@dataclass(frozen=True)
class SimulatorConfig:
    order_ttl: timedelta = timedelta(seconds=180)
    """A pending order fails with ``expiredTransaction`` this long after it started."""
    retention: timedelta = timedelta(seconds=180)
    """A failed or complete order can be collected this long after it ended."""
    no_client_after: timedelta = timedelta(seconds=5)
    """``outstandingTransaction`` turns into ``noClient`` when no app took the order by then."""

    @classmethod
    def from_settings(cls, settings: StandInSettings) -> SimulatorConfig:
        return cls(order_ttl=timedelta(seconds=settings.bankid_order_ttl_s))


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


def finish(order: SimulatorOrder, hint: HintCode, now: datetime) -> None:
    """The pending order fails with ``hint``."""
    assert hint in FAILED_HINTS
    order.status = OrderStatus.FAILED
    order.hint_code = hint
    order.finished_dt = now
