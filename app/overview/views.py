"""SPV's overview for caseworkers: employers to contact before they are locked out, the
errands' lead times by channel, and the recurring review's progress per employer; each
list also as CSV."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.access import campaigns
from app.access.exports import to_csv
from app.core.i18n import local_time
from app.core.ids import format_orgnr
from app.db import utcnow
from app.labels import CHANNEL_LABELS
from app.overview import service
from app.web import caseworker_required, csv_download, db
from workflows.states import DECISION_TIME

bp = Blueprint("overview", __name__, template_folder="templates")

SHOWN = 100
"""Employers a list shows on the page; its CSV has all of them."""


@dataclass(frozen=True)
class EmployerListKind:
    slug: str
    title: object
    """A lazy string (translated when shown)."""
    explanation: object
    load: Callable[[Session, int | None, int], service.EmployerList]


LISTS = (
    EmployerListKind(
        "utan-bestallare",
        _l("Utan behörig beställare"),
        _l(
            "Arbetsgivare med minst en öppen arbetsgivarkod och ingen behörig beställare: "
            "ingen kan utse administratörer eller anmäla en ny beställare med e-legitimation."
        ),
        lambda session, limit, _minimum: service.employers_without_orderer(session, limit=limit),
    ),
    EmployerListKind(
        "utan-administrator",
        _l("Utan administratör"),
        _l(
            "Arbetsgivare med minst en öppen arbetsgivarkod och ingen administratör: "
            "ingen kan ge användarna behörigheter."
        ),
        lambda session, limit, _minimum: service.employers_without_administrator(
            session, limit=limit
        ),
    ),
    EmployerListKind(
        "inaktiva",
        _l("Många inaktiva användare"),
        _l(
            "Arbetsgivare där många användare inte har loggat in på 12 månader: deras "
            "behörigheter kan komma att tas bort."
        ),
        lambda session, limit, minimum: service.employers_with_inactive_users(
            session, minimum=minimum, limit=limit
        ),
    ),
)
LEAD_TIMES = "handlaggningstider"
REVIEWS = "granskning"
"""The recurring review's campaigns, each employer's latest (``app.access.campaigns``)."""


def _list_kind(slug: str) -> EmployerListKind:
    kind = next((k for k in LISTS if k.slug == slug), None)
    if kind is None:
        abort(404)
    return kind


def _minimum() -> int:
    value = request.args.get("minst", "")
    return min(int(value), 10_000) if value.isdigit() and int(value) > 0 else service.MANY_INACTIVE


def _days() -> int:
    value = request.args.get("dagar", "")
    days = int(value) if value.isdigit() else 0
    return days if days in service.PERIODS_DAYS else service.PERIODS_DAYS[1]


@bp.get("/handlaggning/oversikt")
@caseworker_required
def overview() -> ResponseReturnValue:
    slug = request.args.get("lista", LISTS[0].slug)
    common = {"lists": LISTS, "lead_times_slug": LEAD_TIMES, "reviews_slug": REVIEWS, "slug": slug}
    if slug == REVIEWS:
        total, rows = campaigns.campaigns_by_employer(db(), limit=SHOWN)
        return render_template(
            "overview/reviews.html", **common, total=total, rows=rows, stages=STAGE_LABELS
        )
    if slug == LEAD_TIMES:
        days = _days()
        return render_template(
            "overview/lead_times.html",
            **common,
            days=days,
            periods=service.PERIODS_DAYS,
            figures=service.lead_times(db(), days),
            decision_days=DECISION_TIME.days,
        )
    kind = _list_kind(slug)
    minimum = _minimum()
    return render_template(
        "overview/employers.html",
        **common,
        kind=kind,
        minimum=minimum,
        found=kind.load(db(), SHOWN, minimum),
        shown=SHOWN,
    )


def _employer_columns(with_inactive: bool) -> list[str]:
    columns = [
        _("Organisationsnummer"),
        _("Arbetsgivare"),
        _("Användare med behörighet"),
        _("Pågående ärenden"),
    ]
    return [*columns, _("Inaktiva användare")] if with_inactive else columns


def _employer_cells(row: service.EmployerRow, with_inactive: bool) -> Sequence[object]:
    cells: list[object] = [format_orgnr(row.orgnr), row.name, row.users, row.open_errands]
    return [*cells, row.inactive] if with_inactive else cells


@bp.get("/handlaggning/oversikt/<slug>.csv")
@caseworker_required
def export(slug: str) -> ResponseReturnValue:
    stamp = local_time(utcnow(), "%Y-%m-%d")
    if slug == LEAD_TIMES:
        days = _days()
        header = [
            _("Kanal"),
            _("Mottagna"),
            _("Godkända"),
            _("Avslagna"),
            _("Pågående nu"),
            _("Median, dagar"),
            _("Längst, dagar"),
            _("Andel inom %(days)s dagar", days=DECISION_TIME.days),
        ]
        rows = [
            [
                str(CHANNEL_LABELS[f.channel]),
                f.received,
                f.approved,
                f.rejected,
                f.open_now,
                _days_text(f.median_days),
                _days_text(f.longest_days),
                "" if f.within_decision_time is None else f"{f.within_decision_time:.0%}",
            ]
            for f in service.lead_times(db(), days)
        ]
        return csv_download(to_csv(header, rows), f"{LEAD_TIMES}-{days}-dagar-{stamp}.csv")
    if slug == REVIEWS:
        return csv_download(_reviews_csv(), f"{REVIEWS}-{stamp}.csv")
    kind = _list_kind(slug)
    with_inactive = kind.slug == "inaktiva"
    found = kind.load(db(), None, _minimum())
    body = to_csv(
        _employer_columns(with_inactive),
        [_employer_cells(row, with_inactive) for row in found.rows],
    )
    return csv_download(body, f"{kind.slug}-{stamp}.csv")


STAGE_LABELS = {
    "started": _l("Pågår"),
    "reminded": _l("Påmind"),
    "escalated": _l("Sista dagen passerad – firmatecknaren underrättad"),
    "final_warning": _l("Sista varning skickad"),
    "closed": _l("Avslutad"),
}


def _reviews_csv() -> str:
    _total, rows = campaigns.campaigns_by_employer(db())
    header = [
        _("Organisationsnummer"),
        _("Arbetsgivare"),
        _("Läge"),
        _("Startade"),
        _("Sista dag"),
        _("Tas bort"),
        _("Att granska"),
        _("Bekräftade"),
        _("Borttagna"),
        _("Borttagna för att ingen bekräftade dem"),
        _("Totalt"),
    ]
    return to_csv(
        header,
        [
            [
                format_orgnr(r.orgnr),
                r.name,
                str(STAGE_LABELS[r.stage]),
                local_time(r.campaign.started_dt, "%Y-%m-%d"),
                local_time(r.campaign.deadline_dt, "%Y-%m-%d"),
                local_time(r.campaign.ends_dt, "%Y-%m-%d"),
                r.progress.open,
                r.progress.confirmed,
                r.progress.removed,
                r.progress.ended,
                r.progress.total,
            ]
            for r in rows
        ],
    )


def _days_text(days: float | None) -> str:
    return "" if days is None else f"{days:.1f}"


bp.add_app_template_filter(_days_text, "days_text")
