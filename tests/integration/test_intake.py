"""Scanned intake on PostgreSQL: printed errands come back scanned, degraded, shuffled and
mixed with other sheets, and land on their errands; the rest goes to the manual queue;
bad files are turned away with a reason; nothing is lost or done twice."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ImageDraw, ImageFont
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api import clients
from app.audit.models import AuditEvent
from app.core.agents import Agent, AgentKind
from app.documents.qr import QR_PLACEMENT
from app.intake import clerk_actions, queries, reading
from app.intake.decoder import read_scan
from app.intake.models import (
    BatchSource,
    BatchState,
    PageOutcome,
    PageStatus,
    PaperForm,
    PaperFormState,
    ScanBatch,
    ScanPage,
)
from app.intake.watch import DONE_DIR, REJECTED_DIR, FolderWatcher
from app.privacy.access_log import named_in
from app.privacy.models import StaffAccessLog, ViewKind
from app.registrations.models import Channel, DocumentKind, Errand, RejectionReason
from tests import scan_corpus as corpus
from tests.conftest import INGRID, KARIN, TEST_AUDIT_KEY, TEST_DATABASE_URL, login, staff_id
from tests.factories import (
    clerk,
    confirm_signed_paper,
    printed,
    printed_for_post,
    public_base_url,
    registration_draft,
    verifiers,
)
from tests.support import TEST_PROCESS, csrf_token, wait_for
from workflows import pipeline, runtime
from workflows.runtime import Runtime
from workflows.states import ErrandState

SYSTEM = Agent.system("test")
ANNA_AT_PROVVERKET = {
    "personnummer": "198112189876",
    "given_name": "Anna",
    "family_name": "Andersson",
}


def posted(session: Session, **changes: str) -> Errand:
    """A registration printed for the post (awaiting its signed paper)."""
    return printed_for_post(session, registration_draft(session, **changes))


def read(session: Session, data: bytes, name: str = "bunt.pdf") -> ScanBatch:
    """Receive a file as a clerk's upload and read it, as the actor does."""
    received = reading.receive_file(session, clerk(session), data, name, BatchSource.UPLOAD)
    session.commit()
    current = runtime.current()
    reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()
    return received.batch


def paper_form(session: Session, errand: Errand) -> PaperForm | None:
    return session.scalar(select(PaperForm).where(PaperForm.errand_id == errand.id))


def test_a_mixed_degraded_batch_lands_on_its_errands(session: Session, tmp_path: Path) -> None:
    first = posted(session)
    second = posted(session, **ANNA_AT_PROVVERKET)
    sheets = [
        *corpus.scan_pdf(printed(first), ["rotated+1", "upside-down"]),
        *corpus.scan_pdf(printed(second), ["bilevel-200", "jpeg-45-200-rotated"]),
        corpus.blank_page().image,
        corpus.page_without_qr("reg", 0).image,
    ]
    order = list(range(len(sheets)))
    random.Random(7).shuffle(order)
    batch = read(session, corpus.as_pdf([sheets[i] for i in order]))

    assert (batch.state, batch.pages_read, batch.page_count) == (BatchState.DONE, 6, 6)
    for errand in (first, second):
        form = paper_form(session, errand)
        assert form is not None and form.state is PaperFormState.AWAITING_CONFIRMATION
        assert [(p.form_page, p.status) for p in form.pages] == [
            (1, PageStatus.FILED),
            (2, PageStatus.FILED),
        ]
        assert errand.state is ErrandState.AWAITING_POST  # until a clerk confirms
    # The page without its code waits for a clerk; the blank sheet is set aside.
    manual = queries.manual_queue(session)
    assert [p.outcome for p in manual] == [PageOutcome.NO_QR_CODE]
    [blank] = queries.set_aside(session)
    assert (blank.outcome, blank.set_aside_reason) == (PageOutcome.BLANK_SHEET, "blank_sheet")
    assert sum(p.upside_down for p in batch.pages) == 1

    form = paper_form(session, first)
    assert form is not None
    received = confirm_signed_paper(session, form)
    assert received.state is ErrandState.RECEIVED and received.channel is Channel.PAPER
    scan = next(d for d in received.documents if d.kind is DocumentKind.SCAN)
    archived = tmp_path / "archive.pdf"
    archived.write_bytes(scan.content)
    meta = subprocess.run(
        ["pdfinfo", "-meta", str(archived)], check=True, capture_output=True, text=True
    ).stdout
    assert "pdfaid:part" in meta  # PDF/A
    archive = pdfium.PdfDocument(scan.content)
    assert len(archive) > 2  # the two pages, then the evidence (tests/integration/test_evidence.py)
    archive.close()
    pipeline.verify(session, received.id, SYSTEM, verifiers(session))
    check = next(c for c in received.checks if c.name == "signature")
    assert (check.outcome.value, check.findings) == ("passed", ["signed_on_paper"])


