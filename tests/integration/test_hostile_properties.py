"""Hostile input, generated (hypothesis): whatever is typed into a form, no page fails
with a 500, and what a form stores is exactly what was typed (or it is refused with a
message); the QR parser refuses every text but its own codes; and no form changes anything
without its CSRF token (issue 14)."""

from __future__ import annotations

import html

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access.models import Employer, EmployerCode, Person, RoleGrant, ServicePermission
from app.config import qr_mac_key
from app.documents.qr import QrPayloadError, decode_payload
from tests.conftest import login
from tests.support import csrf_token, skatteverket_test_personnummer

BERTIL = "199001019810"  # administrator at Statens testmyndighet
PAGE = "/hantera-behorigheter/ny-anvandare"
NASTY = [
    "\x00",
    "\r\n# Rubrik",
    "\u202eevil",
    "a\u200bb",
    "٢٠٠٠",
    "<script>alert(1)</script>",
    "'; DROP TABLE person; --",
    "x" * 300,
    "Ünïcødé ✓",
]
NAMES = st.text(alphabet=st.characters(categories=("L", "M", "Zs", "Pd")), min_size=1, max_size=40)
"""Names in any script, with marks, spaces and dashes: stored exactly as typed (trimmed)."""
TYPED = st.one_of(NAMES, NAMES, st.text(max_size=80), st.sampled_from(NASTY))
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _code_id(session: Session) -> int:
    return session.scalars(select(EmployerCode.id).where(EmployerCode.code == "A1001")).one()


@EXAMPLES
@given(
    given_name=TYPED,
    family_name=TYPED,
    email=st.one_of(st.just("bo.ek@testmyndighet.example"), TYPED),
    person=st.integers(min_value=1000, max_value=1999),
)
def test_adding_a_user_never_fails_and_stores_what_was_typed(
    client: FlaskClient,
    session: Session,
    given_name: str,
    family_name: str,
    email: str,
    person: int,
) -> None:
    with client.session_transaction() as browser:
        signed_in = "agent" in browser
    if not signed_in:
        login(client, session, BERTIL)
    personnummer = skatteverket_test_personnummer(person)
    known = session.scalar(select(Person).where(Person.personnummer == personnummer))
    page = client.get(PAGE).get_data(as_text=True)
    response = client.post(
        PAGE,
        data={
            "csrf_token": csrf_token(page),
            "personnummer": personnummer,
            "given_name": given_name,
            "family_name": family_name,
            "email": email,
            "permissions": [f"invoices:{_code_id(session)}"],
        },
    )
    assert response.status_code in (200, 302, 400), response.status_code
    stored = session.scalar(select(Person).where(Person.personnummer == personnummer))
    if response.status_code == 302 and known is None:
        assert stored is not None
        assert (stored.given_name, stored.family_name) == (given_name.strip(), family_name.strip())
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert html.escape(given_name.strip(), quote=False) in page  # shown as typed
    elif response.status_code != 302:
        assert (stored is None) == (known is None)  # refused: nothing made


@EXAMPLES
@given(text=st.one_of(st.text(max_size=200), st.sampled_from(NASTY)))
def test_the_qr_parser_refuses_every_text_but_its_own_codes(text: str) -> None:
    key = qr_mac_key("test-secret")
    with pytest.raises(QrPayloadError):
        decode_payload(text, key)


@pytest.mark.parametrize(
    "path",
    [PAGE, "/hantera-behorigheter/administratorer/ny", "/hantera-behorigheter/arbetsgivare"],
)
def test_no_form_changes_anything_without_its_csrf_token(
    client: FlaskClient, session: Session, path: str
) -> None:
    login(client, session, "198112189876")  # Anna, the orderer

    def counts() -> tuple[int, int, int]:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Person, RoleGrant, ServicePermission)
        )

    before = counts()
    employer = session.scalars(select(Employer.id).where(Employer.orgnr == "2021005489")).one()
    response = client.post(
        path,
        data={
            "personnummer": skatteverket_test_personnummer(2500),
            "given_name": "Bo",
            "family_name": "Ek",
            "email": "bo.ek@testmyndighet.example",
            "scope": "all",
            "permissions": [f"invoices:{_code_id(session)}"],
            "employer_id": str(employer),
        },
    )
    assert response.status_code == 400
    assert counts() == before
