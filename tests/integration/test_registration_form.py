"""The registration form's server-side rules, with the message shown next to the field."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registrations.models import Submission
from tests.conftest import DAVID, login
from tests.support import REGISTRATION, csrf_token


def _submit(client: FlaskClient, **changes: str) -> tuple[int, str]:
    page = client.get("/anmalan-behorig-bestallare").get_data(as_text=True)
    response = client.post(
        "/anmalan-behorig-bestallare",
        data={**REGISTRATION, **changes, "csrf_token": csrf_token(page)},
    )
    return response.status_code, response.get_data(as_text=True)


@pytest.fixture
def david(client: FlaskClient, session: Session) -> FlaskClient:
    login(client, session, DAVID)
    return client


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("orgnr", "202100-4921", "Ange ett giltigt organisationsnummer"),
        ("orgnr", "551234-5674", "Ange ett giltigt organisationsnummer"),
        ("orgnr", "556036-0793", "SPV känner inte till någon arbetsgivare"),
        ("personnummer", "19850704-9858", "Ange ett giltigt personnummer"),
        ("personnummer", "", "Ange personnummer."),
        ("signatory_personnummer", "1952", "Ange ett giltigt personnummer"),
        ("email", "inte-en-adress", "Ange en giltig e-postadress."),
        ("role", "administrator", "Inte ett giltigt val"),
        ("personnummer", "200001029834", "redan behörig beställare"),
    ],
)
def test_invalid_input_is_refused_next_to_the_field(
    david: FlaskClient, session: Session, field: str, value: str, message: str
) -> None:
    status, html = _submit(david, **{field: value})
    assert status == 200
    assert message in html
    assert 'aria-invalid="true"' in html
    assert session.scalars(select(Submission).where(Submission.state == "draft")).all() == []


@pytest.mark.parametrize("personnummer", ["850704-9859", "198507049859", "19850704-9859"])
def test_ten_and_twelve_digit_forms_are_stored_alike(
    david: FlaskClient, session: Session, personnummer: str
) -> None:
    status, _ = _submit(david, personnummer=personnummer)
    assert status == 302
    stored = (
        session.scalars(select(Submission).where(Submission.state == "draft"))
        .one()
        .subject_personnummer
    )
    assert stored == "198507049859"


def test_samordningsnummer_is_accepted(david: FlaskClient, session: Session) -> None:
    status, _ = _submit(david, personnummer="701063-9909", given_name="Johan")
    assert status == 302


def test_second_pending_errand_for_the_same_person_is_refused(
    david: FlaskClient, session: Session
) -> None:
    assert _submit(david)[0] == 302
    status, html = _submit(david)
    assert status == 200
    assert "Det finns redan ett pågående ärende" in html
