"""Issue 19: who on the staff looked at whose data (with the API's reads), and the register
extract (GDPR art. 15) – complete, about the one person only, sealed."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.access.models import EmployerCode, SelfService, ServicePermission
from app.api import clients
from app.api.models import ApiAccessLog, Scope
from app.audit.models import AuditEvent
from app.db import utcnow
from app.documents.cli import verify_pdf_command
from app.notifications.models import EmailMessage
from app.privacy import access_log
from app.privacy import views as privacy_views
from app.privacy.models import RegisterExtract, StaffAccessLog, ViewKind
from app.registrations.models import DocumentKind, ErrandDocument
from devtools.pki import ensure_test_pki
from devtools.seed import PERSONS
from tests.archive_pki import FailingTsa
from tests.conftest import ANNA, DAVID, EVA, INGRID, KARIN, login, person_id, staff_id
from tests.factories import caseworker, in_review
from tests.support import csrf_token, pdf_page_texts
from workflows.runtime import Runtime

FREDRIK = "198507049859"
BERTIL = "199001019810"


def _key(runtime: Runtime) -> bytes:
    return clients.subject_key(runtime.settings.secret_key)


def _views(session: Session, key: bytes, personnummer: str) -> list[StaffAccessLog]:
    digest = clients.subject_hash(key, personnummer)
    return list(
        session.scalars(
            select(StaffAccessLog)
            .where(StaffAccessLog.subject_hash == digest)
            .order_by(StaffAccessLog.id)
        )
    )


def _api_read(session: Session, key: bytes, personnummer: str) -> None:
    client, _token = clients.add_client(session, "pensionstjansten", frozenset({Scope.PERSONS}))
    caller = clients.Caller(client.id, client.name, client.scope_set)
    clients.log_access(session, key, caller, "person_permissions", [personnummer])


def test_staff_views_of_errands_documents_and_the_employer_lookup_are_logged(
    client: FlaskClient, session: Session, runtime: Runtime
) -> None:
    errand = in_review(session)
    session.commit()
    login(client, session, INGRID, staff=True)
    key = _key(runtime)
    assert client.get(f"/handlaggning/{errand.reference}").status_code == 200
    document = next(d for d in errand.documents if d.kind is DocumentKind.SIGNED)
    assert (
        client.get(f"/handlaggning/{errand.reference}/handlingar/{document.id}").status_code == 200
    )
    ingrid = staff_id(session, INGRID)
    for named in (DAVID, FREDRIK, EVA):  # submitter, the person registered, the signatory
        seen = [(v.staff_id, v.what, v.object_ref) for v in _views(session, key, named)]
        assert seen == [
            (ingrid, ViewKind.ERRAND, errand.reference),
            (ingrid, ViewKind.ERRAND_DOCUMENT, f"{errand.reference}/{document.id}"),
        ]
    assert client.get("/handlaggning/arbetsgivare?q=202100-5489").status_code == 200
    for contact in (ANNA, BERTIL):  # the employer's orderer and administrator shown
        assert [v.what for v in _views(session, key, contact)] == [ViewKind.EMPLOYER_LOOKUP]
    # A list of employers names no person: nothing logged.
    client.get("/handlaggning/arbetsgivare?q=e")
    assert session.scalar(select(func.count()).select_from(StaffAccessLog)) == 8
    # Nowhere in the log is a personnummer itself.
    stored = " ".join(
        f"{v.subject_hash} {v.object_ref} {v.reason}"
        for v in session.scalars(select(StaffAccessLog))
    )
    assert all(pnr not in stored for pnr, *_rest in PERSONS)


def test_who_looked_answers_with_staff_and_api_reads_and_logs_the_search_and_export(
    client: FlaskClient, session: Session, runtime: Runtime
) -> None:
    key = _key(runtime)
    johan = caseworker(session, "197010639909")
    access_log.record_view(session, key, johan, [ANNA], ViewKind.ERRAND, "BB-AAAA-1111")
    access_log.record_view(session, key, johan, [BERTIL], ViewKind.ERRAND, "BB-BBBB-2222")
    _api_read(session, key, ANNA)
    session.commit()
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning/atkomstlogg").get_data(as_text=True)
    assert "Skäl till sökningen" in page and 'name="csrf_token"' in page
    missing = client.post("/handlaggning/atkomstlogg", data={"csrf_token": csrf_token(page)})
    assert missing.status_code == 400 and "Skriv varför du söker." in missing.get_data(as_text=True)
    answer = client.post(
        "/handlaggning/atkomstlogg",
        data={"csrf_token": csrf_token(page), "personnummer": ANNA, "reason": "Dnr 2026/17"},
    ).get_data(as_text=True)
    assert "Johan Handläggare" in answer and "BB-AAAA-1111" in answer
    assert "pensionstjansten" in answer and "Personens behörigheter (API)" in answer
    assert "Ingrid Handläggare" in answer and "Dnr 2026/17" in answer  # the search itself
    assert "BB-BBBB-2222" not in answer  # Bertil's, not Anna's
    shown = re.sub(r'value="[^"]*"', "", answer)  # but in the fields as typed
    assert ANNA not in shown and "19811218-9876" not in shown  # masked on the page

    exported = client.post(
        "/handlaggning/atkomstlogg.csv",
        data={"csrf_token": csrf_token(answer), "personnummer": ANNA, "reason": "Dnr 2026/17"},
    )
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.headers["Cache-Control"] == "no-store"
    body = exported.get_data(as_text=True)
    assert body.startswith("\ufeff")  # UTF-8 a spreadsheet reads, like the employers' exports
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == list(access_log.CSV_COLUMNS)
    assert {(r[1], r[2]) for r in rows[1:]} == {
        ("staff", "Johan Handläggare"),
        ("staff", "Ingrid Handläggare"),
        ("api", "pensionstjansten"),
    }
    whats = [v.what for v in _views(session, key, ANNA)]
    assert whats == [ViewKind.ERRAND, ViewKind.ACCESS_LOG, ViewKind.ACCESS_LOG_CSV]
    assert [v.reason for v in _views(session, key, ANNA)][1:] == ["Dnr 2026/17"] * 2


def test_only_caseworkers_reach_the_log_and_the_extracts(app: Flask, session: Session) -> None:
    paths = ("/handlaggning/atkomstlogg", "/handlaggning/registerutdrag")
    anonymous = app.test_client()
    for path in paths:
        assert anonymous.get(path).status_code == 302
        assert anonymous.post(path).status_code in (302, 400)
    for who, staff in ((DAVID, False), (KARIN, True)):  # a person; an intake clerk
        browser = app.test_client()
        login(browser, session, who, staff=staff)
        for path in paths:
            assert browser.get(path).status_code == 403
        page = browser.get("/").get_data(as_text=True)
        refused = browser.post(
            "/handlaggning/registerutdrag",
            data={"csrf_token": csrf_token(page), "personnummer": ANNA, "request_note": "x"},
        )
        assert refused.status_code == 403
    assert session.scalar(select(func.count()).select_from(RegisterExtract)) == 0
    assert session.scalar(select(func.count()).select_from(StaffAccessLog)) == 0


def _david_with_everything(session: Session, runtime: Runtime) -> None:
    """David (Provverket's orderer) gets a service permission, emails (one to him, one to a
    group he is in) and an API read; another person gets an email and a view too."""
    code = session.scalars(select(EmployerCode).where(EmployerCode.code == "B2001")).one()
    session.add(
        ServicePermission(
            person_id=person_id(session, DAVID),
            employer_code_id=code.id,
            service=SelfService.STATISTICS,
            granted_by_person_id=person_id(session, DAVID),
        )
    )
    mail = {"template": "t", "language": "sv", "text_body": "Hej!", "to_name": "x"}
    session.add_all(
        [
            EmailMessage(dedupe_key="t:1", to_address="david.dahl@provverket.example",
                         subject="Till David", **mail),
            EmailMessage(dedupe_key="t:2", to_address="", subject="Till gruppen",
                         group_addresses=["david.dahl@provverket.example", "gun@x.example"],
                         **mail),
            EmailMessage(dedupe_key="t:3", to_address="fredrik.falk@hogskolan.example",
                         subject="Till Fredrik", **mail),
        ]
    )  # fmt: skip
    _api_read(session, _key(runtime), DAVID)
    access_log.record_view(
        session, _key(runtime), caseworker(session, "197010639909"), [ANNA], ViewKind.ERRAND
    )


def test_a_register_extract_holds_everything_about_the_person_and_nobody_else(
    app: Flask, client: FlaskClient, session: Session, runtime: Runtime, pki_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    errand = in_review(session)  # David submits Fredrik's registration, Eva signs
    _david_with_everything(session, runtime)
    session.commit()
    login(app.test_client(), session, DAVID)  # a login of his own
    login(client, session, INGRID, staff=True)
    client.get(f"/handlaggning/{errand.reference}")  # a view of his data

    page = client.get("/handlaggning/registerutdrag").get_data(as_text=True)
    made = client.post(
        "/handlaggning/registerutdrag",
        data={
            "csrf_token": csrf_token(page),
            "personnummer": "20000102-9834",
            "request_note": "Brev 1 dec, dnr 2026/18",
            "language": "sv",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    extract = session.scalars(select(RegisterExtract)).one()
    assert made.headers["Location"] == f"/handlaggning/registerutdrag/{extract.reference}"
    documents = list(
        session.scalars(
            select(ErrandDocument).where(ErrandDocument.register_extract_id == extract.id)
        )
    )
    assert [d.media_type for d in documents] == ["application/pdf", "application/json"]
    assert all(d.errand_id is None for d in documents)
    data = json.loads(documents[1].content)

    assert data["personnummer"] == DAVID and data["person"]["family_name"] == "Dahl"
    assert [r["role"] for r in data["roles"]] == ["orderer"]
    assert [p["service"] for p in data["service_permissions"]] == ["statistics"]
    assert any(c["role"] == "orderer" for c in data["permission_changes"])
    capacities = {e["reference"]: e["capacities"] for e in data["errands"]}
    assert capacities[errand.reference] == ["submitter"]
    # and the seed's: his own registration at Provverket, and Anna's, which he sent in
    assert sorted(capacities.values()) == [["submitter"], ["submitter"], ["submitter", "subject"]]
    assert {e["subject"] for e in data["emails"]} == {"Till David", "Till gruppen"}
    assert {e["to"] for e in data["emails"]} == {"david.dahl@provverket.example"}
    texts = {e["subject"]: e["text"] for e in data["emails"]}
    assert texts == {"Till David": "Hej!", "Till gruppen": None}  # a group's is about others
    assert len(data["logins"]) == 1
    looked = {(a["by"], a["who"], a["what"]) for a in data["access_log"]}
    assert looked == {
        ("api", "pensionstjansten", "person_permissions"),
        ("staff", "Ingrid Handläggare", "errand"),
        ("staff", "Ingrid Handläggare", "register_extract"),  # making it
    }
    # Nothing of another person: no other personnummer, address, or view.
    text = documents[1].content.decode()
    for pnr, _given, _family, email in PERSONS:
        if pnr != DAVID:
            assert pnr not in text and email not in text
    assert "gun@x.example" not in text and "Till Fredrik" not in text
    assert "Falk" not in text and "Eva" not in text

    pdf = documents[0].content
    pages = " ".join(pdf_page_texts(pdf))
    for heading in (
        "Registerutdrag",
        "Roller",
        "Ärenden",
        "E-post till dig",
        "Inloggningar",
        "Vem har tittat på dina uppgifter",
        "20000102-9834",
        errand.reference,
    ):
        assert heading in pages, heading  # fmt: skip
    sealed = tmp_path / "registerutdrag.pdf"
    sealed.write_bytes(pdf)
    test_pki = ensure_test_pki(pki_dir)
    verified = CliRunner().invoke(
        verify_pdf_command,
        [str(sealed)],
        env={
            "SEAL_TRUST_ROOTS_FILE": str(test_pki.root_cert),
            "SEAL_CERT_FILE": str(test_pki.seal_cert),
        },
    )
    assert verified.exit_code == 0, verified.output
    assert "Level: PAdES B-LTA" in verified.stdout
    assert f"Evidence: registerutdrag-{extract.reference}.json" in verified.stdout

    # Opened and delivered: each opening logged, the delivery audited, once.
    page = client.get(f"/handlaggning/registerutdrag/{extract.reference}").get_data(as_text=True)
    opened = client.get(
        f"/handlaggning/registerutdrag/{extract.reference}/handlingar/{documents[0].id}"
    )
    assert opened.status_code == 200 and opened.data == pdf
    assert (
        client.get(
            f"/handlaggning/registerutdrag/{extract.reference}/handlingar/{errand.documents[0].id}"
        ).status_code
        == 404
    )  # an errand's document is not the extract's
    delivered = client.post(
        f"/handlaggning/registerutdrag/{extract.reference}/levererat",
        data={"csrf_token": csrf_token(page), "delivery_note": "Post till folkbokföringsadressen"},
    )
    assert delivered.status_code == 302
    again = client.post(
        f"/handlaggning/registerutdrag/{extract.reference}/levererat",
        data={"csrf_token": csrf_token(page), "delivery_note": "Igen"},
    )
    assert again.status_code == 302
    session.refresh(extract)
    assert extract.delivery_note == "Post till folkbokföringsadressen"
    events = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.object_type == "register_extract", AuditEvent.object_id == str(extract.id)
        )
    ).all()
    assert events == ["register_extract.made", "register_extract.delivered"]
    key = _key(runtime)
    assert [v.what for v in _views(session, key, DAVID)][-2:] == [
        ViewKind.REGISTER_EXTRACT,
        ViewKind.REGISTER_EXTRACT_DOCUMENT,
    ]


def test_the_access_log_is_deleted_in_batches_only_when_old_enough(
    session: Session, runtime: Runtime
) -> None:
    key = _key(runtime)
    now = utcnow()
    ingrid = staff_id(session, INGRID)
    old, recent = now - timedelta(days=800), now - timedelta(days=40)
    session.execute(
        insert(StaffAccessLog),
        [
            {"staff_id": ingrid, "subject_hash": clients.subject_hash(key, ANNA), "what": w,
             "object_ref": "", "viewed_dt": when}
            for w, when in [(ViewKind.ERRAND, old)] * 5 + [(ViewKind.ERRAND, recent)]
        ],
    )  # fmt: skip
    _api_read(session, key, ANNA)
    session.execute(
        ApiAccessLog.__table__.update().values(created_dt=old)  # type: ignore[attr-defined]
    )
    cutoff = now - timedelta(days=730)
    first = access_log.delete_before(session, cutoff, limit=2)
    assert (first.staff, first.api) == (2, 1)
    session.commit()
    total = access_log.delete_all_before(runtime.unit_of_work, cutoff, batch_size=2)
    assert (total.staff, total.api) == (3, 0)
    left = session.scalars(select(StaffAccessLog.viewed_dt)).all()
    assert left == [recent]
    with pytest.raises(ValueError, match="at least 30 days"):
        access_log.delete_before(session, now - timedelta(days=29))


def test_an_extract_that_cannot_be_sealed_keeps_nothing_says_so_and_can_be_made_again(
    client: FlaskClient, session: Session, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TSA down: no 500, a clear message, nothing kept but the audit event (without
    whose extract it was), the form as filled in; made once the TSA answers again."""
    real = privacy_views.seal_material(runtime.settings)
    down = dataclasses.replace(real, timestamper=FailingTsa())
    monkeypatch.setattr(privacy_views, "seal_material", lambda settings: down)
    login(client, session, INGRID, staff=True)
    page = client.get("/handlaggning/registerutdrag").get_data(as_text=True)
    asked = {
        "csrf_token": csrf_token(page),
        "personnummer": "20000102-9834",
        "request_note": "Brev 2 dec, dnr 2026/19",
        "language": "sv",
    }
    failed = client.post("/handlaggning/registerutdrag", data=asked)
    assert failed.status_code == 503
    body = failed.get_data(as_text=True)
    assert "kunde inte förseglas just nu" in body and "Försök igen" in body
    assert 'value="Brev 2 dec, dnr 2026/19"' in body  # to try again as it stands
    assert session.scalar(select(func.count()).select_from(RegisterExtract)) == 0
    assert session.scalar(select(func.count()).select_from(StaffAccessLog)) == 0
    [event] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "register_extract.not_sealed")
    ).all()
    assert event.actor == f"staff:{staff_id(session, INGRID)}"
    assert "TSA" in event.data["error"] and DAVID not in str(event.data)

    client.get("/?lang=en")
    english = client.post("/handlaggning/registerutdrag", data=asked)
    assert "could not be sealed just now" in english.get_data(as_text=True)
    client.get("/?lang=sv")

    monkeypatch.setattr(privacy_views, "seal_material", lambda settings: real)
    again = client.post("/handlaggning/registerutdrag", data=asked)
    assert again.status_code == 302
    assert session.scalar(select(func.count()).select_from(RegisterExtract)) == 1
