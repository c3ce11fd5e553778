"""The intake clerk's actions: confirm an assembled form, and work the manual queue
(match a page by reference, type in a blank form, discard a page), or undo a match."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pypdfium2 as pdfium
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import service as access
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.documents.pki import SealMaterial
from app.documents.qr import FormKind
from app.documents.render import NOMINAL_PAGES
from app.documents.seal import seal_pdf
from app.documents.stamp import paper_stamp_text
from app.intake.archive import scan_archive_pdf
from app.intake.assembly import file_waiting_pages, record_intake_event
from app.intake.models import PageOutcome, PageStatus, PaperForm, PaperFormState, ScanPage
from app.registrations import service as registrations
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.evidence import ScannedFile, ScannedPage, ScanRecord, paper_evidence
from app.registrations.models import DocumentKind, Errand
from app.registrations.service import attach_document
from app.safeguards.service import lock_of
from app.staff.models import StaffMember
from workflows.state_machine import transition
from workflows.states import EXPIRES_AFTER, Action, ErrandState


class IntakeError(Exception):
    """A clerk's action that cannot be done; ``code`` says why (``app.labels``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def confirm_paper_form(
    session: Session,
    agent: Agent,
    paper_form: PaperForm,
    *,
    signature_present: bool,
    signer_is_named: bool,
    material: SealMaterial,
    note: str = "",
    co_signature_present: bool | None = None,
) -> Errand:
    """The clerk's check of the handwritten signature; the errand is then received on
    paper with its pages archived as one PDF/A-3a, given an evidence page and the scan's
    record, and sealed with ``material`` (PAdES B-LTA) like an e-signed form. A missing or
    wrong signature is recorded (verification flags it for the caseworker), not a reason
    to lose the errand. Where two sign jointly, the clerk also says whether the second
    signatory signed (``co_signature_present``; not said counts as not signed)."""
    session.refresh(paper_form, with_for_update=True)  # two clerks, one form
    if paper_form.state is not PaperFormState.AWAITING_CONFIRMATION:
        raise IntakeError("already_confirmed")
    errand = session.get(Errand, paper_form.errand_id, with_for_update=True)
    assert errand is not None
    if errand.state is not ErrandState.AWAITING_POST:
        raise IntakeError("not_awaiting_post")  # withdrawn meanwhile
    _refuse_if_locked(session, errand)
    pdf = scan_archive_pdf(
        [page.preview for page in paper_form.pages], title=errand.reference, lang=errand.language
    )
    transition(session, errand, Action.RECEIVE, agent, data={"channel": "paper"})
    co_signed = bool(co_signature_present) if errand.data.co_signatory is not None else None
    check = ClerkCheck(agent, utcnow(), signature_present, signer_is_named, note.strip(), co_signed)
    sealed = _sealed_scan(session, errand, paper_form, pdf, material, check)
    document = attach_document(
        session, errand, DocumentKind.SCAN, sealed, f"{errand.reference}-skannad.pdf"
    )
    session.flush()  # the archived scan's id
    paper_form.state = PaperFormState.CONFIRMED
    paper_form.signature_present = signature_present
    paper_form.signer_is_named = signer_is_named
    paper_form.co_signature_present = co_signed
    paper_form.clerk_note = check.note or None
    paper_form.confirmed_by_staff_id = agent.id
    paper_form.confirmed_dt = check.checked_dt
    paper_form.document_id = document.id
    session.flush()
    record_intake_event(
        session,
        agent,
        "paper_form.confirmed",
        "paper_form",
        paper_form.id,
        errand_id=errand.id,
        signature_present=signature_present,
        signer_is_named=signer_is_named,
        **({"co_signature_present": co_signed} if co_signed is not None else {}),
    )
    return errand


def _refuse_if_locked(session: Session, errand: Errand) -> None:
    """The employer has locked itself against posted forms (since the pages were matched,
    or the clerk matches one by hand): nothing is taken in; the clerk sets the pages aside."""
    if errand.employer_id is not None and lock_of(session, errand.employer_id) is not None:
        raise IntakeError("paper_locked")


@dataclass(frozen=True)
class ClerkCheck:
    """The clerk's check of a posted form's handwritten signature."""

    clerk: Agent
    checked_dt: datetime
    signature_present: bool
    signer_is_named: bool
    note: str
    co_signature_present: bool | None = None
    """Where two sign jointly: the second signatory's signature is there too."""


def _sealed_scan(
    session: Session,
    errand: Errand,
    paper_form: PaperForm,
    pdf: bytes,
    material: SealMaterial,
    check: ClerkCheck,
) -> bytes:
    """The scanned pages' PDF with its evidence page and files, sealed."""
    pages = sorted(paper_form.pages, key=lambda page: page.form_page or 0)
    batches = {page.batch.id: page.batch for page in pages}
    clerk = session.get(StaffMember, check.clerk.id)
    scan = ScanRecord(
        files=tuple(
            ScannedFile(b.id, b.filename, b.sha256, b.page_count, b.created_dt)
            for b in batches.values()
        ),
        pages=tuple(
            ScannedPage(
                form_page=page.form_page or 0,
                form_pages=page.form_pages or len(pages),
                batch_id=page.batch_id,
                file_page=page.page_index + 1,
                outcome=page.outcome.value,
                matched_by_clerk=page.matched_by_clerk,
            )
            for page in pages
        ),
        clerk=clerk.name if clerk is not None else "?",
        checked_dt=check.checked_dt,
        signature_present=check.signature_present,
        signer_is_named=check.signer_is_named,
        note=check.note,
        co_signature_present=check.co_signature_present,
        archive_bytes=len(pdf),
        archive_sha256=hashlib.sha256(pdf).hexdigest(),
    )
    now = utcnow()
    page, evidence = paper_evidence(session, errand, scan, material, now)
    return seal_pdf(
        pdf,
        material=material,
        evidence=evidence,
        signer_name=errand.data.signatory.name,
        lang=errand.language,
        page=page,
        stamp=paper_stamp_text(now, errand.language),
        now=now,
    )


