"""Errands in a given state, made through the same services and transitions as the product."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import Role
from app.config import Settings
from app.core.agents import Agent, AgentKind
from app.documents import pki
from app.documents.pki import SealMaterial
from app.eid import service as eid
from app.eid.models import OrderStatus
from app.intake import clerk_actions, reading
from app.intake.models import BatchSource, PaperForm
from app.registrations import documents, signing
from app.registrations import service as registrations
from app.registrations.data import PersonDetails, RegistrationData
from app.registrations.models import DocumentKind, Errand, ErrandKind
from tests import scan_corpus as corpus
from tests.conftest import DAVID, INGRID, KARIN, approve_in_simulator, person_id, staff_id
from tests.support import REGISTRATION, current_app
from workflows import runtime
from workflows.verification import Verifiers, verifiers_for


def running_settings() -> Settings:
    """The settings of the running test's app."""
    settings: Settings = current_app().extensions["behorighet"].settings
    return settings


def verifiers(session: Session) -> Verifiers:
    """What the verify step checks against, from the test app's settings."""
    return verifiers_for(session, running_settings())


def public_base_url() -> str:
    """Where the emails' links point: the test app's ``public_base_url``."""
    return running_settings().public_base_url


def seal_material() -> SealMaterial:
    """The agency's seal as the test app's settings give it (the test PKI's)."""
    return pki.seal_material(running_settings())


def confirm_signed_paper(session: Session, form: PaperForm, agent: Agent | None = None) -> Errand:
    """The clerk (Karin, or ``agent``) finds the named signatory's signature on a posted
    form and confirms it: the errand is received, its scan sealed with the test PKI's seal."""
    return clerk_actions.confirm_paper_form(
        session,
        agent or clerk(session),
        form,
        signature_present=True,
        signer_is_named=True,
        material=seal_material(),
    )


def david(session: Session) -> Agent:
    return Agent(AgentKind.PERSON, person_id(session, DAVID), DAVID)


def registration_draft(session: Session, **changes: str) -> Errand:
    """David's complete registration of Fredrik Falk at Provverket, still a draft."""
    fields = {
        **REGISTRATION,
        "orgnr": "2021004920",
        "personnummer": "198507049859",
        "title": "Personalchef",
        "signatory_personnummer": "195210039847",
        "signatory_title": "Generaldirektör",
        **changes,
    }
    return registrations.create_registration(
        session, david(session), RegistrationData.from_json(fields)
    )


def removal_draft(session: Session) -> Errand:
    """David's complete removal of himself at Provverket, Fredrik Falk taking over."""
    agent = david(session)
    errand = registrations.start_draft(session, agent, ErrandKind.REMOVAL, "2021004920")
    registrations.save_orderer_to_remove(session, agent, errand, "self", DAVID, "David", "Dahl")
    registrations.save_replacement(
        session,
        agent,
        errand,
        PersonDetails(
            personnummer="198507049859",
            given_name="Fredrik",
            family_name="Falk",
            email="fredrik.falk@provverket.se",
            phone="070-111 22 33",
            title="Personalchef",
            role=Role.ORDERER,
        ),
    )
    registrations.save_signatory(
        session, agent, errand, "Eva Ek", "195210039847", "Generaldirektör"
    )
    return errand


def printed_for_post(session: Session, errand: Errand) -> Errand:
    """The submitter prints the form to sign by hand and post (awaiting_post)."""
    pdf = documents.printable_form(errand, running_settings(), "sv")
    submitter = Agent(AgentKind.PERSON, errand.submitted_by_id, errand.submitted_by.personnummer)
    registrations.print_for_post(session, submitter, errand, pdf)
    return errand


def printed(errand: Errand) -> bytes:
    """The PDF printed for the post."""
    return next(d for d in errand.documents if d.kind is DocumentKind.PRINTED).content


def clerk(session: Session) -> Agent:
    """Karin, SPV's intake clerk."""
    return Agent(AgentKind.STAFF, staff_id(session, KARIN), KARIN, is_intake_clerk=True)


