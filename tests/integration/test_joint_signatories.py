"""Joint signatories (issue 18 item 6), as the people live it: Exempelhögskolan signs two
jointly (the signatory register says so), so David's registration names both Hans and
Ingela; each is invited and signs the same PDF with BankID in their own session, and only
then does the errand go to SPV, its sealed file carrying both signatures. On paper the
printed form has two signature fields and the clerk confirms both. An employer whose
signatories sign alone is unchanged."""

from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.service import authentic_errand_event
from app.core.agents import Agent
from app.documents.validate import extract_evidence
from app.eid.models import EidOrder, OrderStatus
from app.intake import reading
from app.intake.models import BatchSource, PaperForm
from app.notifications.models import EmailMessage
from app.registers.models import SignatoryRegisterEntry, SigningRule
from app.registrations import documents, invitations, joint, signing
from app.registrations import service as registrations
from app.registrations.codes import CheckName, Finding
from app.registrations.data import RegistrationData
from app.registrations.models import CheckOutcome, DocumentKind, Errand
from tests import scan_corpus as corpus
from tests.conftest import DAVID, KARIN, approve_in_simulator, login
from tests.factories import (
    clerk,
    david,
    public_base_url,
    registration_draft,
    running_settings,
    verifiers,
)
from tests.integration.test_signing_invitation import _errand, _post
from tests.support import (
    REGISTRATION,
    csrf_token,
    current_app,
    pdf_page_texts,
    post_step,
    walk_registration,
)
from workflows import pipeline, runtime
from workflows.states import Action, ErrandState, IllegalTransition
from workflows.verification import check_paper_signature, check_signatory

HOGSKOLAN = "2120000142"
HANS = "197802029889"
INGELA = "196903119854"
JOINT = {
    "orgnr": HOGSKOLAN,
    "signatory_name": "Hans Rektorsson",
    "signatory_personnummer": HANS,
    "signatory_title": "Rektor",
    "co_signatory_name": "Ingela Förvaltningschef",
    "co_signatory_personnummer": INGELA,
    "co_signatory_title": "Förvaltningschef",
}
HANS_EMAIL, INGELA_EMAIL = "hans@hogskolan.example", "ingela@hogskolan.example"


def _links(session: Session) -> dict[str, str]:
    """The signing links emailed, by address (the newest for each)."""
    emails = session.scalars(
        select(EmailMessage)
        .where(EmailMessage.template == "signing_invitation")
        .order_by(EmailMessage.id)
    )
    found = {}
    for email in emails:
        link = re.search(r"(/underskrift/[A-Za-z0-9_-]+)", email.text_body)
        assert link, email.text_body
        found[email.to_address] = link.group(1)
    return found


def _signs(app: Flask, session: Session, personnummer: str, link: str, reference: str) -> str:
    """The signatory opens their link in their own browser and signs with BankID; returns
    where the signing page sends them."""
    browser = app.test_client()
    login(browser, session, personnummer)
    page = f"/underskrift/arende/{reference}"
    assert browser.get(link).headers["Location"] == page
    started = _post(browser, page, f"{page}/signera", {"device": "other"})
    assert started.headers["Location"] == f"{page}/signera", started.get_data(as_text=True)
    approve_in_simulator(app, personnummer)
    return str(browser.get(f"{page}/signera").headers["Location"])


def _joint_draft(session: Session) -> Errand:
    """David's registration of Fredrik Falk at Exempelhögskolan, Hans and Ingela signing."""
    fields = {**REGISTRATION, "personnummer": "198507049859", "title": "HR-chef", **JOINT}
    return registrations.create_registration(
        session, david(session), RegistrationData.from_json(fields)
    )


