"""The roster's rules where they meet the database: a draft blocks nothing, a stranger is
told nothing at the form and verification finds it, and two removals approved before
either is applied cannot leave an employer without an orderer (PostgreSQL's row locks)."""

from __future__ import annotations

import threading

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import Employer, Person, RoleGrant
from app.casework import service as casework
from app.core.agents import Agent, AgentKind
from app.registrations import service as registrations
from app.registrations.codes import CheckName, Finding, ProblemCode
from app.registrations.data import RegistrationData
from app.registrations.models import Errand, ErrandKind, VerificationCheck
from tests.conftest import ANNA, DAVID, login, person_id
from tests.factories import (
    claim_and_approve,
    in_review,
    public_base_url,
    received_by_esignature,
    verifiers,
)
from tests.support import post_step, walk_registration
from workflows import pipeline
from workflows.runtime import Runtime
from workflows.states import ErrandState

SYSTEM = Agent.system("test")
FREDRIK = "198507049859"  # no role at Statens testmyndighet: a stranger there
BERTIL = "199001019810"  # an administrator there, no orderer
MYNDIGHET = "2021005489"  # Statens testmyndighet: Anna is its only orderer
GUNILLA = "196408239868"  # its signatory


def _agent(session: Session, personnummer: str) -> Agent:
    return Agent(AgentKind.PERSON, person_id(session, personnummer), personnummer)


def _registration(person: str, given_name: str, family_name: str) -> RegistrationData:
    return RegistrationData.from_json(
        {
            "orgnr": MYNDIGHET,
            "personnummer": person,
            "given_name": given_name,
            "family_name": family_name,
            "email": "hr@testmyndighet.example",
            "role": "orderer",
            "title": "HR-chef",
            "signatory_name": "Gunilla Generaldirektör",
            "signatory_personnummer": GUNILLA,
            "signatory_title": "Generaldirektör",
        }
    )


def _conflicts(session: Session, errand: Errand) -> list[str]:
    check = session.scalars(
        select(VerificationCheck).where(
            VerificationCheck.errand_id == errand.id,
            VerificationCheck.name == CheckName.CONFLICTS,
        )
    ).one()
    return list(check.findings)


# ---- a draft blocks nothing; a stranger is told nothing --------------------------------


def test_a_strangers_draft_naming_a_person_does_not_block_an_errand_about_them(
    session: Session,
) -> None:
    bertil = _registration(BERTIL, "Bertil", "Berg")
    registrations.create_registration(session, _agent(session, FREDRIK), bertil)
    errand = registrations.create_registration(session, _agent(session, ANNA), bertil)
    assert errand.subject_personnummer == BERTIL


def test_a_submitted_errand_about_the_person_blocks_the_next(session: Session) -> None:
    bertil = _registration(BERTIL, "Bertil", "Berg")
    anna = _agent(session, ANNA)
    received_by_esignature(session, registrations.create_registration(session, anna, bertil))
    second = registrations.start_draft(session, anna, ErrandKind.REGISTRATION, MYNDIGHET)
    with pytest.raises(registrations.FormProblem) as refused:
        registrations.save_person(session, anna, second, bertil.person)
    assert refused.value.code is ProblemCode.PENDING_ERRAND


def test_a_stranger_is_not_told_at_the_step_that_the_person_is_an_orderer(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, FREDRIK)
    walk_registration(  # every step accepted: nothing said about Anna
        client,
        {
            "orgnr": "202100-5489",
            "personnummer": ANNA,
            "given_name": "Anna",
            "family_name": "Andersson",
            "signatory_name": "Gunilla Generaldirektör",
            "signatory_personnummer": GUNILLA,
        },
    )


def test_verification_flags_what_the_stranger_was_not_told(session: Session) -> None:
    anna = _registration(ANNA, "Anna", "Andersson")
    errand = registrations.create_registration(session, _agent(session, FREDRIK), anna)
    received_by_esignature(session, errand)
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert _conflicts(session, errand) == [Finding.ALREADY_ORDERER]


