"""What the clerk's pages show: batches, the manual queue, forms to confirm or incomplete."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.intake.models import PageStatus, PaperForm, PaperFormState, ScanBatch, ScanPage
from app.registrations.models import Errand


def recent_batches(session: Session, limit: int = 20) -> list[ScanBatch]:
    return list(
        session.scalars(
            select(ScanBatch)
            .options(selectinload(ScanBatch.uploaded_by))
            .order_by(ScanBatch.id.desc())
            .limit(limit)
        )
    )


def batches_awaiting_check(session: Session, batch_ids: list[int]) -> set[int]:
    """Of these batches, those read but not yet checked by a clerk: a page waits in the
    manual queue or for the rest of its form, or a form of its pages awaits the clerk's
    confirmation. Such a batch says "väntar på kontroll", not "Klar"."""
    if not batch_ids:
        return set()
    unchecked = or_(
        ScanPage.status.in_([PageStatus.NEEDS_CLERK, PageStatus.WAITING]),
        PaperForm.state == PaperFormState.AWAITING_CONFIRMATION,
    )
    return set(
        session.scalars(
            select(ScanPage.batch_id)
            .outerjoin(PaperForm, PaperForm.id == ScanPage.paper_form_id)
            .where(ScanPage.batch_id.in_(batch_ids), unchecked)
            .distinct()
        )
    )


def manual_queue(session: Session, limit: int = 50) -> list[ScanPage]:
    """Pages a clerk must look at, oldest first."""
    return list(
        session.scalars(
            select(ScanPage)
            .where(ScanPage.status == PageStatus.NEEDS_CLERK)
            .options(selectinload(ScanPage.batch), selectinload(ScanPage.errand))
            .order_by(ScanPage.id)
            .limit(limit)
        )
    )


def set_aside(session: Session, limit: int = 30) -> list[ScanPage]:
    """Pages set aside, by a clerk or as blank sheets, newest first: any can be put back."""
    return list(
        session.scalars(
            select(ScanPage)
            .where(ScanPage.status == PageStatus.DISCARDED)
            .options(selectinload(ScanPage.batch), selectinload(ScanPage.errand))
            .order_by(ScanPage.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class IncompleteForm:
    errand: Errand
    pages_here: list[int]
    pages_in_form: int


def incomplete_forms(session: Session) -> list[IncompleteForm]:
    """Errands with some pages scanned and others still missing."""
    rows = session.scalars(
        select(ScanPage)
        .where(ScanPage.status == PageStatus.WAITING)
        .options(selectinload(ScanPage.errand))
        .order_by(ScanPage.errand_id, ScanPage.form_page)
    ).all()
    by_errand: dict[int, list[ScanPage]] = defaultdict(list)
    for row in rows:
        assert row.errand_id is not None
        by_errand[row.errand_id].append(row)
    result = []
    for pages in by_errand.values():
        errand = pages[0].errand
        assert errand is not None
        result.append(
            IncompleteForm(
                errand,
                sorted({p.form_page or 0 for p in pages}),
                max(p.form_pages or 0 for p in pages),
            )
        )
    return result


def next_form_to_confirm(session: Session, after: PaperForm | None = None) -> PaperForm | None:
    """The oldest form waiting for the clerk's check, other than ``after``."""
    query = select(PaperForm).where(PaperForm.state == PaperFormState.AWAITING_CONFIRMATION)
    if after is not None:
        query = query.where(PaperForm.id != after.id)
    return session.scalars(query.order_by(PaperForm.id).limit(1)).first()


def forms_to_confirm(session: Session) -> list[PaperForm]:
    return list(
        session.scalars(
            select(PaperForm)
            .where(PaperForm.state == PaperFormState.AWAITING_CONFIRMATION)
            .options(selectinload(PaperForm.errand), selectinload(PaperForm.pages))
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


def paper_form_of(session: Session, errand_id: int) -> PaperForm | None:
    """The errand's confirmed paper form, if it came in on paper."""
    return session.scalar(
        select(PaperForm)
        .where(
            PaperForm.errand_id == errand_id,
            PaperForm.state == PaperFormState.CONFIRMED,
        )
        .options(selectinload(PaperForm.pages))
        .order_by(PaperForm.id.desc())
    )