UNSEEN_OUTCOMES = frozenset({PageOutcome.TIMED_OUT, PageOutcome.TOO_LARGE, PageOutcome.UNREADABLE})
"""Pages that could not even be drawn: no picture to archive or to look at (the batch's
file keeps them; such a sheet is scanned again)."""


def _take_from_queue(session: Session, page: ScanPage) -> None:
    """Lock the page (two clerks, one page) and check that it still waits for a clerk."""
    session.refresh(page, with_for_update=True)
    if page.status is not PageStatus.NEEDS_CLERK:
        raise IntakeError("page_not_in_queue")


def _pages_in_form(errand: Errand) -> int:
    """How many pages the errand's printed form has (a long list of codes adds one)."""
    printed = next((d for d in errand.documents if d.kind is DocumentKind.PRINTED), None)
    if printed is None:
        return NOMINAL_PAGES[errand.kind]
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
    errand = session.scalar(select(Errand).where(Errand.reference == reference.strip().upper()))
    if errand is None:
        raise IntakeError("unknown_reference")
    if errand.state is not ErrandState.AWAITING_POST:
        raise IntakeError("not_awaiting_post")
    _refuse_if_locked(session, errand)
    pages_in_form = _pages_in_form(errand)
    if not 1 <= form_page <= pages_in_form:
        raise IntakeError("no_such_page")
    page.errand_id = errand.id
    page.form_page, page.form_pages = form_page, pages_in_form
    page.status = PageStatus.WAITING
    page.matched_by_clerk = True
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()
    session.flush()
    record_intake_event(
        session,
        agent,
        "scan_page.matched",
        "scan_page",
        page.id,
        errand_id=errand.id,
        form_page=form_page,
        outcome=page.outcome.value,
    )
    return file_waiting_pages(session, errand.id)


def register_paper_form(
    session: Session,
    agent: Agent,
    page: ScanPage,
    data: RegistrationData | RemovalData,
    render_printed: Callable[[Errand], bytes],
    form_page: int = 1,
) -> Errand:
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
    given, _, family = data.signatory.name.strip().rpartition(" ")
    signatory = access.find_or_create_person(
        session, data.signatory.personnummer, given or family, family
    )
    on_behalf = Agent(
        AgentKind.PERSON, signatory.id, signatory.personnummer, entered_by_staff_id=agent.id
    )
    if isinstance(data, RemovalData):
        errand = registrations.create_removal(session, on_behalf, data)
    else:
        errand = registrations.create_registration(session, on_behalf, data)
    registrations.print_for_post(session, agent, errand, render_printed(errand))
    match_page(session, agent, page, errand.reference, form_page)
    return errand


def _back_to_queue(page: ScanPage, agent: Agent) -> None:
    page.status, page.paper_form_id = PageStatus.NEEDS_CLERK, None
    if page.matched_by_clerk:  # what the clerk said goes; what the code said stays
        page.errand_id = page.form_page = page.form_pages = None
        page.matched_by_clerk = False
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()


def return_waiting_pages(session: Session, agent: Agent, errand_id: int) -> int:
    """Undo: the pages waiting for an errand's other pages go back to the manual queue
    (a page matched to the wrong errand, say). Returns how many."""
    pages = session.scalars(
        select(ScanPage)
        .where(ScanPage.errand_id == errand_id, ScanPage.status == PageStatus.WAITING)
        .with_for_update()
    ).all()
    for page in pages:
        _back_to_queue(page, agent)
    session.flush()
    record_intake_event(session, agent, "scan_page.returned", "errand", errand_id, pages=len(pages))
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
    errand = session.get(Errand, paper_form.errand_id, with_for_update=True)
    assert errand is not None
    errand.expires_dt = utcnow() + EXPIRES_AFTER[ErrandState.AWAITING_POST]
    session.flush()
    record_intake_event(
        session,
        agent,
        "paper_form.taken_apart",
        "paper_form",
        paper_form.id,
        errand_id=errand.id,
        reason=reason.strip(),
    )


def discard_page(session: Session, agent: Agent, page: ScanPage, reason: str) -> None:
    """Set a page aside (an empty sheet, a cover letter, a copy): kept, not filed, and
    :func:`restore_page` puts it back."""
    _take_from_queue(session, page)
    page.status = PageStatus.DISCARDED
    page.resolved_by_staff_id, page.resolved_dt = agent.id, utcnow()
    page.set_aside_reason = reason.strip()
    session.flush()
    record_intake_event(
        session, agent, "scan_page.discarded", "scan_page", page.id, reason=reason.strip()
    )


def restore_page(session: Session, agent: Agent, page: ScanPage) -> None:
    """Put a page that was set aside (by a clerk, or as a blank sheet by the reader) back in
    the manual queue."""
    session.refresh(page, with_for_update=True)
    if page.status is not PageStatus.DISCARDED:
        raise IntakeError("page_not_set_aside")
    page.status = PageStatus.NEEDS_CLERK
    page.resolved_by_staff_id, page.resolved_dt, page.set_aside_reason = None, None, None
    session.flush()
    record_intake_event(session, agent, "scan_page.restored", "scan_page", page.id)
