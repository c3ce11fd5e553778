"""The demo's clock for the recurring review (demo and tests only).

A campaign runs for weeks; ``/demo/granskning`` lets time go by instead: "Låt tiden gå"
moves every employer's start and every campaign's times that many days into the past
(as if the days had passed) and runs the scheduled step (``app.access.campaigns``) now,
so its reminders, escalation, final warning and ending happen as they would.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import campaigns
from app.access.models import Employer, ReviewCampaign
from app.config import Settings
from app.web import caseworker_required, commit, db, runtime

bp = Blueprint("review_clock", __name__, template_folder="templates")

CAMPAIGN_TIMES = (
    "started_dt",
    "deadline_dt",
    "ends_dt",
    "escalated_dt",
    "final_warning_dt",
    "closed_dt",
)


def let_time_pass(session: Session, settings: Settings, days: int) -> int:
    """``days`` go by for the recurring review: the employers' starts and the campaigns'
    times move that far into the past, then the scheduled step runs. Returns how many
    campaigns it started."""
    delta = timedelta(days=days)
    for employer in session.scalars(select(Employer)):
        employer.created_dt -= delta
    for campaign in session.scalars(select(ReviewCampaign)):
        for name in CAMPAIGN_TIMES:
            value = getattr(campaign, name)
            if value is not None:
                setattr(campaign, name, value - delta)
    session.flush()
    return campaigns.run_campaigns(session, settings)


@bp.get("/demo/granskning")
@caseworker_required
def clock() -> ResponseReturnValue:
    _total, rows = campaigns.campaigns_by_employer(db())
    return render_template("review_clock/clock.html", rows=rows)


@bp.post("/demo/granskning")
@caseworker_required
def let_pass() -> ResponseReturnValue:
    days = request.form.get("dagar", type=int) or 0
    if not 1 <= days <= 800:
        flash(_("Ange ett antal dagar mellan 1 och 800."), "error")
        return redirect(url_for(".clock"))
    let_time_pass(db(), runtime().settings, days)
    commit()
    flash(_("%(days)s dagar har gått för granskningen.", days=days), "success")
    return redirect(url_for(".clock"))
