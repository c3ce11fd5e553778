"""Reading a scanned file: kept as a batch, its pages read in the decoder process one by
one, recorded as they come and sorted (matched to an errand waiting for paper, or to the
clerk's manual queue); a restarted reader resumes after the last recorded page."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from queue import Full, Queue

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.agents import Agent
from app.db import utcnow
from app.documents.qr import FormKind, QrPayload, form_digest
from app.documents.scan import MAC_MISMATCH, MALFORMED, NO_QR_CODE
from app.intake.assembly import file_waiting_pages, record_intake_event
from app.intake.blank_sheet import is_blank_sheet
from app.intake.decoder import inspect_scan, read_scan
from app.intake.models import BatchSource, BatchState, PageOutcome, PageStatus, ScanBatch, ScanPage
from app.intake.scan_file import PAGE_TIMED_OUT, PAGE_TOO_LARGE, BadScanFile, IntakeLimits, PageRead
from app.registrations.models import Errand
from app.safeguards.service import PAPER_LOCK_REASON, locked_employer_ids, stop_if_locked
from workflows.outbox import add_message
from workflows.states import ErrandState

log = structlog.get_logger(__name__)

READ_ACTOR = "read_scan_batch"
READER = Agent.system("intake")
BLANK_SHEET_REASON = "blank_sheet"
"""The reason recorded for a blank sheet set aside by the reader (shown as "Tom sida")."""

_ERROR_OUTCOMES = {
    NO_QR_CODE: PageOutcome.NO_QR_CODE,
    MALFORMED: PageOutcome.MALFORMED,
    MAC_MISMATCH: PageOutcome.MAC_MISMATCH,
    PAGE_TIMED_OUT: PageOutcome.TIMED_OUT,
    PAGE_TOO_LARGE: PageOutcome.TOO_LARGE,
}


@dataclass(frozen=True)
class Received:
    batch: ScanBatch
    is_new: bool
    """False when the same file was received before (nothing changed)."""


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
    record_intake_event(
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
    ``CHUNK_PAGES`` pages or ``PROGRESS_EVERY_S``), then file what matched.

    One reader at a time (a lease on the batch); safe to run twice or after a crash: it
    resumes after the last recorded page. False when there was nothing to do.
    """
    claimed = _claim(factory, batch_id)
    if claimed is None:
        return False
    start, data = claimed
    error = None
    try:
        _record_as_read(factory, batch_id, read_scan(data, key, limits, start_page=start))
    except BadScanFile as bad:  # opening it again failed: keep and file what was read
        error = bad.code
    with factory.begin() as session:
        batch = session.get(ScanBatch, batch_id, with_for_update=True)
        assert batch is not None
        _finish(session, batch, error)
    return True