def test_the_form_asks_for_a_second_signatory_only_where_two_sign_jointly(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    alone = walk_registration(client)
    assert _errand(session, alone).data.co_signatory is None
    step = f"/anmalan-behorig-bestallare/{alone}/underskrift"
    assert 'id="co-signatory"' not in client.get(step).get_data(as_text=True)

    reference = walk_registration(client, {"orgnr": HOGSKOLAN, **JOINT})
    data = _errand(session, reference).data
    assert [s.name for s in data.signatories] == ["Hans Rektorsson", "Ingela Förvaltningschef"]
    step = f"/anmalan-behorig-bestallare/{reference}/underskrift"
    html = client.get(step).get_data(as_text=True)
    assert 'id="co-signatory"' in html and "tecknas arbetsgivaren av två i förening" in html
    # Without a second signatory, or with the first one twice, the step says what is missing.
    first_only = {k: "" if k.startswith("co_") else v for k, v in JOINT.items() if k != "orgnr"}
    for typed in (first_only, {**first_only, "co_signatory_personnummer": HANS}):
        refused = post_step(client, step, typed)
        assert refused.status_code == 200, refused.headers.get("Location")
        assert "Ange också den andra firmatecknaren" in refused.get_data(as_text=True)
    review = client.get(f"/anmalan-behorig-bestallare/{reference}/granska")
    html = review.get_data(as_text=True)
    assert "Ingela Förvaltningschef" in html and "Signera nu" not in html  # by invitation only


def test_both_sign_in_their_own_sessions_and_the_sealed_form_carries_both(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    reference = walk_registration(client, {"orgnr": HOGSKOLAN, **JOINT})
    review = f"/anmalan-behorig-bestallare/{reference}/granska"
    send = f"/mina-arenden/{reference}/skicka-till-firmatecknaren"
    assert _post(client, review, send, {"email": HANS_EMAIL}).status_code == 400  # both needed
    sent = _post(client, review, send, {"email": HANS_EMAIL, "co_email": INGELA_EMAIL})
    assert sent.status_code == 302, sent.get_data(as_text=True)
    links = _links(session)
    assert set(links) == {HANS_EMAIL, INGELA_EMAIL}

    # Ingela's link does not open for Hans, nor his for her.
    hans = app.test_client()
    login(hans, session, HANS)
    assert hans.get(links[INGELA_EMAIL]).status_code == 404

    assert _signs(app, session, HANS, links[HANS_EMAIL], reference) == "/underskrift/klar"
    errand = _errand(session, reference)
    assert errand.state is ErrandState.AWAITING_SIGNATORY, "waits for the second signature"
    assert joint.awaited(session, errand) == (errand.data.co_signatory,)
    assert hans.get(links[HANS_EMAIL]).status_code == 404  # his link has done its job
    page = client.get(f"/mina-arenden/{reference}").get_data(as_text=True)
    assert "Hans Rektorsson har skrivit under." in page
    assert "Väntar på Ingela Förvaltningschef." in page

    assert _signs(app, session, INGELA, links[INGELA_EMAIL], reference) == "/underskrift/klar"
    errand = _errand(session, reference)
    assert errand.state is ErrandState.RECEIVED and errand.first_signature_order_id is None
    orders = session.scalars(
        select(EidOrder)
        .where(EidOrder.errand_id == errand.id, EidOrder.status == OrderStatus.USED)
        .order_by(EidOrder.id)
    ).all()
    assert [joint.signer_of(o) for o in orders] == [HANS, INGELA]
    assert orders[0].document == orders[1].document, "both signed the same PDF"

    sealed = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED).content
    assert sealed.startswith(orders[0].document or b"-")
    files = extract_evidence(sealed)
    assert set(files) == {
        "bankid-signatur.xml",
        "bankid-ocsp.der",
        "bankid-completion.json",
        "bankid-signatur-2.xml",
        "bankid-ocsp-2.der",
        "bankid-completion-2.json",
        "arendehandelser.json",
    }
    completions = [
        json.loads(files[n]) for n in ("bankid-completion.json", "bankid-completion-2.json")
    ]
    assert [c["orderRef"] for c in completions] == [o.order_ref for o in orders]
    evidence = "\n".join(pdf_page_texts(sealed))
    assert "Hans Rektorsson" in evidence and "Ingela Förvaltningschef" in evidence
    assert "första av två firmatecknare" in evidence  # Hans's signature among the events

    pipeline.verify(session, errand.id, Agent.system("test"), verifiers(session))
    outcomes = {c.name: c.outcome for c in _errand(session, reference).checks}
    assert outcomes[CheckName.SIGNATURE] is CheckOutcome.PASSED
    assert outcomes[CheckName.SIGNATORY] is CheckOutcome.PASSED


def test_a_declined_second_signature_takes_the_first_with_it(
    app: Flask, client: FlaskClient, session: Session
) -> None:
    errand = _joint_draft(session)
    invitations.send_to_signatory(
        session, david(session), errand, HANS_EMAIL, co_email=INGELA_EMAIL,
        base_url=public_base_url(),
    )  # fmt: skip
    session.commit()
    sent = authentic_errand_event(session, errand.id, Action.SEND_TO_SIGNATORY.value)
    assert sent is not None
    assert (sent.data["email"], sent.data["co_email"]) == (HANS_EMAIL, INGELA_EMAIL)
    links = _links(session)
    assert _signs(app, session, HANS, links[HANS_EMAIL], errand.reference) == "/underskrift/klar"
    errand = _errand(session, errand.reference)
    assert joint.first_signature(session, errand) is not None
    ingela = app.test_client()
    login(ingela, session, INGELA)
    page = f"/underskrift/arende/{errand.reference}"
    assert ingela.get(links[INGELA_EMAIL]).headers["Location"] == page
    declined = _post(ingela, page, f"{page}/avboj", {"reason": "Fel person"})
    assert declined.headers["Location"] == "/underskrift/klar"
    errand = _errand(session, errand.reference)
    assert errand.state is ErrandState.DRAFT
    assert joint.first_signature(session, errand) is None
    assert len(joint.awaited(session, errand)) == 2, "sent again, both sign again"


def test_nobody_signs_a_joint_form_alone_at_once(session: Session) -> None:
    errand = _joint_draft(session)
    pdf = documents.signable_form(errand, running_settings())
    client = current_app().extensions["bankid_client"]
    with pytest.raises(IllegalTransition):
        signing.start(session, david(session), client, errand, pdf, "127.0.0.1", "binding")
    assert errand.state is ErrandState.DRAFT


def test_verification_flags_a_form_signed_alone_where_two_sign_jointly(
    session: Session,
) -> None:
    errand = registration_draft(session)  # Provverket: Eva signs alone
    result = check_signatory(session, errand, verifiers(session))
    assert result.outcome is CheckOutcome.PASSED
    session.execute(
        update(SignatoryRegisterEntry)
        .where(SignatoryRegisterEntry.orgnr == "2021004920")
        .values(signing_rule=SigningRule.TWO_JOINTLY)
    )
    result = check_signatory(session, errand, verifiers(session))
    assert Finding.JOINT_SIGNATURE_MISSING in result.findings
    assert result.outcome is CheckOutcome.FAILED


def test_the_posted_form_has_two_signature_fields_and_the_clerk_confirms_both(
    app: Flask, session: Session
) -> None:
    errand = _joint_draft(session)
    pdf = documents.printable_form(errand, running_settings(), "sv")
    text = "\n".join(pdf_page_texts(pdf))
    assert text.count("Namnteckning") == 2 and "Den andra firmatecknaren" in text
    assert "Ingela Förvaltningschef" in text
    registrations.print_for_post(session, david(session), errand, pdf)
    pages = len(pdf_page_texts(pdf))
    scan = corpus.as_pdf(corpus.scan_pdf(pdf, ["clean-200"] * pages))
    received = reading.receive_file(session, clerk(session), scan, "post.pdf", BatchSource.UPLOAD)
    session.commit()
    current = runtime.current()
    reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()
    form = session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))
    assert form is not None

    karin = app.test_client()
    login(karin, session, KARIN, staff=True)
    url = f"/skanning/blankett/{form.id}"
    page = karin.get(url).get_data(as_text=True)
    assert "Ingela Förvaltningschef" in page and "den andra firmatecknaren" in page
    answers = {"signature_present": "yes", "signer_is_named": "yes"}
    unanswered = karin.post(url, data={"csrf_token": csrf_token(page), **answers})
    assert unanswered.status_code == 400  # the second signature is asked about too
    assert _errand(session, errand.reference).state is ErrandState.AWAITING_POST
    answers["co_signature_present"] = "yes"
    confirmed = karin.post(url, data={"csrf_token": csrf_token(page), **answers})
    assert confirmed.status_code == 302, confirmed.get_data(as_text=True)
    session.expire_all()
    assert form.co_signature_present is True
    sealed = next(d for d in errand.documents if d.kind is DocumentKind.SCAN).content
    scan = json.loads(extract_evidence(sealed)["skanning.json"])
    assert scan["signatureCheck"]["coSignaturePresent"] is True
    assert check_paper_signature(session, errand).outcome is CheckOutcome.PASSED
    # Had the clerk found only one signature, the caseworker could not approve it.
    form.co_signature_present = False
    result = check_paper_signature(session, errand)
    assert Finding.JOINT_SIGNATURE_MISSING in result.findings
    assert result.outcome is CheckOutcome.FAILED