def test_the_same_file_twice_changes_nothing(session: Session) -> None:
    errand = posted(session)
    data = corpus.as_tiff(corpus.scan_pdf(printed(errand), ["clean-200", "noisy"]))
    batch = read(session, data, "bunt.tif")
    events = session.scalar(select(func.count(AuditEvent.id)))
    again = reading.receive_file(session, clerk(session), data, "igen.tif", BatchSource.UPLOAD)
    session.commit()
    assert not again.is_new and again.batch.id == batch.id
    assert session.scalar(select(func.count(ScanBatch.id))) == 1
    assert session.scalar(select(func.count(ScanPage.id))) == 2
    assert session.scalar(select(func.count(AuditEvent.id))) == events
    current = runtime.current()
    assert not reading.read_batch(current.session_factory, batch.id, current.settings.qr_key)


def test_pages_of_one_form_in_two_batches_make_one_form(session: Session) -> None:
    errand = posted(session)
    page_one, page_two = corpus.scan_pdf(printed(errand), ["skewed", "speckled-150"])
    read(session, corpus.as_png(page_one), "sida1.png")
    assert paper_form(session, errand) is None
    (incomplete,) = queries.incomplete_forms(session)
    assert (incomplete.errand.id, incomplete.pages_here, incomplete.pages_in_form) == (
        errand.id,
        [1],
        2,
    )
    read(session, corpus.as_jpeg(page_two), "sida2.jpg")
    form = paper_form(session, errand)
    assert form is not None and [p.form_page for p in form.pages] == [1, 2]
    assert queries.incomplete_forms(session) == []


def test_a_forged_code_is_flagged_and_kept_out(session: Session) -> None:
    errand = posted(session)
    pages = corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"])
    text = corpus.forged_code_text("reg", 0, errand.id)  # another errand's MAC
    pages[0] = corpus.paste_code(pages[0], text, 200)
    batch = read(session, corpus.as_pdf(pages))
    outcomes = [p.outcome for p in batch.pages]
    assert outcomes == [PageOutcome.MAC_MISMATCH, PageOutcome.MATCHED]
    assert batch.pages[0].status is PageStatus.NEEDS_CLERK
    assert paper_form(session, errand) is None


def test_a_page_printed_from_other_data_goes_to_the_clerk(session: Session) -> None:
    errand = posted(session)
    data = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"]))
    errand.form_data = {**errand.form_data, "email": "changed@provverket.se"}
    session.commit()
    batch = read(session, data)
    assert {p.outcome for p in batch.pages} == {PageOutcome.DIGEST_MISMATCH}
    assert {p.status for p in batch.pages} == {PageStatus.NEEDS_CLERK}


def test_the_manual_queue_logs_whose_scans_it_shows(
    client: FlaskClient, session: Session, runtime: Runtime
) -> None:
    errand = posted(session)
    data = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"]))
    errand.form_data = {**errand.form_data, "email": "changed@provverket.se"}
    session.commit()
    batch = read(session, data)
    assert {(p.status, p.errand_id) for p in batch.pages} == {(PageStatus.NEEDS_CLERK, errand.id)}
    blank = _blank_form_scan(session)  # pages of nobody known yet
    assert {p.errand_id for p in blank.pages} == {None}
    login(client, session, KARIN, staff=True)
    assert client.get("/skanning/manuell").status_code == 200
    key = clients.subject_key(runtime.settings.secret_key)
    views = session.scalars(select(StaffAccessLog)).all()
    # One view per person the scans' errand names (both its pages shown), nobody else.
    assert {(v.what, v.object_ref, v.staff_id) for v in views} == {
        (ViewKind.SCANNED_PAGES, errand.reference, staff_id(session, KARIN))
    }
    assert sorted(v.subject_hash for v in views) == sorted(
        clients.subject_hash(key, p) for p in named_in(errand)
    )