def scanned(session: Session, errand: Errand) -> None:
    """The printed form comes back signed by hand: scanned, uploaded and read as the intake
    actor reads it (its pages matched by their QR codes)."""
    scan = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"]))
    received = reading.receive_file(session, clerk(session), scan, "post.pdf", BatchSource.UPLOAD)
    session.commit()
    current = runtime.current()
    reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()


def received_on_paper(session: Session, errand: Errand) -> Errand:
    """Printed, signed by hand, posted, scanned and confirmed by the clerk."""
    scanned(session, errand)
    form = session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))
    assert form is not None
    return confirm_signed_paper(session, form)


def received_by_esignature(session: Session, errand: Errand) -> Errand:
    """What signing with BankID does to a draft, as the signing pages do it: the signatory
    signs the exact PDF in the BankID simulator, the signature is checked, the PDF sealed
    with the evidence, and the errand received."""
    app = current_app()
    settings = running_settings()
    client = app.extensions["bankid_client"]
    submitter = Agent(AgentKind.PERSON, errand.submitted_by_id, errand.submitted_by.personnummer)
    pdf = documents.signable_form(errand, settings)
    order = signing.start(session, submitter, client, errand, pdf, "127.0.0.1", "binding")
    approve_in_simulator(app, errand.data.signatory.personnummer, order.order_ref)
    state = eid.poll(session, client, order, timedelta(0))
    assert state.status is OrderStatus.COMPLETE, state
    signing.finish(session, order, errand, documents.seal_context(settings))
    return errand


def stranger_registers_anna(session: Session) -> Errand:
    """Fredrik, no orderer at Statens testmyndighet, registers Anna, its orderer already
    (the form does not tell a stranger so; verification finds it)."""
    anna = RegistrationData.from_json(
        {
            "orgnr": "2021005489",
            "personnummer": "198112189876",  # Anna
            "given_name": "Anna",
            "family_name": "Andersson",
            "email": "hr@testmyndighet.example",
            "role": "orderer",
            "title": "HR-chef",
            "signatory_name": "Gunilla Generaldirektör",
            "signatory_personnummer": "196408239868",  # Gunilla
            "signatory_title": "Generaldirektör",
        }
    )
    fredrik = "198507049859"
    submitter = Agent(AgentKind.PERSON, person_id(session, fredrik), fredrik)
    errand = received_by_esignature(
        session, registrations.create_registration(session, submitter, anna)
    )
    from workflows import pipeline

    pipeline.verify(session, errand.id, Agent.system("test"), verifiers(session))
    return errand


def in_review(session: Session, **changes: str) -> Errand:
    """David's registration, signed with BankID and verified: waiting for a caseworker."""
    from workflows import pipeline

    errand = received_by_esignature(session, registration_draft(session, **changes))
    pipeline.verify(session, errand.id, Agent.system("test"), verifiers(session))
    return errand


def like_in_review(session: Session, errand: Errand, subjects: list[str]) -> list[Errand]:
    """More errands in review like ``errand``, about another subject each, made as rows (not
    signed and verified one by one): for a list that needs many, not how each got there."""
    copies = [
        Errand(
            kind=errand.kind,
            channel=errand.channel,
            state=errand.state,
            form_data=errand.form_data,
            employer_id=errand.employer_id,
            subject_personnummer=subject,
            submitted_by_id=errand.submitted_by_id,
            received_dt=errand.received_dt,
            due_dt=errand.due_dt,
        )
        for subject in subjects
    ]
    session.add_all(copies)
    session.flush()
    return copies


def caseworker(session: Session, personnummer: str = INGRID) -> Agent:
    return Agent(AgentKind.STAFF, staff_id(session, personnummer), personnummer, is_caseworker=True)


def claim_and_approve(session: Session, errand: Errand, personnummer: str = INGRID) -> bool:
    """A caseworker takes the errand and approves it (True when decided)."""
    from app.casework import service as casework

    agent = caseworker(session, personnummer)
    assert casework.claim(session, agent, errand), "already claimed"
    notes = {f.value: "Granskat." for f in casework.findings_to_acknowledge(errand)}
    return casework.approve_errand(session, agent, errand, notes)
