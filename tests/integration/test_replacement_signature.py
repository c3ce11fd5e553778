"""A registration is always signed by the signatory: a removal that names a new orderer
registers that person only with the signatory's signature; the departing orderer's own
signature covers the removal alone. Both channels: e-signed and printed, signed and posted."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import Employer, Person, Role, RoleGrant
from app.core.agents import Agent, AgentKind
from app.intake import reading
from app.intake.models import BatchSource, PaperForm
from app.registrations import service as registrations
from app.registrations.data import (
    EmployerDetails,
    OrdererToRemove,
    PersonDetails,
    RemovalData,
    RemovalReason,
    SignatoryDetails,
)
from app.registrations.models import Errand
from tests import scan_corpus as corpus
from tests.conftest import DAVID, EVA, JOHAN, login, person_id
from tests.factories import (
    claim_and_approve,
    clerk,
    confirm_signed_paper,
    printed,
    printed_for_post,
    public_base_url,
    received_by_esignature,
    removal_draft,
    verifiers,
)
from tests.support import post_step
from workflows import pipeline, runtime
from workflows.states import ErrandState

FREDRIK = "198507049859"
SYSTEM = Agent.system("test")


def _orderers(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(Person.personnummer)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .join(Employer, Employer.id == RoleGrant.employer_id)
            .where(Employer.orgnr == "2021004920", RoleGrant.valid_to_dt.is_(None))
        )
    )


def _decided_and_applied(session: Session, errand: Errand) -> Errand:
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert claim_and_approve(session, errand) or errand.state is ErrandState.IN_REVIEW
    if errand.state is ErrandState.IN_REVIEW:  # the last orderer goes: two caseworkers
        assert claim_and_approve(session, errand, JOHAN)
    assert errand.state is ErrandState.APPROVED
    assert pipeline.apply(session, errand.id, SYSTEM, base_url=public_base_url())
    return errand


def _on_paper(session: Session, errand: Errand) -> Errand:
    """Printed, signed by hand, posted, scanned and confirmed by the clerk."""
    scan = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"]))
    received = reading.receive_file(session, clerk(session), scan, "post.pdf", BatchSource.UPLOAD)
    session.commit()
    current = runtime.current()
    reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()
    form = session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))
    assert form is not None
    return confirm_signed_paper(session, form)


def _self_removal_signed_by_david() -> RemovalData:
    return RemovalData(
        employer=EmployerDetails("2021004920", "Provverket"),
        orderer=OrdererToRemove(RemovalReason.SELF, DAVID, "David", "Dahl"),
        signatory=SignatoryDetails("David Dahl", DAVID, "HR-chef"),
        replacement=PersonDetails(
            personnummer=FREDRIK,
            given_name="Fredrik",
            family_name="Falk",
            role=Role.ORDERER,
            email="fredrik.falk@provverket.se",
            title="Personalchef",
        ),
    )


def test_the_web_form_asks_for_the_signatory_when_a_removal_names_a_new_orderer(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    response = post_step(client, "/ta-bort-behorig-bestallare", {"orgnr": "2021004920"})
    base = response.headers["Location"].rsplit("/", 1)[0]
    post_step(
        client,
        f"{base}/bestallare",
        {"reason": "self", "personnummer": DAVID, "given_name": "David", "family_name": "Dahl"},
    )
    post_step(
        client,
        f"{base}/ersattare",
        {
            "wants_replacement": "yes",
            "personnummer": FREDRIK,
            "given_name": "Fredrik",
            "family_name": "Falk",
            "title": "Personalchef",
            "email": "fredrik.falk@provverket.se",
            "role": "orderer",
        },
    )
    page = client.get(f"{base}/underskrift").get_data(as_text=True)
    assert 'value="David Dahl"' not in page  # not prefilled with the departing orderer
    assert "En anmälan skrivs alltid under av den som har rätt att teckna firma" in page
    refused = post_step(
        client,
        f"{base}/underskrift",
        {"signatory_name": "David Dahl", "signatory_personnummer": DAVID, "signatory_title": "HR"},
    )
    assert refused.status_code == 200
    assert "registreras bara med firmatecknarens underskrift" in refused.get_data(as_text=True)
    accepted = post_step(
        client,
        f"{base}/underskrift",
        {"signatory_name": "Eva Ek", "signatory_personnummer": EVA, "signatory_title": "GD"},
    )
    assert accepted.headers["Location"].endswith("/granska")


def test_e_signed_by_the_signatory_registers_the_new_orderer(session: Session) -> None:
    errand = _decided_and_applied(session, received_by_esignature(session, removal_draft(session)))
    assert errand.state is ErrandState.APPLIED
    assert _orderers(session) >= {FREDRIK} and DAVID not in _orderers(session)


def test_posted_and_signed_by_the_signatory_registers_the_new_orderer(session: Session) -> None:
    errand = _on_paper(session, printed_for_post(session, removal_draft(session)))
    errand = _decided_and_applied(session, errand)
    assert errand.state is ErrandState.APPLIED
    assert FREDRIK in _orderers(session) and DAVID not in _orderers(session)


def test_posted_and_signed_by_the_departing_orderer_removes_only(session: Session) -> None:
    # A paper signed by David alone, typed in by the clerk as it is.
    david = session.get_one(Person, person_id(session, DAVID))
    on_behalf = Agent(AgentKind.PERSON, david.id, DAVID, entered_by_staff_id=clerk(session).id)
    errand = registrations.create_removal(session, on_behalf, _self_removal_signed_by_david())
    printed_for_post(session, errand)
    errand = _on_paper(session, errand)
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    check = next(c for c in errand.checks if c.name == "signatory")
    assert check.outcome.value == "flagged"
    assert "replacement_not_signed_by_signatory" in check.findings
    # Without the new orderer, David is the last one: the removal needs two caseworkers.
    conflicts = next(c for c in errand.checks if c.name == "conflicts")
    assert "would_leave_no_orderer" in conflicts.findings
    errand = _decided_and_applied(session, errand)
    assert errand.state is ErrandState.APPLIED
    assert FREDRIK not in _orderers(session) and DAVID not in _orderers(session)