def _finish(session: Session, batch: ScanBatch, error: str | None) -> None:
    """File the pages of the batch that matched, and close it (rejected with ``error``)."""
    errand_ids = {
        p.errand_id
        for p in batch.pages
        if p.status is PageStatus.WAITING and p.errand_id is not None
    }
    for errand_id in sorted(errand_ids):
        file_waiting_pages(session, errand_id)
    batch.state = BatchState.REJECTED if error else BatchState.DONE
    batch.error_code, batch.finished_dt, batch.reader_until_dt = error, utcnow(), None
    record_intake_event(
        session,
        READER,
        "scan_batch.read",
        "scan_batch",
        batch.id,
        pages=batch.pages_read,
        matched=len(errand_ids),
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
"""Pages read are handed on to be recorded (and shown as progress) at least this often…"""
CHUNK_PAGES = 8
"""…or when this many have been read, whichever comes first."""


def _record_as_read(
    factory: sessionmaker[Session], batch_id: int, pages: Iterator[PageRead]
) -> None:
    """Record the pages in groups, one transaction a group, while a thread of its own
    takes the next pages from the decoder: a group is recorded when it is due (see
    ``CHUNK_PAGES``), and grows meanwhile. The groups are recorded in order, so a reader
    that dies leaves its pages recorded up to some page. The database is used from this
    thread only."""
    read: Queue[PageRead | _Finished] = Queue(maxsize=4 * CHUNK_PAGES)
    stop = threading.Event()

    def hand_on(item: PageRead | _Finished) -> bool:
        """False when the recording stopped (failed): no one takes it."""
        while not stop.is_set():
            try:
                read.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def take_pages() -> None:
        outcome = _Finished(None)
        try:
            for page in pages:
                if not hand_on(page):
                    return
        except Exception as error:  # the decoder could not be started: raised below
            outcome = _Finished(error)
        finally:
            pages.close()  # type: ignore[attr-defined]
        hand_on(outcome)

    reader = threading.Thread(target=take_pages, name="intake-pages", daemon=True)
    reader.start()
    try:
        chunk: list[PageRead] = []
        started = time.monotonic()
        while True:
            item = read.get()
            if isinstance(item, _Finished):
                if chunk:
                    _record_chunk(factory, batch_id, chunk)
                if item.error is not None:
                    raise item.error
                return
            chunk.append(item)
            if len(chunk) >= CHUNK_PAGES or time.monotonic() - started >= PROGRESS_EVERY_S:
                _record_chunk(factory, batch_id, chunk)  # the reader reads on meanwhile
                chunk, started = [], time.monotonic()
    finally:
        stop.set()
        reader.join()


@dataclass(frozen=True)
class _Finished:
    error: Exception | None


def _record_chunk(factory: sessionmaker[Session], batch_id: int, chunk: list[PageRead]) -> None:
    with factory.begin() as session:
        record_pages(session, batch_id, chunk)


def record_page(session: Session, batch_id: int, page: PageRead) -> ScanPage | None:
    """Record one page read from a batch and sort it (None if it was recorded before)."""
    rows = record_pages(session, batch_id, [page])
    return rows[0] if rows else None


def record_pages(session: Session, batch_id: int, pages: list[PageRead]) -> list[ScanPage]:
    """Record pages read from a batch, in order, and sort them; the pages recorded before
    are left out. A handful of statements for the lot: the batch locked once, the errands
    the codes name read in one query, the pages inserted together, the progress once."""
    batch = session.get(ScanBatch, batch_id, with_for_update=True)
    assert batch is not None
    fresh = [page for page in pages if page.page_index >= batch.pages_read]
    if not fresh:
        return []
    named = {p.payload.errand_id for p in fresh if p.payload and p.payload.errand_id is not None}
    errands = (
        {e.id: e for e in session.scalars(select(Errand).where(Errand.id.in_(named)))}
        if named
        else {}
    )
    locked = locked_employer_ids(
        session, {e.employer_id for e in errands.values() if e.employer_id is not None}
    )
    rows = [
        ScanPage(
            batch_id=batch_id,
            page_index=page.page_index,
            upside_down=page.upside_down,
            preview=page.preview_jpeg,
            **_sort(errands, page, locked),
        )
        for page in fresh
    ]
    session.add_all(rows)
    batch.pages_read = fresh[-1].page_index + 1
    batch.reader_until_dt = utcnow() + READ_LEASE
    session.flush()
    stopped = {r.errand_id for r in rows if r.outcome is PageOutcome.PAPER_LOCKED}
    for errand_id in sorted(e for e in stopped if e is not None):
        stop_if_locked(session, READER, errands[errand_id])
    for row in rows:
        if row.outcome in (PageOutcome.BLANK_SHEET, PageOutcome.PAPER_LOCKED):
            record_intake_event(
                session,
                READER,
                "scan_page.discarded",
                "scan_page",
                row.id,
                reason=row.set_aside_reason,
                **({"errand_id": row.errand_id} if row.errand_id else {}),
            )
    return rows


def _sort(errands: dict[int, Errand], page: PageRead, locked: set[int]) -> dict[str, object]:
    """Outcome, status and place in the form of a page, from what its code said."""
    payload = page.payload
    if payload is None:
        if page.error == NO_QR_CODE and is_blank_sheet(page.preview_jpeg):
            return {
                "outcome": PageOutcome.BLANK_SHEET,
                "status": PageStatus.DISCARDED,
                "set_aside_reason": BLANK_SHEET_REASON,
            }
        outcome = _ERROR_OUTCOMES.get(page.error or "", PageOutcome.UNREADABLE)
        return {"outcome": outcome, "status": PageStatus.NEEDS_CLERK}
    place = {
        "form_kind": payload.kind.value,
        "form_page": payload.page,
        "form_pages": payload.pages,
    }
    if payload.errand_id is None:  # a blank form
        return {"outcome": PageOutcome.BLANK_FORM, "status": PageStatus.NEEDS_CLERK, **place}
    errand = errands.get(payload.errand_id)
    outcome = _match(errand, payload, locked)
    if outcome is PageOutcome.PAPER_LOCKED:  # kept, set aside; the errand is stopped
        return {
            "outcome": outcome,
            "status": PageStatus.DISCARDED,
            "set_aside_reason": PAPER_LOCK_REASON,
            "errand_id": errand.id if errand else None,
            **place,
        }
    return {
        "outcome": outcome,
        "status": {
            PageOutcome.MATCHED: PageStatus.WAITING,
            PageOutcome.DUPLICATE: PageStatus.DISCARDED,
        }.get(outcome, PageStatus.NEEDS_CLERK),
        "errand_id": errand.id if errand else None,
        **place,
    }


def _match(errand: Errand | None, payload: QrPayload, locked: set[int]) -> PageOutcome:
    if errand is None or FormKind.of(errand.kind) is not payload.kind:
        return PageOutcome.UNKNOWN_ERRAND
    printed = errand.progress
    if not printed.is_complete or payload.digest != form_digest(printed.complete().to_json()):
        return PageOutcome.DIGEST_MISMATCH
    if errand.state is ErrandState.STOPPED or (
        errand.state is ErrandState.AWAITING_POST and errand.employer_id in locked
    ):
        return PageOutcome.PAPER_LOCKED  # the employer locked itself against paper
    if errand.state is ErrandState.AWAITING_POST:
        return PageOutcome.MATCHED
    if errand.received_dt is not None:
        return PageOutcome.DUPLICATE
    return PageOutcome.UNKNOWN_ERRAND
