"""An errand's scanned pages put together: a paper form once every page is there."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import record_event
from app.core.agents import Agent
from app.intake.models import PageOutcome, PageStatus, PaperForm, ScanPage
from app.registrations.models import Errand
from workflows.states import ErrandState


def record_intake_event(
    session: Session, agent: Agent, action: str, object_type: str, object_id: int, **data: object
) -> None:
    """An intake event (``scan_batch.…``, ``scan_page.…``, ``paper_form.…``) in the audit log."""
    record_event(
        session,
        actor=agent.audit_label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        data=data,
    )


def file_waiting_pages(session: Session, errand_id: int) -> PaperForm | None:
    """Put an errand's matched pages together: a paper form once every page is there.

    Copies of a page already filed are set aside as duplicates. Returns the new paper
    form, or None while pages are missing.
    """
    errand = session.get(Errand, errand_id, with_for_update=True)
    assert errand is not None
    waiting = list(
        session.scalars(
            select(ScanPage)
            .where(ScanPage.errand_id == errand_id, ScanPage.status == PageStatus.WAITING)
            .order_by(ScanPage.id)
        )
    )
    if not waiting:
        return None
    has_form = session.scalar(select(PaperForm.id).where(PaperForm.errand_id == errand_id))
    if has_form or errand.state is not ErrandState.AWAITING_POST:
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
    paper_form = PaperForm(errand_id=errand_id)
    session.add(paper_form)
    errand.expires_dt = None  # the paper is here: it no longer lapses while checked
    session.flush()
    for page in waiting:
        if first_copy[page.form_page or 0] is page:
            page.status, page.paper_form_id = PageStatus.FILED, paper_form.id
        else:
            page.outcome, page.status = PageOutcome.DUPLICATE, PageStatus.DISCARDED
    session.flush()
    record_intake_event(
        session,
        Agent.system("intake"),
        "paper_form.assembled",
        "paper_form",
        paper_form.id,
        errand_id=errand_id,
        pages=pages_in_form,
    )
    return paper_form
