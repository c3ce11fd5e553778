"""Scanned intake: from a scanned file to errands received on paper, nothing lost.

1. :func:`receive_file` keeps the file as a batch (the same file twice is one batch) and
   queues :func:`read_batch` — or rejects a file that is no scan, with the reason.
2. :func:`read_batch` reads the pages one by one in the isolated decoder
   (:mod:`app.intake.decoding`), records each page as it goes (the progress the clerk
   sees, and where a restarted job resumes) and sorts it: matched to an errand waiting
   for paper, or into the manual queue.
3. :func:`file_waiting_pages` puts the pages of one errand together; when every page
   of its form is there, they become a :class:`PaperForm` for a clerk to confirm.
4. :func:`confirm_paper_form`: the clerk has checked the handwritten signature; the
   pages are archived as one PDF/A with the errand, which is received on paper.

The clerk's manual queue: :func:`match_page` (by reference number),
:func:`register_paper_form` (a blank form typed in) and :func:`discard_page`.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pypdfium2 as pdfium
import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from app.access import service as access
from app.audit.service import record_event
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.documents.qr import FormKind, QrPayload, form_digest
from app.documents.render import NOMINAL_PAGES
from app.intake.archive import scan_archive_pdf
from app.intake.decoding import (
    MAC_MISMATCH,
    MALFORMED,
    NO_QR_CODE,
    PAGE_TIMED_OUT,
    PAGE_TOO_LARGE,
    BadScanFile,
    IntakeLimits,
    PageRead,
    inspect_scan,
    read_scan,
)
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
from app.registrations import service as registrations
from app.registrations.models import DocumentKind, Submission
from app.registrations.service import RegistrationData, RemovalData, attach_document
from workflows.outbox import add_message
from workflows.state_machine import transition
from workflows.states import EXPIRES_AFTER, Action, SubmissionState

log = structlog.get_logger(__name__)

READ_ACTOR = "read_scan_batch"

_ERROR_OUTCOMES = {
    NO_QR_CODE: PageOutcome.NO_QR_CODE,
    MALFORMED: PageOutcome.MALFORMED,
    MAC_MISMATCH: PageOutcome.MAC_MISMATCH,
    PAGE_TIMED_OUT: PageOutcome.TIMED_OUT,
    PAGE_TOO_LARGE: PageOutcome.TOO_LARGE,
}


class IntakeError(Exception):
    """A clerk's action that cannot be done; ``code`` says why (``app.labels``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Received:
    batch: ScanBatch
    is_new: bool
    """False when the same file was received before (nothing changed)."""


def _audit(
    session: Session, agent: Agent, action: str, object_type: str, object_id: int, **data: object
) -> None:
    record_event(
        session,
        actor=agent.audit_label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data=data,
    )


def receive_file(
    session: Session,
    agent: Agent,
    data: bytes,
    filename: str,
    source: BatchSource,
    limits: IntakeLimits | None = None,
) -> Received:
    """Keep a scanned file as a batch and queue its reading; the same file twice is the
    batch it was the first time. A file that is no readable scan is kept as a rejected
    batch with the reason (``BadScanFile`` codes)."""
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(ScanBatch).where(ScanBatch.sha256 == digest))
    if existing is not None:
        return Received(existing, False)
    batch = ScanBatch(
        sha256=digest,
        filename=filename[-255:] or "scan",
        size_bytes=len(data),
        source=source,
        uploaded_by_staff_id=agent.id if source is BatchSource.UPLOAD else None,
        content=data,
    )
    try:
        info = inspect_scan(data, limits)
    except BadScanFile as bad:
        batch.state = BatchState.REJECTED
        batch.error_code = bad.code
        batch.finished_dt = utcnow()
    else:
        batch.media_type = info.media_type
        batch.page_count = info.pages
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
    except IntegrityError:  # the same file, received at the same moment elsewhere
        existing = session.scalars(select(ScanBatch).where(ScanBatch.sha256 == digest)).one()
        return Received(existing, False)
    _audit(
        session,
        agent,
        "scan_batch.received",
        "scan_batch",
        batch.id,
        filename=batch.filename,
        sha256=digest,
        pages=batch.page_count,
        rejected=batch.error_code,
    )
    if batch.state is BatchState.QUEUED:
        add_message(session, READ_ACTOR, batch_id=batch.id)
    return Received(batch, True)


