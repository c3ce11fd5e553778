"""Each step's server-side rules, with the message shown next to the field, in Swedish."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.registrations.data import RegistrationDraft
from app.registrations.models import Errand
from tests.conftest import DAVID, login
from tests.support import REGISTRATION, post_step, walk_registration

PERSON = {
    k: REGISTRATION[k] for k in ("personnummer", "given_name", "family_name", "email", "role")
} | {"title": "HR-chef", "phone": ""}


@pytest.fixture
def david(client: FlaskClient, session: Session) -> FlaskClient:
    login(client, session, DAVID)
    return client


def _draft_base(client: FlaskClient, orgnr: str = "202100-4920") -> str:
    response = post_step(client, "/anmalan-behorig-bestallare", {"orgnr": orgnr})
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[0]


def _refused(response: Any, message: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html
    assert message in html
    assert 'aria-invalid="true"' in html


@pytest.mark.parametrize(
    ("orgnr", "message"),
    [
        ("202100-4921", "Ange ett giltigt organisationsnummer"),
        ("551234-5674", "Ange ett giltigt organisationsnummer"),
        ("811218-9876", "Ange ett giltigt organisationsnummer"),
        ("556036-0793", "SPV känner inte till någon arbetsgivare med det organisationsnumret."),
        ("", "Ange organisationsnummer."),
    ],
)
def test_employer_step(david: FlaskClient, session: Session, orgnr: str, message: str) -> None:
    _refused(post_step(david, "/anmalan-behorig-bestallare", {"orgnr": orgnr}), message)
    assert session.scalars(select(Errand).where(Errand.state == "draft")).all() == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("personnummer", "19850704-9858", "Ange ett giltigt personnummer"),
        ("personnummer", "", "Ange personnummer."),
        ("email", "inte-en-adress", "Ange en giltig e-postadress"),
        ("phone", "ring mig", "Ange ett telefonnummer med siffror."),
        ("role", "administrator", "Inte ett giltigt val"),
        ("ends_on", "2000-01-01", "Ange en dag efter i dag."),
        ("personnummer", "200001029834", "Personen är redan behörig beställare"),
    ],
)
def test_person_step(david: FlaskClient, field: str, value: str, message: str) -> None:
    base = _draft_base(david)
    post_step(david, f"{base}/arbetsgivarkoder", {"scope": "all"})
    _refused(post_step(david, f"{base}/person", {**PERSON, field: value}), message)


@pytest.mark.parametrize(
    "personnummer", ["850704-9859", "198507049859", "19850704-9859", "8507049859"]
)
def test_ten_and_twelve_digit_forms_are_stored_alike(
    david: FlaskClient, session: Session, personnummer: str
) -> None:
    walk_registration(david, {"personnummer": personnummer})
    stored = session.scalars(select(Errand).where(Errand.state == "draft")).one()
    assert stored.subject_personnummer == "198507049859"
    assert stored.data.subject.personnummer == "198507049859"


def test_samordningsnummer_and_plus_separator_are_accepted(
    david: FlaskClient, session: Session
) -> None:
    walk_registration(
        david,
        {
            "personnummer": "701063-9909",
            "given_name": "Johan",
            "signatory_personnummer": "121212+1212",
        },
    )
    stored = session.scalars(select(Errand).where(Errand.state == "draft")).one()
    assert stored.subject_personnummer == "197010639909"
    assert stored.data.signatory.personnummer == "191212121212"


def test_chosen_codes_must_be_the_employers_own(david: FlaskClient) -> None:
    base = _draft_base(david, "202100-5489")
    _refused(
        post_step(david, f"{base}/arbetsgivarkoder", {"scope": "chosen"}),
        "Välj minst en arbetsgivarkod.",
    )
    _refused(
        post_step(david, f"{base}/arbetsgivarkoder", {"scope": "chosen", "codes": "B2001"}),
        "är inte ett giltigt val för detta fält.",
    )


def test_closed_codes_are_offered_and_marked(david: FlaskClient, session: Session) -> None:
    base = _draft_base(david, "202100-5489")
    page = david.get(f"{base}/arbetsgivarkoder").get_data(as_text=True)
    assert "A1003 – Nedlagt kontor Söder (fakturor kvar) (avslutad)" in page
    response = post_step(
        david, f"{base}/arbetsgivarkoder", {"scope": "chosen", "codes": ["A1001", "A1003"]}
    )
    assert response.status_code == 302
    draft = session.scalars(select(Errand).where(Errand.state == "draft")).one()
    codes = draft.progress
    assert isinstance(codes, RegistrationDraft)
    assert codes.employer_codes == ("A1001", "A1003")
    assert codes.all_codes is False


def test_second_errand_for_the_same_person_is_refused(david: FlaskClient) -> None:
    walk_registration(david)
    base = _draft_base(david)
    post_step(david, f"{base}/arbetsgivarkoder", {"scope": "all"})
    _refused(
        post_step(david, f"{base}/person", PERSON),
        "Det finns redan ett pågående ärende för personen",
    )


def test_a_person_under_fifteen_cannot_be_registered(session: Session) -> None:
    """Issue 14: nobody younger than 15 is registered as an orderer."""
    from app.registrations.codes import ProblemCode
    from app.registrations.service import FormProblem
    from tests.factories import registration_draft

    with pytest.raises(FormProblem) as refused:
        registration_draft(session, personnummer="201605059805")  # ten years old
    assert (refused.value.field, refused.value.code) == ("personnummer", ProblemCode.TOO_YOUNG)
