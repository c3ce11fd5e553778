"""The animated QR code: pybankid's, the simulator's and BankID's published formula agree.

BankID: ``bankid.{qrStartToken}.{qrTime}.{qrAuthCode}``, where ``qrTime`` is the whole
seconds since the order was started and ``qrAuthCode`` is HMAC-SHA256 of ``qrTime`` (as
decimal text) keyed with ``qrStartSecret``, in lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bankid import generate_qr_code_content

from devtools.bankid_simulator.app_actions import qr_code_content, verify_qr_content

TOKEN = "67df3917-fa0d-44e5-b327-edcc928297f8"
SECRET = "d28db9a7-4cde-429e-a983-359be676944c"
STARTED = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def published(token: str, secret: str, seconds: int) -> str:
    """Computed here from the formula alone."""
    code = hmac.new(secret.encode("ascii"), str(seconds).encode("ascii"), hashlib.sha256)
    return f"bankid.{token}.{seconds}.{code.hexdigest()}"


def test_bankids_own_example() -> None:
    # The worked example in BankID's documentation: qrTime 0 and 1 for this token and secret.
    assert published(TOKEN, SECRET, 0) == (
        "bankid.67df3917-fa0d-44e5-b327-edcc928297f8.0."
        "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8"
    )
    assert published(TOKEN, SECRET, 1) == (
        "bankid.67df3917-fa0d-44e5-b327-edcc928297f8.1."
        "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2"
    )


@pytest.mark.parametrize("seconds", range(31))
def test_pybankid_the_simulator_and_the_formula_agree(seconds: int) -> None:
    expected = published(TOKEN, SECRET, seconds)
    # pybankid counts from its start time to its own clock: started seconds + ½ s ago.
    assert generate_qr_code_content(TOKEN, time.time() - seconds - 0.5, SECRET) == expected
    assert qr_code_content(TOKEN, SECRET, seconds) == expected

    def scanned(at: float) -> bool:
        now = STARTED + timedelta(seconds=at)
        return verify_qr_content(expected, TOKEN, SECRET, STARTED, now)

    # The app accepts the code while it is on screen, and a second either side (BankID's
    # tolerance for clocks and frames), and not later or earlier than that.
    assert scanned(seconds + 0.5)
    assert scanned(seconds + 1.9)
    assert not scanned(seconds + 2.0)
    if seconds >= 1:
        assert scanned(seconds - 0.9)
    if seconds >= 2:
        assert not scanned(seconds - 1.1)


def test_the_simulator_rejects_codes_of_other_orders_or_secrets() -> None:
    now = STARTED + timedelta(seconds=3.2)
    good = published(TOKEN, SECRET, 3)
    assert verify_qr_content(good, TOKEN, SECRET, STARTED, now)
    assert not verify_qr_content(good, str(uuid.uuid4()), SECRET, STARTED, now)
    assert not verify_qr_content(good, TOKEN, str(uuid.uuid4()), STARTED, now)
    forged = published(TOKEN, "not-the-secret", 3)
    assert not verify_qr_content(forged, TOKEN, SECRET, STARTED, now)
    assert not verify_qr_content(good.upper(), TOKEN, SECRET, STARTED, now)
    assert not verify_qr_content(good + "0", TOKEN, SECRET, STARTED, now)
    assert not verify_qr_content("bankid." + TOKEN + ".3", TOKEN, SECRET, STARTED, now)


def test_pybankid_takes_the_start_as_a_utc_datetime_too() -> None:
    started = datetime.now(UTC) - timedelta(seconds=7.5)
    assert generate_qr_code_content(TOKEN, started, SECRET) == published(TOKEN, SECRET, 7)
