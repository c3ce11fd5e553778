"""The typed form data and the JSON it is stored as (the keys the forms always stored)."""

from __future__ import annotations

import pytest

from app.access.models import Role
from app.documents.qr import form_digest
from app.registrations.data import (
    EmployerDetails,
    FormStep,
    IncompleteForm,
    InvalidFormData,
    OrdererToRemove,
    PersonDetails,
    RegistrationData,
    RegistrationDraft,
    RemovalData,
    RemovalDraft,
    RemovalReason,
    SignatoryDetails,
    draft_of,
)
from tests.sample_forms import REGISTRATION, REMOVAL

FREDRIK = PersonDetails("198507049859", "Fredrik", "Falk", Role.ORDERER, "f@provverket.se")
EVA = SignatoryDetails("Eva Ek", "195210039847", "Generaldirektör")
PROVVERKET = EmployerDetails("2021004920", "Provverket")


def test_a_registration_reads_and_writes_the_stored_json_unchanged() -> None:
    data = RegistrationData.from_json(REGISTRATION)
    assert data.person.role is Role.DELEGATED_ORDERER
    assert data.employer_codes == ("B2001", "B2002")
    assert data.to_json() == REGISTRATION  # so a printed form's digest still matches


def test_a_removal_reads_and_writes_the_stored_json_unchanged() -> None:
    data = RemovalData.from_json(REMOVAL)
    assert data.orderer.reason is RemovalReason.LEFT
    assert data.replacement is not None and data.replacement.given_name == "Cecilia"
    assert data.to_json() == REMOVAL


def test_a_removal_without_replacement_stores_none() -> None:
    data = RemovalData.from_json({**REMOVAL, "replacement": None})
    assert data.replacement is None
    assert data.to_json()["replacement"] is None


def test_no_codes_means_all_codes() -> None:
    data = RegistrationData(PROVVERKET, FREDRIK, EVA)
    assert data.all_codes
    assert RegistrationData.from_json(data.to_json()) == data


def test_the_digest_covers_the_form_data() -> None:
    data = RegistrationData.from_json(REGISTRATION)
    assert form_digest(data.to_json()) == form_digest(REGISTRATION)


def test_a_missing_value_is_named() -> None:
    broken = {k: v for k, v in REGISTRATION.items() if k != "given_name"}
    with pytest.raises(InvalidFormData, match="given_name"):
        RegistrationData.from_json(broken)


def test_a_missing_role_is_named() -> None:
    broken = {k: v for k, v in REGISTRATION.items() if k != "role"}
    with pytest.raises(InvalidFormData, match="role"):
        RegistrationData.from_json(broken)


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidFormData, match="role"):
        RegistrationData.from_json({**REGISTRATION, "role": "king"})


def test_a_form_stored_without_its_steps_reads_as_complete() -> None:
    """Like the demo seed's errands: made whole, not step by step."""
    seeded = {
        "orgnr": "2021005489",
        "personnummer": "198112189876",
        "given_name": "Anna",
        "family_name": "Andersson",
        "email": "anna@example.se",
        "role": "orderer",
        "employer_codes": [],
        "signatory_name": "",
        "signatory_personnummer": "",
        "seeded": True,
    }
    data = RegistrationDraft.from_json(seeded).complete()
    assert data.person.full_name == "Anna Andersson"
    assert data.all_codes and data.employer.name == ""


def test_a_new_draft_has_no_step_done() -> None:
    draft = RegistrationDraft.from_json({})
    assert draft.completed_steps == ()
    assert draft.next_step() is FormStep.EMPLOYER


def test_a_draft_remembers_its_steps_in_the_forms_order() -> None:
    draft = RegistrationDraft().done(FormStep.PERSON, person=FREDRIK)
    draft = draft.done(FormStep.EMPLOYER, employer=PROVVERKET)
    assert draft.completed_steps == (FormStep.EMPLOYER, FormStep.PERSON)
    assert draft.next_step() is FormStep.CODES


def test_a_draft_round_trips_through_json_with_its_steps() -> None:
    draft = RemovalDraft().done(FormStep.EMPLOYER, employer=PROVVERKET)
    draft = draft.done(FormStep.REPLACEMENT, replacement=None)
    stored = draft.to_json()
    assert stored["completed_steps"] == ["employer", "replacement"]
    assert stored["replacement"] is None
    assert RemovalDraft.from_json(stored) == draft


def test_an_incomplete_draft_is_no_form() -> None:
    draft = RegistrationDraft().done(FormStep.EMPLOYER, employer=PROVVERKET)
    with pytest.raises(IncompleteForm):
        draft.complete()


def test_a_complete_draft_is_the_form() -> None:
    removal = RemovalData(
        PROVVERKET, OrdererToRemove(RemovalReason.SELF, "200001029834", "David", "Dahl"), EVA
    )
    draft = draft_of(removal)
    assert draft.is_complete
    assert draft.complete() == removal
    assert RemovalDraft.from_json(draft.to_json()).complete() == removal


def test_a_person_loses_the_blanks_around_their_entries() -> None:
    typed = PersonDetails("198507049859", " Fredrik ", "Falk ", Role.ORDERER, " f@x.se", " HR ")
    assert typed.stripped() == PersonDetails(
        "198507049859", "Fredrik", "Falk", Role.ORDERER, "f@x.se", "HR"
    )


def test_input_typed_for_later_is_kept_apart_from_the_form() -> None:
    draft = RegistrationDraft().done(FormStep.EMPLOYER, employer=PROVVERKET)
    draft = draft.with_typed(FormStep.PERSON, {"personnummer": "1985", "given_name": "Fre"})
    stored = draft.to_json()
    assert stored["typed_input"] == {"person": {"personnummer": "1985", "given_name": "Fre"}}
    assert "typed_input" not in draft.values_to_json()  # never in what is printed or signed
    again = RegistrationDraft.from_json(stored)
    assert again.typed == draft.typed and FormStep.PERSON not in again.completed_steps
    # Once the step is done with checked values, what was typed there is gone.
    assert again.done(FormStep.PERSON, person=FREDRIK).typed == {}


def test_a_signatory_without_email_stores_what_it_always_stored() -> None:
    assert "signatory_email" not in EVA.to_json()
    with_email = SignatoryDetails("Eva Ek", "195210039847", "GD", "eva@provverket.se")
    assert with_email.to_json()["signatory_email"] == "eva@provverket.se"
    assert SignatoryDetails.from_json(with_email.to_json()) == with_email


def test_the_subject_is_read_alone_as_the_whole_form_reads_it() -> None:
    forms = [
        (RegistrationDraft, REGISTRATION),
        (RemovalDraft, REMOVAL),
        (RegistrationDraft, RegistrationDraft().done(FormStep.PERSON, person=FREDRIK).to_json()),
        (
            RegistrationDraft,
            RegistrationDraft().done(FormStep.EMPLOYER, employer=PROVVERKET).to_json(),
        ),
        (RemovalDraft, RemovalDraft().done(FormStep.EMPLOYER, employer=PROVVERKET).to_json()),
        (RegistrationDraft, {}),
    ]
    for kind, stored in forms:
        assert kind.subject_from_json(stored) == kind.from_json(stored).subject, stored
    assert RegistrationDraft.subject_from_json(REGISTRATION) is not None
    assert RemovalDraft.subject_from_json({}) is None