# --- reading a batch (the read_scan_batch actor) --------------------------------------


READ_LEASE = timedelta(minutes=2)
"""How long a reader holds a batch without recording a page (a page takes at most
``IntakeLimits.page_timeout_s``, and a restart of the decoder a few seconds)."""
MAX_READ_ATTEMPTS = 5
"""Readers that died or failed on a batch before it is given up (``reading_failed``)."""


def _claim(factory: sessionmaker[Session], batch_id: int) -> tuple[int, bytes] | None:
    """Take the batch's reading lease: where to start and the file; None when the batch is
    done, or another reader holds the lease."""
    now = utcnow()
    with factory.begin() as session:
        batch = session.get(ScanBatch, batch_id, with_for_update=True)
        if batch is None or batch.state in (BatchState.DONE, BatchState.REJECTED):
            return None
        if batch.reader_until_dt is not None and batch.reader_until_dt > now:
            return None
        if batch.read_attempts >= MAX_READ_ATTEMPTS:
            _finish(session, batch, "reading_failed")
            return None
        batch.state, batch.reader_until_dt = BatchState.READING, now + READ_LEASE
        batch.read_attempts += 1
        return batch.pages_read, batch.content


def read_batch(
    factory: sessionmaker[Session],
    batch_id: int,
    key: bytes,
    limits: IntakeLimits | None = None,
) -> bool:
    """Read every page not read yet, recording them as they come (a transaction every
    ``PROGRESS_EVERY_S``), then file what matched.

    One reader at a time (a lease on the batch); safe to run twice or after a crash: it
    resumes after the last recorded page. False when there was nothing to do.
    """
    claimed = _claim(factory, batch_id)
    if claimed is None:
        return False
    start, data = claimed
    error = None
    try:
        pages = read_scan(data, key, limits, start_page=start)
        for chunk in _chunks_in_time(pages):
            with factory.begin() as session:
                for page in chunk:
                    record_page(session, batch_id, page)
    except BadScanFile as bad:  # opening it again failed: keep and file what was read
        error = bad.code
    with factory.begin() as session:
        batch = session.get(ScanBatch, batch_id, with_for_update=True)
        assert batch is not None
        _finish(session, batch, error)
    return True


def _finish(session: Session, batch: ScanBatch, error: str | None) -> None:
    """File the pages of the batch that matched, and close it (rejected with ``error``)."""
    submission_ids = {
        p.submission_id
        for p in batch.pages
        if p.status is PageStatus.WAITING and p.submission_id is not None
    }
    for submission_id in sorted(submission_ids):
        file_waiting_pages(session, submission_id)
    batch.state = BatchState.REJECTED if error else BatchState.DONE
    batch.error_code, batch.finished_dt, batch.reader_until_dt = error, utcnow(), None
    _audit(
        session,
        Agent.system("intake"),
        "scan_batch.read",
        "scan_batch",
        batch.id,
        pages=batch.pages_read,
        matched=len(submission_ids),
        error=error,
    )


def resume_stalled_batches(session: Session) -> int:
    """Queue the reading again of batches whose reader died (lease run out); for the
    maintenance sweep. Returns how many."""
    stalled = session.scalars(
        select(ScanBatch.id).where(
            ScanBatch.state.in_((BatchState.QUEUED, BatchState.READING)),
            ScanBatch.reader_until_dt < utcnow(),
        )
    ).all()
    for batch_id in stalled:
        add_message(session, READ_ACTOR, batch_id=batch_id)
    return len(stalled)


