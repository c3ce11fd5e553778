"""The BankID simulator, driven through the real pybankid client and the stand-in app page.

Every hint code and error code of the RP API v6.0 the simulator models, the signature and
OCSP response it completes with (checked by ``app.eid.evidence``), and the app page.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from bankid import exceptions as bankid_errors
from bankid.exceptions import get_json_error_class
from cryptography import x509
from cryptography.x509 import ocsp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from app.config import Settings
from app.db import utcnow
from app.eid.bankid import (
    BankIdClient,
    BankIdConfigurationError,
    bankid_trust_roots,
    make_bankid_client,
)
from app.eid.evidence import (
    CertificateStatus,
    InvalidBankIdSignature,
    InvalidOcspResponse,
    check_ocsp_response,
    verify_bankid_signature,
)
from devtools.bankid_simulator.models import SimulatorOrder
from devtools.bankid_simulator.signature import SignedContent, build_signature, unique_hardware_id
from devtools.bankid_simulator.transport import in_process_transport
from devtools.pki import TestPki, UserIdentity
from tests.conftest import ANNA, DAVID, INGRID
from tests.support import csrf_token
from workflows.runtime import Runtime

IP = "192.0.2.10"
APP = "/bankid-simulator/app"


@pytest.fixture
def settings(runtime: Runtime) -> Settings:
    return runtime.settings


@pytest.fixture
def bankid(app: Flask, settings: Settings) -> Iterator[BankIdClient]:
    client = make_bankid_client(settings, transport=in_process_transport(app))
    yield client
    client.close()


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def roots(settings: Settings) -> list[x509.Certificate]:
    return bankid_trust_roots(settings)


# -- helpers ---------------------------------------------------------------------------


def act(browser: FlaskClient, **data: str) -> str:
    """Do something in the app page (with its CSRF token); returns the page after it."""
    token = csrf_token(browser.get(APP).get_data(as_text=True))
    response = browser.post(APP, data={**data, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)
    return browser.get(response.headers["Location"]).get_data(as_text=True)


def status(bankid: BankIdClient, order_ref: str) -> tuple[str, str | None]:
    answer = bankid.collect(order_ref)
    assert answer["orderRef"] == order_ref
    return answer["status"], answer.get("hintCode")


def raw(bankid: BankIdClient, endpoint: str, body: Any) -> dict[str, Any]:
    """A request pybankid's methods would not send, on pybankid's own HTTP client."""
    response = bankid.client.post(urljoin(bankid.api_url, endpoint), json=body)
    if response.status_code != 200:
        raise get_json_error_class(response)
    return response.json()


def complete(
    bankid: BankIdClient, browser: FlaskClient, order_ref: str, personal_number: str
) -> dict[str, Any]:
    act(browser, action="open", order_ref=order_ref)
    act(browser, action="approve", order_ref=order_ref, identity=personal_number)
    answer = bankid.collect(order_ref)
    assert answer["status"] == "complete", answer
    return answer["completionData"]


def shift(runtime: Runtime, order_ref: str, **columns: Any) -> None:
    with runtime.unit_of_work() as session:
        session.execute(
            update(SimulatorOrder).where(SimulatorOrder.order_ref == order_ref).values(**columns)
        )


# -- happy paths -----------------------------------------------------------------------


def test_auth_goes_through_every_pending_hint_to_complete(
    bankid: BankIdClient, browser: FlaskClient, roots: list[x509.Certificate]
) -> None:
    started = bankid.authenticate(end_user_ip=IP)
    assert set(started) == {"orderRef", "autoStartToken", "qrStartToken", "qrStartSecret"}
    ref = started["orderRef"]
    assert status(bankid, ref) == ("pending", "outstandingTransaction")

    act(browser, action="open", order_ref=ref)
    assert status(bankid, ref) == ("pending", "started")
    act(browser, action="choose", order_ref=ref, identity=ANNA)
    assert status(bankid, ref) == ("pending", "userSign")
    act(browser, action="approve", order_ref=ref)

    answer = bankid.collect(ref)
    assert answer["status"] == "complete" and "hintCode" not in answer
    data = answer["completionData"]
    assert data["user"] == {
        "personalNumber": ANNA,
        "name": "Anna Andersson",
        "givenName": "Anna",
        "surname": "Andersson",
    }
    assert data["device"]["ipAddress"] == "127.0.0.1"
    assert data["device"]["uhi"]
    assert len(data["bankIdIssueDate"]) == 10 and data["bankIdIssueDate"][4] == "-"
    assert "stepUp" not in data and "risk" not in data

    signed = verify_bankid_signature(data["signature"], roots)
    assert signed.function == "Identification"
    assert signed.personal_number == ANNA and signed.name == "Anna Andersson"
    assert signed.user_visible_data == "" and signed.user_non_visible_data == ""
    assert signed.certificates[-1] == roots[0]
    ocsp = check_ocsp_response(
        data["ocspResponse"],
        signed.certificates[0],
        signed.certificates[1],
        signature_b64=data["signature"],
    )
    assert ocsp.status is CertificateStatus.GOOD and ocsp.nonce_matches_signature is True
    # A complete order can be collected again for a while.
    assert bankid.collect(ref) == answer


def test_sign_round_trips_visible_and_hidden_data(
    bankid: BankIdClient, browser: FlaskClient, roots: list[x509.Certificate]
) -> None:
    text = "# Anmälan – behörig beställare\n\nJag skriver under för arbetsgivaren: åäö ÅÄÖ"
    digest = hashlib.sha256(b"%PDF-1.7 the exact document").hexdigest()
    ref = bankid.sign(
        end_user_ip=IP,
        user_visible_data=text,
        user_non_visible_data=digest,
        user_visible_data_format="simpleMarkdownV1",
        requirement={"personalNumber": DAVID},
    )["orderRef"]
    page = browser.get(APP).get_data(as_text=True)
    assert ref in page and "Jag skriver under för arbetsgivaren: åäö ÅÄÖ" in page

    data = complete(bankid, browser, ref, DAVID)
    assert data["user"]["personalNumber"] == DAVID
    signed = verify_bankid_signature(data["signature"], roots)
    assert signed.function == "Signing"
    assert signed.user_visible_data == text
    assert signed.user_non_visible_data == digest
    assert signed.personal_number == DAVID and signed.given_name == "David"
    assert signed.surname == "Dahl"
    ocsp = check_ocsp_response(data["ocspResponse"], signed.certificates[0], signed.certificates[1])
    assert ocsp.status is CertificateStatus.GOOD and ocsp.nonce_matches_signature is None


def test_the_required_person_is_the_only_one_the_app_offers(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    ref = bankid.sign(
        end_user_ip=IP, user_visible_data="Skriv under", requirement={"personalNumber": DAVID}
    )["orderRef"]
    page = act(browser, action="open", order_ref=ref)
    options = page.split('name="identity"', 1)[1].split("</select>", 1)[0]
    assert options.count("<option") == 1 and 'value="200001029834"' in options
    assert 'name="personal_number"' not in page  # no typing someone else's number either

    page = act(browser, action="approve", order_ref=ref, identity=ANNA)
    assert "Beställningen kan bara slutföras av den person som RP har angett." in page
    page = act(browser, action="approve", order_ref=ref, personal_number=ANNA)
    assert "Beställningen kan bara slutföras av den person som RP har angett." in page
    assert status(bankid, ref) == ("pending", "started")


def test_without_a_requirement_the_app_offers_persons_and_staff_or_a_typed_number(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    page = act(browser, action="open", order_ref=ref)
    options = page.split('name="identity"', 1)[1].split("</select>", 1)[0]
    assert f'value="{ANNA}"' in options and f'value="{INGRID}"' in options
    act(browser, action="approve", order_ref=ref, personal_number="19121212-1212")
    user = bankid.collect(ref)["completionData"]["user"]
    assert user["personalNumber"] == "191212121212" and user["name"] == "Test Testsson"


def test_staff_can_authenticate_with_their_names_from_the_staff_table(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    user = complete(bankid, browser, ref, INGRID)["user"]
    assert (user["givenName"], user["surname"]) == ("Ingrid", "Handläggare")


# -- pending and failed hints ----------------------------------------------------------


def test_an_order_no_app_took_turns_into_no_client(bankid: BankIdClient, runtime: Runtime) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    assert status(bankid, ref) == ("pending", "outstandingTransaction")
    shift(runtime, ref, created_dt=utcnow() - timedelta(seconds=6))
    assert status(bankid, ref) == ("pending", "noClient")


def test_user_cancel_in_the_app(bankid: BankIdClient, browser: FlaskClient) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    act(browser, action="open", order_ref=ref)
    act(browser, action="cancel", order_ref=ref)
    assert status(bankid, ref) == ("failed", "userCancel")
    page = act(browser, action="approve", order_ref=ref, identity=ANNA)
    assert "Beställningen är redan avslutad." in page


@pytest.mark.parametrize(
    "hint", ["certificateErr", "startFailed", "notSupportedByUserApp", "transactionRiskBlocked"]
)
def test_failures_the_tester_causes(bankid: BankIdClient, browser: FlaskClient, hint: str) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    act(browser, action="fail", order_ref=ref, hint=hint)
    assert status(bankid, ref) == ("failed", hint)


def test_rp_cancel_fails_the_order_as_cancelled(bankid: BankIdClient) -> None:
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    assert bankid.cancel(ref) is True
    assert status(bankid, ref) == ("failed", "cancelled")
    with pytest.raises(bankid_errors.InvalidParametersError):
        bankid.cancel(ref)


def test_an_order_expires(make_app: Callable[..., Flask]) -> None:
    app = make_app(plugged={"bankid_order_ttl_s": 0.2})
    client = make_bankid_client(
        app.extensions["behorighet"].settings, transport=in_process_transport(app)
    )
    ref = client.sign(end_user_ip=IP, user_visible_data="Hinner inte")["orderRef"]
    assert status(client, ref) == ("pending", "outstandingTransaction")
    time.sleep(0.3)
    assert status(client, ref) == ("failed", "expiredTransaction")
    assert ref not in app.test_client().get(APP).get_data(as_text=True).split("<table")[0]
    client.close()


def test_mrtd_requirement_adds_the_user_mrtd_step(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    ref = bankid.authenticate(end_user_ip=IP, requirement={"mrtd": True})["orderRef"]
    act(browser, action="open", order_ref=ref)
    act(browser, action="choose", order_ref=ref, identity=ANNA)
    assert status(bankid, ref) == ("pending", "userMrtd")
    page = act(browser, action="approve", order_ref=ref)
    assert "Beställningen väntar på att passet eller id-kortet skannas." in page
    act(browser, action="mrtd", order_ref=ref)
    assert status(bankid, ref) == ("pending", "userSign")
    act(browser, action="approve", order_ref=ref)
    assert bankid.collect(ref)["completionData"]["stepUp"] == {"mrtd": True}


# -- phone orders ----------------------------------------------------------------------


def test_phone_auth_confirmed_call_completes(bankid: BankIdClient, browser: FlaskClient) -> None:
    started = bankid.phone_authenticate(personal_number=ANNA, call_initiator="user")
    assert set(started) == {"orderRef"}
    ref = started["orderRef"]
    assert status(bankid, ref) == ("pending", "outstandingTransaction")
    act(browser, action="open", order_ref=ref)
    assert status(bankid, ref) == ("pending", "userCallConfirm")
    page = act(browser, action="confirm_call", order_ref=ref)
    assert status(bankid, ref) == ("pending", "started")
    options = page.split('name="identity"', 1)[1].split("</select>", 1)[0]
    assert options.count("<option") == 1
    act(browser, action="approve", order_ref=ref, identity=ANNA)
    assert bankid.collect(ref)["completionData"]["user"]["personalNumber"] == ANNA


def test_phone_sign_declined_call(bankid: BankIdClient, browser: FlaskClient) -> None:
    ref = bankid.phone_sign(
        personal_number=DAVID, call_initiator="RP", user_visible_data="Skriv under"
    )["orderRef"]
    act(browser, action="open", order_ref=ref)
    act(browser, action="decline_call", order_ref=ref)
    assert status(bankid, ref) == ("failed", "userDeclinedCall")


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("phone/auth", {"personalNumber": ANNA, "callInitiator": "rp"}),
        ("phone/auth", {"personalNumber": ANNA}),
        ("phone/auth", {"callInitiator": "user"}),
        ("phone/auth", {"personalNumber": "8112189876", "callInitiator": "user"}),
        ("phone/auth", {"personalNumber": "198112189870", "callInitiator": "user"}),
        ("phone/sign", {"personalNumber": ANNA, "callInitiator": "RP"}),
        ("phone/auth", {"personalNumber": ANNA, "callInitiator": "RP", "endUserIp": IP}),
    ],
)
def test_phone_orders_validate_their_parameters(
    bankid: BankIdClient, endpoint: str, body: dict[str, Any]
) -> None:
    with pytest.raises(bankid_errors.InvalidParametersError):
        raw(bankid, endpoint, body)


def test_pybankid_checks_the_call_initiator_too(bankid: BankIdClient) -> None:
    with pytest.raises(ValueError, match="call_initiator"):
        bankid.phone_authenticate(personal_number=ANNA, call_initiator="someone")


# -- errors ----------------------------------------------------------------------------


def test_a_second_order_for_the_same_person_cancels_both(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    first = bankid.sign(
        end_user_ip=IP, user_visible_data="Första", requirement={"personalNumber": ANNA}
    )["orderRef"]
    with pytest.raises(bankid_errors.AlreadyInProgressError):
        bankid.authenticate(end_user_ip=IP, requirement={"personalNumber": ANNA})
    assert status(bankid, first) == ("failed", "cancelled")
    # The person is free again, and a phone order counts the same way.
    bankid.phone_authenticate(personal_number=ANNA, call_initiator="user")
    with pytest.raises(bankid_errors.AlreadyInProgressError):
        bankid.sign(end_user_ip=IP, user_visible_data="x", requirement={"personalNumber": ANNA})

    # An identity picked in the app is "in progress" too.
    other = bankid.authenticate(end_user_ip=IP)["orderRef"]
    act(browser, action="open", order_ref=other)
    act(browser, action="choose", order_ref=other, identity=DAVID)
    with pytest.raises(bankid_errors.AlreadyInProgressError):
        bankid.phone_authenticate(personal_number=DAVID, call_initiator="RP")
    assert status(bankid, other) == ("failed", "cancelled")


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("auth", {}),
        ("auth", {"endUserIp": "not-an-ip"}),
        ("auth", {"endUserIp": IP, "userVisibleData": "inte base64!"}),
        ("auth", {"endUserIp": IP, "userVisibleData": base64.b64encode(b"\xff\xfe").decode()}),
        ("sign", {"endUserIp": IP}),
        ("sign", {"endUserIp": IP, "userVisibleData": "A" * 40_004}),
        ("sign", {"endUserIp": IP, "userVisibleData": "SGVq", "userNonVisibleData": "A" * 200_004}),
        ("sign", {"endUserIp": IP, "userVisibleData": "SGVq", "userNonVisibleData": "%%%"}),
        ("sign", {"endUserIp": IP, "userVisibleData": "SGVq", "userVisibleDataFormat": "html"}),
        ("auth", {"endUserIp": IP, "requirement": {"personalNumber": "19811218987"}}),
        ("auth", {"endUserIp": IP, "requirement": {"cardReader": "class3"}}),
        ("auth", {"endUserIp": IP, "requirement": {"certificatePolicies": ["not.an.oid"]}}),
        ("auth", {"endUserIp": IP, "requirement": {"favouriteColour": "blue"}}),
        ("auth", {"endUserIp": IP, "requirement": "personalNumber"}),
        ("auth", {"endUserIp": IP, "personalNumber": ANNA}),
        ("auth", ["not", "an", "object"]),
        ("collect", {}),
        ("collect", {"orderRef": "not-a-uuid"}),
        ("collect", {"orderRef": 42}),
        ("cancel", {"orderRef": "131daac9-16c6-4618-beb0"}),
    ],
)
def test_invalid_parameters(bankid: BankIdClient, endpoint: str, body: Any) -> None:
    with pytest.raises(bankid_errors.InvalidParametersError):
        raw(bankid, endpoint, body)


def test_invalid_parameters_through_pybankids_methods(bankid: BankIdClient) -> None:
    with pytest.raises(bankid_errors.InvalidParametersError, match="endUserIp"):
        bankid.authenticate(end_user_ip="")
    with pytest.raises(bankid_errors.InvalidParametersError, match="too long"):
        bankid.sign(end_user_ip=IP, user_visible_data="x" * 30_001)  # 40,004 base64 chars
    bankid.sign(end_user_ip=IP, user_visible_data="x" * 30_000)  # exactly 40,000: allowed
    with pytest.raises(bankid_errors.InvalidParametersError, match="Invalid orderRef"):
        bankid.collect("not-a-uuid")


def test_an_unknown_or_long_gone_order_is_no_such_order(
    bankid: BankIdClient, runtime: Runtime
) -> None:
    # BankID answers invalidParameters ("No such order"); notFound is for a wrong URL path.
    with pytest.raises(bankid_errors.InvalidParametersError, match="No such order"):
        bankid.collect(str(uuid.uuid4()))
    with pytest.raises(bankid_errors.InvalidParametersError, match="No such order"):
        bankid.cancel(str(uuid.uuid4()))
    ref = bankid.authenticate(end_user_ip=IP)["orderRef"]
    bankid.cancel(ref)
    assert status(bankid, ref) == ("failed", "cancelled")
    shift(runtime, ref, finished_dt=utcnow() - timedelta(seconds=181))
    with pytest.raises(bankid_errors.InvalidParametersError, match="No such order"):
        bankid.collect(ref)
    bankid.authenticate(end_user_ip=IP)  # a new order purges the old one
    with pytest.raises(bankid_errors.InvalidParametersError, match="No such order"):
        bankid.collect(ref)


def test_http_level_errors(bankid: BankIdClient) -> None:
    with pytest.raises(bankid_errors.NotFoundError):
        raw(bankid, "identify", {"endUserIp": IP})
    response = bankid.client.get(urljoin(bankid.api_url, "auth"))
    assert response.status_code == 405
    assert response.json()["errorCode"] == "methodNotAllowed"
    response = bankid.client.post(
        urljoin(bankid.api_url, "auth"),
        content=b'{"endUserIp": "192.0.2.10"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 415
    assert response.json()["errorCode"] == "unsupportedMediaType"
    with pytest.raises(bankid_errors.InvalidParametersError, match="Invalid JSON"):
        response = bankid.client.post(urljoin(bankid.api_url, "auth"), content=b"{nope")
        raise get_json_error_class(response)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("maintenance", bankid_errors.MaintenanceError),
        ("internalError", bankid_errors.InternalError),
        ("requestTimeout", bankid_errors.RequestTimeoutError),
        ("unauthorized", bankid_errors.UnauthorizedError),
    ],
)
def test_injected_faults(
    bankid: BankIdClient, browser: FlaskClient, fault: str, error: type[Exception]
) -> None:
    act(browser, action="fault", error_code=fault, count="2")
    for _ in range(2):
        with pytest.raises(error):
            bankid.authenticate(end_user_ip=IP)
    bankid.authenticate(end_user_ip=IP)


# -- the app page ----------------------------------------------------------------------


def test_app_page_lists_pending_orders_and_its_forms_need_the_csrf_token(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    ref = bankid.sign(
        end_user_ip=IP, user_visible_data="Visa mig", requirement={"personalNumber": DAVID}
    )["orderRef"]
    page = browser.get(APP).get_data(as_text=True)
    assert ref in page and "Visa mig" in page and "20000102-9834" in page
    assert "Öppna i BankID" in page
    response = browser.post(APP, data={"action": "approve", "order_ref": ref})
    assert response.status_code == 400
    assert status(bankid, ref) == ("pending", "outstandingTransaction")


def test_scanning_the_animated_qr_code_starts_the_order(
    bankid: BankIdClient, browser: FlaskClient
) -> None:
    started = bankid.authenticate(end_user_ip=IP)
    ref, token, secret = started["orderRef"], started["qrStartToken"], started["qrStartSecret"]
    stale = bankid.generate_qr_code_content(token, time.time() - 10, secret)
    page = act(browser, action="scan", qr=stale)
    assert "QR-koden är för gammal eller felaktig." in page
    assert status(bankid, ref) == ("pending", "outstandingTransaction")
    page = act(browser, action="scan", qr="bankid.nonsense")
    assert "Det där är ingen BankID-QR-kod." in page
    act(browser, action="scan", qr=bankid.generate_qr_code_content(token, time.time(), secret))
    assert status(bankid, ref) == ("pending", "started")


# -- evidence --------------------------------------------------------------------------


def _tampered(signature_b64: str, old: bytes, new: bytes) -> str:
    xml = base64.b64decode(signature_b64)
    assert old in xml
    return base64.b64encode(xml.replace(old, new)).decode()


def test_a_tampered_signature_is_rejected(
    bankid: BankIdClient, browser: FlaskClient, roots: list[x509.Certificate]
) -> None:
    ref = bankid.sign(
        end_user_ip=IP, user_visible_data="Rätt text", user_non_visible_data="abc123"
    )["orderRef"]
    data = complete(bankid, browser, ref, ANNA)
    signature = data["signature"]
    right = base64.b64encode("Rätt text".encode()).decode().encode()
    wrong = base64.b64encode(b"Fel text!").decode().encode()
    with pytest.raises(InvalidBankIdSignature, match="Digest mismatch"):
        verify_bankid_signature(_tampered(signature, right, wrong), roots)
    with pytest.raises(InvalidBankIdSignature):
        verify_bankid_signature(_tampered(signature, b"<funcId>Signing", b"<funcId>Ident"), roots)
    with pytest.raises(InvalidBankIdSignature, match="not base64"):
        verify_bankid_signature("###", roots)
    with pytest.raises(InvalidBankIdSignature):
        verify_bankid_signature(base64.b64encode(b"<notxml").decode(), roots)

    signed = verify_bankid_signature(signature, roots)
    ocsp_der = bytearray(base64.b64decode(data["ocspResponse"]))
    tbs = ocsp.load_der_ocsp_response(bytes(ocsp_der)).tbs_response_bytes
    ocsp_der[ocsp_der.index(tbs) + len(tbs) - 1] ^= 0xFF  # the nonce, under the signature
    with pytest.raises(InvalidOcspResponse, match="not validly signed"):
        check_ocsp_response(
            base64.b64encode(bytes(ocsp_der)).decode(),
            signed.certificates[0],
            signed.certificates[1],
        )
    with pytest.raises(InvalidOcspResponse):  # about someone else's certificate
        check_ocsp_response(data["ocspResponse"], signed.certificates[1], signed.certificates[2])
    with pytest.raises(InvalidOcspResponse, match="malformed"):
        check_ocsp_response("AAAA", signed.certificates[0], signed.certificates[1])


def test_a_signature_from_another_ca_is_rejected(
    tmp_path: Path, roots: list[x509.Certificate]
) -> None:
    other = TestPki(tmp_path / "other-ca")
    credentials = other.bankid_user(UserIdentity(ANNA, "Anna", "Andersson"))
    xml = build_signature(
        SignedContent("Signing", "SGVq", None, unique_hardware_id(ANNA), IP),
        credentials.key,
        other.bankid_chain(credentials.certificate),
    )
    signature = base64.b64encode(xml).decode()
    assert verify_bankid_signature(signature, [other.root_certificate]).personal_number == ANNA
    with pytest.raises(InvalidBankIdSignature, match="trusted root"):
        verify_bankid_signature(signature, roots)


# -- the client's configuration --------------------------------------------------------


def test_the_client_refuses_settings_that_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(BankIdConfigurationError, match="loopback"):
        make_bankid_client(Settings(bankid_url="http://bankid.example/rp/v6.0/"))
    with pytest.raises(BankIdConfigurationError, match="BANKID_CERT_FILE"):
        make_bankid_client(Settings(bankid_url="https://appapi2.test.bankid.com/rp/v6.0/"))
    with pytest.raises(BankIdConfigurationError, match="BANKID_TRUST_ROOTS_FILE"):
        bankid_trust_roots(Settings())
    client = make_bankid_client(
        Settings(bankid_url="http://localhost:5000/bankid-simulator/rp/v6.0")
    )
    assert client._collect_endpoint == "http://localhost:5000/bankid-simulator/rp/v6.0/collect"
    client.close()


def test_the_client_uses_mutual_tls_for_https(tmp_path: Path) -> None:
    pki = TestPki(tmp_path / "rp")
    credentials = pki.bankid_user(UserIdentity(ANNA, "Anna", "Andersson"))
    from cryptography.hazmat.primitives import serialization

    cert_file = tmp_path / "rp.pem"
    key_file = tmp_path / "rp.key"
    cert_file.write_bytes(credentials.certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        credentials.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = Settings(
        bankid_url="https://appapi2.test.bankid.com/rp/v6.0/",
        bankid_cert_file=str(cert_file),
        bankid_key_file=str(key_file),
        bankid_ca_file=str(pki.root_certificate_file),
        bankid_trust_roots_file=str(pki.root_certificate_file),
    )
    client = make_bankid_client(settings)
    assert client.api_url == "https://appapi2.test.bankid.com/rp/v6.0/"
    assert client.ctx is not None and client.ctx.verify_mode.name == "CERT_REQUIRED"
    client.close()
    assert bankid_trust_roots(settings) == [pki.root_certificate]