def _removal_of_anna(client: FlaskClient, session: Session, by: str, reason: str) -> str:
    """``by`` signs in and names Anna, Statens testmyndighet's only orderer, for removal;
    the step is accepted. Returns the draft's base URL."""
    login(client, session, by)
    response = post_step(client, "/ta-bort-behorig-bestallare", {"orgnr": "202100-5489"})
    base = str(response.headers["Location"]).rsplit("/", 1)[0]
    anna = {"reason": reason, "personnummer": ANNA, "given_name": "Anna"}
    response = post_step(client, f"{base}/bestallare", {**anna, "family_name": "Andersson"})
    assert response.status_code == 302, response.get_data(as_text=True)
    return base


def test_a_stranger_removing_an_orderer_is_neither_refused_nor_warned(
    client: FlaskClient, session: Session
) -> None:
    base = _removal_of_anna(client, session, FREDRIK, "left")
    page = client.get(f"{base}/ersattare").get_data(as_text=True)
    assert "ingen behörig beställare kvar" not in page
    # Bertil is no orderer, which the stranger is not told either.
    bertil = {"reason": "left", "personnummer": BERTIL, "given_name": "Bertil"}
    response = post_step(client, f"{base}/bestallare", {**bertil, "family_name": "Berg"})
    assert response.status_code == 302


def test_an_orderer_is_warned_that_a_removal_leaves_no_orderer(
    client: FlaskClient, session: Session
) -> None:
    base = _removal_of_anna(client, session, ANNA, "self")
    assert "ingen behörig beställare kvar" in client.get(f"{base}/ersattare").get_data(True)


# ---- two removals approved before either is applied ------------------------------------


def _orderers_at_provverket(session: Session) -> set[str]:
    session.expire_all()
    return set(
        session.scalars(
            select(Person.personnummer)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .join(Employer, Employer.id == RoleGrant.employer_id)
            .where(
                Employer.orgnr == "2021004920",
                RoleGrant.role == "orderer",
                RoleGrant.valid_to_dt.is_(None),
            )
        )
    )


def _approved_removal(session: Session, personnummer: str, reason: str) -> Errand:
    """David's removal at Provverket, without a replacement, signed, verified, approved."""
    david = _agent(session, DAVID)
    person = session.scalars(select(Person).where(Person.personnummer == personnummer)).one()
    errand = registrations.start_draft(session, david, ErrandKind.REMOVAL, "2021004920")
    registrations.save_orderer_to_remove(
        session, david, errand, reason, personnummer, person.given_name, person.family_name
    )
    registrations.save_replacement(session, david, errand, None)
    registrations.save_signatory(session, david, errand, "Eva Ek", "195210039847", "GD")
    received_by_esignature(session, errand)
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert claim_and_approve(session, errand), "needed a second caseworker"
    return errand


def test_two_removals_approved_before_either_is_applied_leave_one_orderer(
    committed_db: None, runtime: Runtime, session: Session
) -> None:
    with runtime.unit_of_work() as s:  # Fredrik becomes Provverket's second orderer
        registration = in_review(s)
        claim_and_approve(s, registration)
        pipeline.apply(s, registration.id, SYSTEM, base_url=public_base_url())
    with runtime.unit_of_work() as s:
        first = _approved_removal(s, DAVID, "self")
        second = _approved_removal(s, FREDRIK, "left")
    assert _orderers_at_provverket(session) == {DAVID, FREDRIK}

    applied: list[bool] = []

    def apply_second() -> None:
        with runtime.unit_of_work() as s:
            applied.append(pipeline.apply(s, second.id, SYSTEM, base_url=public_base_url()))

    with runtime.session_factory() as holder:
        assert pipeline.apply(
            holder, first.id, SYSTEM, base_url=public_base_url()
        )  # holds the employer's lock
        other = threading.Thread(target=apply_second)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second removal did not wait for the employer's lock"
        holder.commit()
    other.join(timeout=30)
    assert applied == [True]

    assert _orderers_at_provverket(session) == {FREDRIK}
    states = {s.id: s.state for s in session.scalars(select(Errand))}
    assert (states[first.id], states[second.id]) == (
        ErrandState.APPLIED,
        ErrandState.IN_REVIEW,
    )
    returned = session.get(Errand, second.id)
    assert returned is not None and returned.decided_dt is None
    assert _conflicts(session, returned) == [
        Finding.WOULD_LEAVE_NO_ORDERER,
        Finding.ORDERER_REMOVED_SINCE_APPROVAL,
    ]
    # Back with its caseworker, it now takes two of them, like any last orderer's removal.
    assert casework.needs_second_approval(session, returned)