PROGRESS_EVERY_S = 0.5
"""Pages read are recorded (and shown as progress) at least this often."""


def _chunks_in_time(pages: Iterator[PageRead]) -> Iterator[list[PageRead]]:
    """The pages in groups, each handed on when ``PROGRESS_EVERY_S`` has passed since the
    group began: one transaction per group instead of one per page."""
    chunk: list[PageRead] = []
    started = time.monotonic()
    for page in pages:
        chunk.append(page)
        if time.monotonic() - started >= PROGRESS_EVERY_S:
            yield chunk
            chunk, started = [], time.monotonic()
    if chunk:
        yield chunk


def record_page(session: Session, batch_id: int, page: PageRead) -> ScanPage | None:
    """Record one page read from a batch and sort it (None if it was recorded before)."""
    batch = session.get(ScanBatch, batch_id, with_for_update=True)
    assert batch is not None
    if page.page_index < batch.pages_read:
        return None
    row = ScanPage(
        batch_id=batch_id,
        page_index=page.page_index,
        upside_down=page.upside_down,
        preview=page.preview_jpeg,
        **_sort(session, page),
    )
    session.add(row)
    batch.pages_read = page.page_index + 1
    batch.reader_until_dt = utcnow() + READ_LEASE
    session.flush()
    return row


def _sort(session: Session, page: PageRead) -> dict[str, object]:
    """Outcome, status and place in the form of a page, from what its code said."""
    payload = page.payload
    if payload is None:
        outcome = _ERROR_OUTCOMES.get(page.error or "", PageOutcome.UNREADABLE)
        return {"outcome": outcome, "status": PageStatus.NEEDS_CLERK}
    place = {
        "form_kind": payload.kind.value,
        "form_page": payload.page,
        "form_pages": payload.pages,
    }
    if payload.is_blank:
        return {"outcome": PageOutcome.BLANK_FORM, "status": PageStatus.NEEDS_CLERK, **place}
    submission = session.get(Submission, payload.submission_id)
    outcome = _match(submission, payload)
    return {
        "outcome": outcome,
        "status": {
            PageOutcome.MATCHED: PageStatus.WAITING,
            PageOutcome.DUPLICATE: PageStatus.DISCARDED,
        }.get(outcome, PageStatus.NEEDS_CLERK),
        "submission_id": submission.id if submission else None,
        **place,
    }


def _match(submission: Submission | None, payload: QrPayload) -> PageOutcome:
    if submission is None or FormKind.of(submission.kind) is not payload.kind:
        return PageOutcome.UNKNOWN_ERRAND
    if payload.digest != form_digest(_printed_data(submission)):
        return PageOutcome.DIGEST_MISMATCH
    if submission.state is SubmissionState.AWAITING_POST:
        return PageOutcome.MATCHED
    if submission.received_dt is not None:
        return PageOutcome.DUPLICATE
    return PageOutcome.UNKNOWN_ERRAND


def _printed_data(submission: Submission) -> dict[str, object]:
    """The form data as printed (what the code's digest covers)."""
    return {k: v for k, v in submission.form_data.items() if k != "completed_steps"}