def test_copies_after_the_form_is_in_are_set_aside(session: Session) -> None:
    errand = posted(session)
    pages = corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"])
    read(session, corpus.as_pdf(pages))
    form = paper_form(session, errand)
    assert form is not None
    confirm_signed_paper(session, form)
    session.commit()
    batch = read(session, corpus.as_tiff(pages), "kopia.tif")
    assert {(p.outcome, p.status) for p in batch.pages} == {
        (PageOutcome.DUPLICATE, PageStatus.DISCARDED)
    }
    assert session.scalar(select(func.count(PaperForm.id))) == 1


def test_reading_resumes_after_a_crash(session: Session) -> None:
    errand = posted(session)
    data = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "noisy"]))
    received = reading.receive_file(session, clerk(session), data, "b.pdf", BatchSource.UPLOAD)
    session.commit()
    current = runtime.current()
    # The first page was recorded; then the worker died.
    first = next(iter(read_scan(data, current.settings.qr_key)))
    with current.unit_of_work() as s:
        reading.record_page(s, received.batch.id, first)
        assert reading.record_page(s, received.batch.id, first) is None  # once only
        dead = s.get(ScanBatch, received.batch.id)
        assert dead is not None
        dead.reader_until_dt = None  # the dead reader's lease has run out
    assert reading.read_batch(current.session_factory, received.batch.id, current.settings.qr_key)
    session.expire_all()
    assert [p.page_index for p in received.batch.pages] == [0, 1]
    assert paper_form(session, errand) is not None


# --- the clerk's pages ---------------------------------------------------------------


BAD_FILES = {
    "not_pdf_or_image": (corpus.text_file, "varken en PDF"),
    "encrypted_pdf": (corpus.encrypted_pdf, "lösenordsskyddad"),
    "broken_pdf": (corpus.truncated_pdf, "trasig eller ofullständig"),
    "no_pages": (corpus.zero_page_pdf, "inga sidor"),
    "image_too_large": (corpus.huge_png, "Bilden är för stor"),
}