def file_waiting_pages(session: Session, submission_id: int) -> PaperForm | None:
    """Put an errand's matched pages together: a paper form once every page is there.

    Copies of a page already filed are set aside as duplicates. Returns the new paper
    form, or None while pages are missing.
    """
    submission = session.get(Submission, submission_id, with_for_update=True)
    assert submission is not None
    waiting = list(
        session.scalars(
            select(ScanPage)
            .where(ScanPage.submission_id == submission_id, ScanPage.status == PageStatus.WAITING)
            .order_by(ScanPage.id)
        )
    )
    if not waiting:
        return None
    has_form = session.scalar(select(PaperForm.id).where(PaperForm.submission_id == submission_id))
    if has_form or submission.state is not SubmissionState.AWAITING_POST:
        for page in waiting:
            page.outcome, page.status = PageOutcome.DUPLICATE, PageStatus.DISCARDED
        return None
    pages_in_form = max(page.form_pages or 0 for page in waiting)
    first_copy: dict[int, ScanPage] = {}
    for page in waiting:
        assert page.form_page is not None
        first_copy.setdefault(page.form_page, page)
    if set(first_copy) != set(range(1, pages_in_form + 1)):
        return None
    paper_form = PaperForm(submission_id=submission_id)
    session.add(paper_form)
    submission.expires_dt = None  # the paper is here: it no longer lapses while checked
    session.flush()
    for page in waiting:
        if first_copy[page.form_page or 0] is page:
            page.status, page.paper_form_id = PageStatus.FILED, paper_form.id
        else:
            page.outcome, page.status = PageOutcome.DUPLICATE, PageStatus.DISCARDED
    session.flush()
    _audit(
        session,
        Agent.system("intake"),
        "paper_form.assembled",
        "paper_form",
        paper_form.id,
        submission_id=submission_id,
        pages=pages_in_form,
    )
    return paper_form


# --- the clerk's work ---------------------------------------------------------------


def confirm_paper_form(
    session: Session,
    agent: Agent,
    paper_form: PaperForm,
    *,
    signature_present: bool,
    signer_is_named: bool,
    note: str = "",
) -> Submission:
    """The clerk's check of the handwritten signature; the errand is then received on
    paper with its pages archived as one PDF/A. A missing or wrong signature is recorded
    (verification flags it for the caseworker), not a reason to lose the errand."""
    session.refresh(paper_form, with_for_update=True)  # two clerks, one form
    if paper_form.state is not PaperFormState.AWAITING_CONFIRMATION:
        raise IntakeError("already_confirmed")
    submission = session.get(Submission, paper_form.submission_id, with_for_update=True)
    assert submission is not None
    if submission.state is not SubmissionState.AWAITING_POST:
        raise IntakeError("not_awaiting_post")  # withdrawn meanwhile
    previews = [page.preview for page in paper_form.pages]
    pdf = scan_archive_pdf(previews, title=f"{submission.reference}", lang=submission.language)
    document = attach_document(
        session, submission, DocumentKind.SCAN, pdf, f"{submission.reference}-skannad.pdf"
    )
    transition(session, submission, Action.RECEIVE, agent, data={"channel": "paper"})
    paper_form.state = PaperFormState.CONFIRMED
    paper_form.signature_present = signature_present
    paper_form.signer_is_named = signer_is_named
    paper_form.clerk_note = note.strip() or None
    paper_form.confirmed_by_staff_id = agent.id
    paper_form.confirmed_dt = utcnow()
    paper_form.document_id = document.id
    session.flush()
    _audit(
        session,
        agent,
        "paper_form.confirmed",
        "paper_form",
        paper_form.id,
        submission_id=submission.id,
        signature_present=signature_present,
        signer_is_named=signer_is_named,
    )
    return submission


UNSEEN_OUTCOMES = frozenset({PageOutcome.TIMED_OUT, PageOutcome.TOO_LARGE, PageOutcome.UNREADABLE})
"""Pages that could not even be drawn: no picture to archive or to look at (the batch's
file keeps them; such a sheet is scanned again)."""


def _take_from_queue(session: Session, page: ScanPage) -> None:
    """Lock the page (two clerks, one page) and check that it still waits for a clerk."""
    session.refresh(page, with_for_update=True)
    if page.status is not PageStatus.NEEDS_CLERK:
        raise IntakeError("page_not_in_queue")


def _pages_in_form(submission: Submission) -> int:
    """How many pages the errand's printed form has (a long list of codes adds one)."""
    printed = next((d for d in submission.documents if d.kind is DocumentKind.PRINTED), None)
    if printed is None:
        return NOMINAL_PAGES[submission.kind]
    document = pdfium.PdfDocument(printed.content)  # our own rendering, not a scan
    try:
        return len(document)
    finally:
        document.close()


def match_page(
    session: Session, agent: Agent, page: ScanPage, reference: str, form_page: int
) -> PaperForm | None:
    """The clerk matches a page from the manual queue to an errand by its reference."""
    _take_from_queue(session, page)
    if page.outcome in UNSEEN_OUTCOMES:
        raise IntakeError("no_image")
    submission = session.scalar(
        select(Submission).where(Submission.reference == reference.strip().upper())
    )
    if submission is None:
        raise IntakeError("unknown_reference")
    if submission.state is not SubmissionState.AWAITING_POST:
        raise IntakeError("not_awaiting_post")
    pages_in_form = _pages_in_form(submission)
    if not 1 <= form_page <= pages_in_form:
        raise IntakeError("no_such_page")
    page.submission_id = submission.id
    page.form_page, page.form_pages = form_page, pages_in_form
    page.status = PageStatus.WAITING
    page.matched_by_clerk = True
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()
    session.flush()
    _audit(
        session,
        agent,
        "scan_page.matched",
        "scan_page",
        page.id,
        submission_id=submission.id,
        form_page=form_page,
        outcome=page.outcome.value,
    )
    return file_waiting_pages(session, submission.id)


def register_paper_form(
    session: Session,
    agent: Agent,
    page: ScanPage,
    data: RegistrationData | RemovalData,
    render_printed: Callable[[Submission], bytes],
    form_page: int = 1,
) -> Submission:
    """A blank form filled in by hand (or a page whose code is lost): the clerk types it
    in on the signatory's behalf, every rule of the web form applied (``FormProblem``).
    The errand then waits for its paper like a printed one, and this page is its page n;
    the form's other pages are matched to the new reference."""
    _take_from_queue(session, page)
    wanted = FormKind.REMOVAL if isinstance(data, RemovalData) else FormKind.REGISTRATION
    if page.form_kind is not None and page.form_kind != wanted.value:
        raise IntakeError("wrong_form_kind")
    if page.outcome in UNSEEN_OUTCOMES:
        raise IntakeError("no_image")
    given, _, family = data.signatory_name.strip().rpartition(" ")
    signatory = access.find_or_create_person(
        session, data.signatory_personnummer, given or family, family
    )
    on_behalf = Agent(
        AgentKind.PERSON, signatory.id, signatory.personnummer, entered_by_staff_id=agent.id
    )
    if isinstance(data, RemovalData):
        submission = registrations.create_removal(session, on_behalf, data)
    else:
        submission = registrations.create_registration(session, on_behalf, data)
    registrations.print_for_post(session, agent, submission, render_printed(submission))
    match_page(session, agent, page, submission.reference, form_page)
    return submission


def _back_to_queue(page: ScanPage, agent: Agent) -> None:
    page.status, page.paper_form_id = PageStatus.NEEDS_CLERK, None
    if page.matched_by_clerk:  # what the clerk said goes; what the code said stays
        page.submission_id = page.form_page = page.form_pages = None
        page.matched_by_clerk = False
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()


def return_waiting_pages(session: Session, agent: Agent, submission_id: int) -> int:
    """Undo: the pages waiting for an errand's other pages go back to the manual queue
    (a page matched to the wrong errand, say). Returns how many."""
    pages = session.scalars(
        select(ScanPage)
        .where(ScanPage.submission_id == submission_id, ScanPage.status == PageStatus.WAITING)
        .with_for_update()
    ).all()
    for page in pages:
        _back_to_queue(page, agent)
    session.flush()
    _audit(session, agent, "scan_page.returned", "submission", submission_id, pages=len(pages))
    return len(pages)