@pytest.mark.parametrize("code", sorted(BAD_FILES))
def test_a_bad_file_gets_a_clear_message_and_changes_nothing(
    client: FlaskClient, session: Session, code: str
) -> None:
    make, message = BAD_FILES[code]
    login(client, session, KARIN, staff=True)
    page = client.get("/skanning").get_data(as_text=True)
    response = client.post(
        "/skanning",
        data={"csrf_token": csrf_token(page), "file": (io.BytesIO(make()), "x")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    batch = session.scalars(select(ScanBatch)).one()
    assert (batch.state, batch.error_code, batch.pages) == (BatchState.REJECTED, code, [])


def test_upload_without_a_file_is_refused(client: FlaskClient, session: Session) -> None:
    login(client, session, KARIN, staff=True)
    page = client.get("/skanning").get_data(as_text=True)
    response = client.post("/skanning", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert "Välj en fil att läsa in." in response.get_data(as_text=True)


def test_clerk_uploads_matches_by_reference_and_confirms(
    client: FlaskClient, session: Session, runtime: Runtime, worker: object
) -> None:
    errand = posted(session)
    session.commit()
    page_one = corpus.page_without_qr("reg", 0).image  # the code was torn off
    (page_two,) = corpus.scan_pdf(printed(errand), ["clean-200", "rotated-2"])[1:]
    login(client, session, KARIN, staff=True)
    start = client.get("/skanning").get_data(as_text=True)
    uploaded = client.post(
        "/skanning",
        data={
            "csrf_token": csrf_token(start),
            "file": (io.BytesIO(corpus.as_pdf([page_one, page_two])), "b.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    batch_url = uploaded.headers["Location"]
    batch = session.scalars(select(ScanBatch)).one()

    def read_done() -> bool:
        session.expire_all()
        return batch.state is BatchState.DONE

    wait_for(read_done, timeout=60, message="the worker to read the batch")
    status = client.get(f"{batch_url}/status").get_json()
    assert status == {"state": "done", "pages_read": 2, "page_count": 2}
    read = client.get(batch_url).get_data(as_text=True)
    assert "Ingen läsbar QR-kod" in read
    assert "Inläst – väntar på kontroll" in read and "Klar." not in read

    queue = client.get("/skanning/manuell").get_data(as_text=True)
    (lost,) = [p for p in batch.pages if p.status is PageStatus.NEEDS_CLERK]
    assert f"/skanning/sida/{lost.id}.jpg" in queue
    image = client.get(f"/skanning/sida/{lost.id}.jpg")
    assert image.status_code == 200 and image.data.startswith(b"\xff\xd8")
    wrong = client.post(
        f"/skanning/sida/{lost.id}/koppla",
        data={"csrf_token": csrf_token(queue), "reference": "BB-0000-0000", "form_page": "1"},
        follow_redirects=True,
    )
    assert "Det finns inget ärende med den referensen." in wrong.get_data(as_text=True)
    matched = client.post(
        f"/skanning/sida/{lost.id}/koppla",
        data={"csrf_token": csrf_token(queue), "reference": errand.reference, "form_page": "1"},
    )
    form = paper_form(session, errand)
    assert form is not None
    assert matched.headers["Location"] == f"/skanning/blankett/{form.id}"

    confirm = client.get(f"/skanning/blankett/{form.id}").get_data(as_text=True)
    assert "Eva Ek" in confirm  # the named signatory, for the clerk to compare
    unanswered = client.post(
        f"/skanning/blankett/{form.id}", data={"csrf_token": csrf_token(confirm)}
    )
    assert unanswered.status_code == 400
    # Each showing of the form's people (submitter, person, signatory) is in the access log.
    views = session.execute(
        select(StaffAccessLog.what, StaffAccessLog.staff_id, StaffAccessLog.subject_hash).where(
            StaffAccessLog.object_ref == errand.reference
        )
    ).all()
    assert len(views) == 6 and len({v.subject_hash for v in views}) == 3
    assert {(v.what, v.staff_id) for v in views} == {
        (ViewKind.PAPER_FORM, staff_id(session, KARIN))
    }
    client.post(
        f"/skanning/blankett/{form.id}",
        data={
            "csrf_token": csrf_token(confirm),
            "signature_present": "yes",
            "signer_is_named": "no",
            "note": "Underskriven av ekonomichefen.",
        },
    )
    session.expire_all()
    assert errand.state in (ErrandState.RECEIVED, ErrandState.IN_REVIEW)
    checked = client.get(batch_url).get_data(as_text=True)
    assert "Klar." in checked and "väntar på kontroll" not in checked

    def verified() -> bool:
        session.expire_all()
        return errand.state is ErrandState.IN_REVIEW

    wait_for(verified, timeout=30, message="the verify step")
    check = next(c for c in errand.checks if c.name == "signature")
    assert check.outcome.value == "failed"  # signed, but not by the named signatory
    assert check.findings == ["matched_by_hand", "handwritten_signature_missing"]
    assert check.detail == "Underskriven av ekonomichefen."


def test_only_intake_clerks_use_the_scanning_pages(client: FlaskClient, session: Session) -> None:
    assert client.get("/skanning").status_code == 302  # to the login
    login(client, session, INGRID, staff=True)
    assert client.get("/skanning").status_code == 403
    assert client.get("/skanning/manuell").status_code == 403


# --- the scanners' folder -------------------------------------------------------------


@pytest.mark.usefixtures("committed_db")  # the watcher's threads record what they take
def test_the_watched_folder_takes_what_is_dropped(
    runtime: Runtime, session: Session, tmp_path: Path
) -> None:
    errand = posted(session)
    session.commit()
    data = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-150"]))
    (tmp_path / "före-start.pdf").write_bytes(data)  # dropped while the watcher was down
    watcher = FolderWatcher(runtime, tmp_path, settle_s=0.1)
    watcher.start()
    try:
        (tmp_path / "inte-en-skanning.txt.part").write_bytes(corpus.text_file())
        (tmp_path / "inte-en-skanning.txt.part").rename(tmp_path / "inte-en-skanning.txt")

        def both_taken() -> bool:
            return (tmp_path / DONE_DIR / "före-start.pdf").exists() and (
                tmp_path / REJECTED_DIR / "inte-en-skanning.txt"
            ).exists()

        wait_for(both_taken, timeout=20, message="the watcher to take both files")
    finally:
        watcher.stop()
    reason = (tmp_path / REJECTED_DIR / "inte-en-skanning.txt.txt").read_text(encoding="utf-8")
    assert "not_pdf_or_image" in reason
    batches = session.scalars(select(ScanBatch).order_by(ScanBatch.id)).all()
    assert [(b.filename, b.source, b.state) for b in batches] == [
        ("före-start.pdf", BatchSource.FOLDER, BatchState.QUEUED),
        ("inte-en-skanning.txt", BatchSource.FOLDER, BatchState.REJECTED),
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("committed_db")  # the command runs in a process of its own
def test_the_intake_watch_command(session: Session, tmp_path: Path) -> None:
    behorighet = str(Path(sys.executable).with_name("behorighet"))
    folder = tmp_path / "skanner"
    process = subprocess.Popen(
        [behorighet, "intake", "watch", str(folder)],
        env={
            **os.environ,
            **TEST_PROCESS,
            "DATABASE_URL": TEST_DATABASE_URL,
            "BROKER_URL": "stub://",
            "SECRET_KEY": "test-secret",
            "AUDIT_KEY": TEST_AUDIT_KEY,
        },
        stdout=(tmp_path / "watch.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(folder.exists, timeout=60, message="the watcher to create its folder")
        shutil.copyfile(Path(__file__), folder / "kod.py")

        def rejected() -> bool:
            session.expire_all()
            return session.scalar(select(func.count(ScanBatch.id))) == 1

        try:
            wait_for(rejected, timeout=60, message="the watcher to take the file")
        except AssertionError as exc:
            log = (tmp_path / "watch.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"{exc}; the watcher said:\n{log}") from None
        assert (folder / REJECTED_DIR / "kod.py").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_demo_scanner_scans_the_post_for_the_clerk(
    make_app: Callable[..., Flask], session: Session
) -> None:
    posted(session)
    posted(session, **ANNA_AT_PROVVERKET)
    session.commit()
    client = make_app(plugged={"demo_scanner": True}).test_client()
    login(client, session, KARIN, staff=True)
    assert "Demo: hämta en skanning" in client.get("/skanning").get_data(as_text=True)
    scan = client.get("/demo/skanning")
    assert scan.status_code == 200 and scan.mimetype == "application/pdf"
    batch = read(session, scan.data, "inkommen-post.pdf")
    assert batch.page_count == 5  # two forms of two pages, and a blank sheet
    assert session.scalar(select(func.count(PaperForm.id))) == 2


def _blank_form_scan(session: Session) -> ScanBatch:
    """Both pages of the blank registration form (``/blanketter/anmalan.pdf``), filled in
    by hand and posted."""
    from app.documents.render import render_blank_form
    from app.registrations.models import ErrandKind

    blank = render_blank_form(
        ErrandKind.REGISTRATION, lang="sv", key=runtime.current().settings.qr_key
    )
    return read(session, corpus.as_pdf(corpus.scan_pdf(blank, ["rotated+1", "noisy"])), "hand.pdf")


def _typing_views(session: Session, runtime: Runtime) -> dict[str, set[str]]:
    """Whose data the typing-in showed (personnummer of the form's people), by the object."""
    key = clients.subject_key(runtime.settings.secret_key)
    by_hash = {clients.subject_hash(key, p): p for p in ("198507049859", "195210039847")}
    found: dict[str, set[str]] = {}
    for view in session.scalars(
        select(StaffAccessLog).where(StaffAccessLog.what == ViewKind.PAPER_FORM_TYPING)
    ):
        assert view.staff_id == staff_id(session, KARIN)
        found.setdefault(view.object_ref, set()).add(by_hash[view.subject_hash])
    return found


def test_clerk_types_in_a_blank_form_filled_in_by_hand(
    client: FlaskClient, session: Session, runtime: Runtime
) -> None:
    batch = _blank_form_scan(session)
    assert [(p.outcome, p.form_page) for p in batch.pages] == [
        (PageOutcome.BLANK_FORM, 1),
        (PageOutcome.BLANK_FORM, 2),
    ]
    first, second = batch.pages
    login(client, session, KARIN, staff=True)
    queue = client.get("/skanning/manuell").get_data(as_text=True)
    assert f"/skanning/sida/{first.id}/registrera" in queue
    page = client.get(f"/skanning/sida/{first.id}/registrera").get_data(as_text=True)
    fields = {
        "csrf_token": csrf_token(page),
        "orgnr": "202100-4920",
        "employer_codes": "",
        "personnummer": "19850704-9859",
        "given_name": "Fredrik",
        "family_name": "Falk",
        "title": "Personalchef",
        "email": "fredrik.falk@provverket.se",
        "phone": "",
        "ends_on": "2099-06-30",  # a time-limited role (issue 18 item 3)
        "role": "orderer",
        "signatory_name": "Eva Ek",
        "signatory_personnummer": "195210039847",
        "signatory_title": "Generaldirektör",
        "form_page": "1",
    }
    errands = session.scalar(select(func.count(Errand.id)))
    unknown = client.post(
        f"/skanning/sida/{first.id}/registrera", data={**fields, "orgnr": "5560360793"}
    )
    assert unknown.status_code == 400
    assert "SPV känner inte till någon arbetsgivare" in unknown.get_data(as_text=True)
    assert session.scalar(select(func.count(Errand.id))) == errands
    # The scan's people, typed in and shown again, are in the access log (the empty page
    # before named nobody known).
    assert _typing_views(session, runtime) == {"": {"198507049859", "195210039847"}}

    done = client.post(f"/skanning/sida/{first.id}/registrera", data=fields)
    assert done.status_code == 302
    errand = session.scalars(select(Errand).order_by(Errand.id.desc())).first()
    assert errand is not None
    assert errand.state is ErrandState.AWAITING_POST
    assert errand.submitted_by.personnummer == "195210039847"  # for the signatory
    assert _typing_views(session, runtime)[errand.reference] == {"198507049859", "195210039847"}
    assert errand.data.person.ends_on == "2099-06-30"
    actors = session.scalars(
        select(AuditEvent.actor).where(
            AuditEvent.object_type == "errand", AuditEvent.object_id == str(errand.id)
        )
    ).all()
    assert actors and all(a.startswith("staff:") for a in actors)  # the clerk did it
    form = paper_form(session, errand)
    assert form is None  # page 2 is still in the queue

    queue = client.get("/skanning/manuell").get_data(as_text=True)
    client.post(
        f"/skanning/sida/{second.id}/koppla",
        data={"csrf_token": csrf_token(queue), "reference": errand.reference, "form_page": "2"},
    )
    form = paper_form(session, errand)
    assert form is not None and [p.form_page for p in form.pages] == [1, 2]


def test_a_paper_errand_without_its_scan_fails_the_signature_check(session: Session) -> None:
    from workflows.state_machine import transition
    from workflows.states import Action

    errand = posted(session)
    transition(session, errand, Action.RECEIVE, clerk(session))  # no scan behind it
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    check = next(c for c in errand.checks if c.name == "signature")
    assert (check.outcome.value, check.findings) == ("failed", ["scan_missing"])


def test_the_clerk_who_confirmed_the_paper_cannot_approve_it(session: Session) -> None:
    from app.casework import service as casework
    from workflows.states import IllegalTransition

    errand = posted(session)
    read(session, corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"])))
    form = paper_form(session, errand)
    assert form is not None
    both_roles = Agent(
        AgentKind.STAFF, staff_id(session, KARIN), KARIN, is_caseworker=True, is_intake_clerk=True
    )
    confirm_signed_paper(session, form, both_roles)
    pipeline.verify(session, errand.id, SYSTEM, verifiers(session))
    assert casework.claim(session, both_roles, errand)
    with pytest.raises(IllegalTransition) as refused:
        casework.approve_errand(session, both_roles, errand)
    assert refused.value.code == "four_eyes"
    with pytest.raises(IllegalTransition) as refused:
        casework.reject_errand(
            session,
            both_roles,
            errand,
            RejectionReason.OTHER,
            "Eget ärende",
            base_url=public_base_url(),
        )
    assert refused.value.code == "four_eyes"


def test_a_page_that_could_not_be_drawn_cannot_be_matched(session: Session) -> None:
    errand = posted(session)
    good = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200"]))
    batch = read(session, corpus.concat_pdfs([good, corpus.huge_page_pdf()]))
    huge = batch.pages[1]
    assert (huge.outcome, huge.status) == (PageOutcome.TOO_LARGE, PageStatus.NEEDS_CLERK)
    with pytest.raises(clerk_actions.IntakeError) as refused:
        clerk_actions.match_page(session, clerk(session), huge, errand.reference, 2)
    assert refused.value.code == "no_image"
    clerk_actions.discard_page(session, clerk(session), huge, "Skannas om")
    assert huge.status is PageStatus.DISCARDED


def test_a_blank_removal_form_is_not_typed_in_as_a_registration(session: Session) -> None:
    from app.documents.render import render_blank_form
    from app.registrations.data import RegistrationData
    from app.registrations.models import ErrandKind

    blank = render_blank_form(ErrandKind.REMOVAL, lang="sv", key=runtime.current().settings.qr_key)
    batch = read(session, corpus.as_pdf(corpus.scan_pdf(blank, ["clean-200"])))
    (page,) = batch.pages[:1]
    assert (page.outcome, page.form_kind) == (PageOutcome.BLANK_FORM, "REM")
    data = RegistrationData.from_json(
        {
            "orgnr": "2021004920",
            "personnummer": "198507049859",
            "given_name": "Fredrik",
            "family_name": "Falk",
            "email": "f@provverket.se",
            "role": "orderer",
            "signatory_name": "Eva Ek",
            "signatory_personnummer": "195210039847",
        }
    )
    with pytest.raises(clerk_actions.IntakeError) as refused:
        clerk_actions.register_paper_form(session, clerk(session), page, data, lambda s: b"")
    assert refused.value.code == "wrong_form_kind"


def test_one_reader_at_a_time_and_a_dead_readers_batch_is_resumed(session: Session) -> None:
    from datetime import timedelta

    from app.db import utcnow

    errand = posted(session)
    data = corpus.as_pdf(corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"]))
    received = reading.receive_file(session, clerk(session), data, "b.pdf", BatchSource.UPLOAD)
    batch = received.batch
    batch.state, batch.reader_until_dt = BatchState.READING, utcnow() + timedelta(minutes=1)
    session.commit()
    current = runtime.current()
    assert not reading.read_batch(current.session_factory, batch.id, current.settings.qr_key)
    assert reading.resume_stalled_batches(session) == 0  # its reader is alive

    batch.reader_until_dt = utcnow() - timedelta(seconds=1)  # ... and then it died
    session.commit()
    assert reading.resume_stalled_batches(session) == 1
    session.commit()
    assert reading.read_batch(current.session_factory, batch.id, current.settings.qr_key)
    session.expire_all()
    assert (batch.state, batch.pages_read, batch.reader_until_dt) == (BatchState.DONE, 2, None)
    assert paper_form(session, errand) is not None


def test_a_wrong_match_is_undone_and_nothing_is_lost(client: FlaskClient, session: Session) -> None:
    errand = posted(session)
    other = posted(session, **ANNA_AT_PROVVERKET)
    page_one, _ = corpus.scan_pdf(printed(errand), ["clean-200", "clean-200"])
    page_one.paste(255, QR_PLACEMENT.crop_box(page_one.width, page_one.height, 3.0))
    _, other_two = corpus.scan_pdf(printed(other), ["clean-200", "clean-200"])
    batch = read(session, corpus.as_pdf([page_one, other_two]))
    lost = batch.pages[0]
    # The clerk matches the code-less page 1 to the wrong errand: a form is assembled.
    form = clerk_actions.match_page(session, clerk(session), lost, other.reference, 1)
    assert form is not None
    session.commit()
    login(client, session, KARIN, staff=True)
    page = client.get(f"/skanning/blankett/{form.id}").get_data(as_text=True)
    client.post(
        f"/skanning/blankett/{form.id}/ta-isar",
        data={"csrf_token": csrf_token(page), "reason": "Sidorna hör till olika ärenden"},
    )
    session.expire_all()
    assert form.state is PaperFormState.TAKEN_APART
    assert other.state is ErrandState.AWAITING_POST and other.expires_dt is not None
    assert {(p.status, p.errand_id) for p in batch.pages} == {
        (PageStatus.NEEDS_CLERK, None),  # the hand match is forgotten
        (PageStatus.NEEDS_CLERK, other.id),  # what its code said stays
    }
    clerk_actions.match_page(session, clerk(session), lost, errand.reference, 1)
    assert [i.errand.id for i in queries.incomplete_forms(session)] == [errand.id]
    session.commit()
    queue = client.get("/skanning/manuell").get_data(as_text=True)
    client.post(
        f"/skanning/arende/{errand.id}/lagg-tillbaka", data={"csrf_token": csrf_token(queue)}
    )
    session.expire_all()
    assert lost.status is PageStatus.NEEDS_CLERK and lost.errand_id is None


def test_clerk_types_in_a_blank_removal_form_filled_in_by_hand(
    client: FlaskClient, session: Session
) -> None:
    from app.documents.render import render_blank_form
    from app.registrations.models import ErrandKind

    blank = render_blank_form(ErrandKind.REMOVAL, lang="sv", key=runtime.current().settings.qr_key)
    batch = read(session, corpus.as_pdf(corpus.scan_pdf(blank, ["rotated-2", "clean-200"])))
    first, second = batch.pages
    assert (first.outcome, first.form_kind) == (PageOutcome.BLANK_FORM, "REM")
    login(client, session, KARIN, staff=True)
    page = client.get(f"/skanning/sida/{first.id}/registrera").get_data(as_text=True)
    assert "Behörig beställare som ska tas bort" in page
    fields = {
        "csrf_token": csrf_token(page),
        "form_page": "1",
        "orgnr": "2021004920",
        "reason": "left",
        "personnummer": "200001029834",
        "given_name": "David",
        "family_name": "Dahl",
        "replacement_personnummer": "198507049859",
        "replacement_given_name": "Fredrik",
        "replacement_family_name": "Falk",
        "replacement_title": "",
        "replacement_email": "fredrik.falk@provverket.se",
        "replacement_role": "orderer",
        "signatory_name": "Eva Ek",
        "signatory_personnummer": "195210039847",
        "signatory_title": "Generaldirektör",
    }
    incomplete = client.post(f"/skanning/sida/{first.id}/registrera", data=fields)
    assert incomplete.status_code == 400
    assert "Fyll i den nya behöriga beställaren." in incomplete.get_data(as_text=True)
    done = client.post(
        f"/skanning/sida/{first.id}/registrera", data={**fields, "replacement_title": "HR-chef"}
    )
    assert done.status_code == 302
    errand = session.scalars(select(Errand).order_by(Errand.id.desc())).first()
    assert errand is not None and errand.kind is ErrandKind.REMOVAL
    assert errand.state is ErrandState.AWAITING_POST
    assert errand.subject_personnummer == "200001029834"
    replacement = errand.progress.replacement  # a removal's progress has one
    assert replacement is not None and replacement.personnummer == "198507049859"
    clerk_actions.match_page(session, clerk(session), second, errand.reference, 2)
    form = paper_form(session, errand)
    assert form is not None and [p.form_page for p in form.pages] == [1, 2]


def test_a_blank_sheet_is_set_aside_and_a_clerk_can_put_it_back(session: Session) -> None:
    """The clerk's desk: blank sheets do not fill the manual queue, but nothing is lost –
    the reader records why, and a clerk puts a sheet back (a faint note, say)."""
    note = corpus.blank_page(seed=3).image
    # A few handwritten words in the middle of an otherwise empty sheet is not blank.
    handwriting = ImageFont.load_default(size=60)  # about 7 mm tall at the scan's 200 dpi
    ImageDraw.Draw(note).text(
        (note.width // 4, note.height // 2), "Se bilaga", fill=0, font=handwriting
    )
    batch = read(session, corpus.as_pdf([corpus.blank_page(seed=4).image, note]))
    blank, written = batch.pages
    assert (blank.outcome, blank.status) == (PageOutcome.BLANK_SHEET, PageStatus.DISCARDED)
    assert (written.outcome, written.status) == (PageOutcome.NO_QR_CODE, PageStatus.NEEDS_CLERK)
    [event] = _intake_events(session, "scan_page.discarded")
    assert (event.actor, event.object_id, event.data) == (
        "system:intake",
        str(blank.id),
        {"reason": "blank_sheet"},
    )

    clerk_actions.restore_page(session, clerk(session), blank)
    assert blank.status is PageStatus.NEEDS_CLERK and blank.set_aside_reason is None
    assert [p.id for p in queries.manual_queue(session)] == [blank.id, written.id]
    assert len(_intake_events(session, "scan_page.restored")) == 1
    with pytest.raises(clerk_actions.IntakeError, match="page_not_set_aside"):
        clerk_actions.restore_page(session, clerk(session), blank)

    clerk_actions.discard_page(session, clerk(session), written, "cover_letter")
    assert written.set_aside_reason == "cover_letter"
    assert [p.id for p in queries.set_aside(session)] == [written.id]


def _intake_events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