def take_apart(session: Session, agent: Agent, paper_form: PaperForm, reason: str) -> None:
    """Undo an assembled form whose pages do not belong together: its pages go back to
    the manual queue and the errand waits for its paper again."""
    session.refresh(paper_form, with_for_update=True)
    if paper_form.state is not PaperFormState.AWAITING_CONFIRMATION:
        raise IntakeError("already_confirmed")
    for page in list(paper_form.pages):
        _back_to_queue(page, agent)
    paper_form.state = PaperFormState.TAKEN_APART
    submission = session.get(Submission, paper_form.submission_id, with_for_update=True)
    assert submission is not None
    submission.expires_dt = utcnow() + EXPIRES_AFTER[SubmissionState.AWAITING_POST]
    session.flush()
    _audit(
        session,
        agent,
        "paper_form.taken_apart",
        "paper_form",
        paper_form.id,
        submission_id=submission.id,
        reason=reason.strip(),
    )


def discard_page(session: Session, agent: Agent, page: ScanPage, reason: str) -> None:
    """Set a page aside (an empty sheet, a cover letter, a copy): kept, not filed."""
    _take_from_queue(session, page)
    page.status = PageStatus.DISCARDED
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()
    session.flush()
    _audit(session, agent, "scan_page.discarded", "scan_page", page.id, reason=reason.strip())


# --- what the clerk's pages show ------------------------------------------------------


def recent_batches(session: Session, limit: int = 20) -> list[ScanBatch]:
    return list(
        session.scalars(
            select(ScanBatch)
            .options(selectinload(ScanBatch.uploaded_by))
            .order_by(ScanBatch.id.desc())
            .limit(limit)
        )
    )


def manual_queue(session: Session, limit: int = 50) -> list[ScanPage]:
    """Pages a clerk must look at, oldest first."""
    return list(
        session.scalars(
            select(ScanPage)
            .where(ScanPage.status == PageStatus.NEEDS_CLERK)
            .options(selectinload(ScanPage.batch), selectinload(ScanPage.submission))
            .order_by(ScanPage.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class IncompleteForm:
    submission: Submission
    pages_here: list[int]
    pages_in_form: int


def incomplete_forms(session: Session) -> list[IncompleteForm]:
    """Errands with some pages scanned and others still missing."""
    rows = session.scalars(
        select(ScanPage)
        .where(ScanPage.status == PageStatus.WAITING)
        .options(selectinload(ScanPage.submission))
        .order_by(ScanPage.submission_id, ScanPage.form_page)
    ).all()
    by_errand: dict[int, list[ScanPage]] = defaultdict(list)
    for row in rows:
        assert row.submission_id is not None
        by_errand[row.submission_id].append(row)
    result = []
    for pages in by_errand.values():
        submission = pages[0].submission
        assert submission is not None
        result.append(
            IncompleteForm(
                submission,
                sorted({p.form_page or 0 for p in pages}),
                max(p.form_pages or 0 for p in pages),
            )
        )
    return result


def forms_to_confirm(session: Session) -> list[PaperForm]:
    return list(
        session.scalars(
            select(PaperForm)
            .where(PaperForm.state == PaperFormState.AWAITING_CONFIRMATION)
            .options(selectinload(PaperForm.submission), selectinload(PaperForm.pages))
            .order_by(PaperForm.id)
        )
    )


def queue_counts(session: Session) -> dict[str, int]:
    def count(query: object) -> int:
        return session.scalar(query) or 0  # type: ignore[call-overload]

    return {
        "manual": count(
            select(func.count(ScanPage.id)).where(ScanPage.status == PageStatus.NEEDS_CLERK)
        ),
        "confirm": count(
            select(func.count(PaperForm.id)).where(
                PaperForm.state == PaperFormState.AWAITING_CONFIRMATION
            )
        ),
    }


def paper_form_of(session: Session, submission_id: int) -> PaperForm | None:
    """The errand's confirmed paper form, if it came in on paper."""
    return session.scalar(
        select(PaperForm)
        .where(
            PaperForm.submission_id == submission_id,
            PaperForm.state == PaperFormState.CONFIRMED,
        )
        .options(selectinload(PaperForm.pages))
        .order_by(PaperForm.id.desc())
    )
