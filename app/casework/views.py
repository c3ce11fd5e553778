"""Handläggning: the caseworker queue and decisions."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.casework import service
from app.labels import refusal_message
from app.registrations.models import Submission
from app.web import caseworker_required, commit, db, signed_in
from forms.casework import DecisionForm, RejectionForm
from workflows.states import IllegalTransition, SubmissionState

bp = Blueprint("casework", __name__, template_folder="templates")


@bp.get("/handlaggning")
@caseworker_required
def queue() -> ResponseReturnValue:
    return render_template(
        "casework/queue.html",
        in_review=service.queue(db()),
        failed=service.queue(db(), (SubmissionState.FAILED,)),
    )


def _errand(reference: str) -> Submission:
    try:
        return service.errand(db(), reference)
    except service.NotFound:
        abort(404)


@bp.get("/handlaggning/<reference>")
@caseworker_required
def errand(reference: str) -> ResponseReturnValue:
    return render_template(
        "casework/errand.html",
        submission=_errand(reference),
        decision_form=DecisionForm(),
        rejection_form=RejectionForm(),
        State=SubmissionState,
    )


@bp.post("/handlaggning/<reference>/godkann")
@caseworker_required
def approve(reference: str) -> ResponseReturnValue:
    submission = _errand(reference)
    if not DecisionForm().validate_on_submit():
        abort(400)
    try:
        service.approve_submission(db(), signed_in(), submission)
    except IllegalTransition as exc:
        flash(
            _("Ärendet kunde inte godkännas: %(reason)s", reason=refusal_message(exc.code)), "error"
        )
    else:
        commit()
        flash(_("Ärendet är godkänt. Behörigheten läggs in."), "success")
    return redirect(url_for(".errand", reference=reference))


@bp.post("/handlaggning/<reference>/avsla")
@caseworker_required
def reject(reference: str) -> ResponseReturnValue:
    submission = _errand(reference)
    form = RejectionForm()
    if not form.validate_on_submit():
        return render_template(
            "casework/errand.html",
            submission=submission,
            decision_form=DecisionForm(),
            rejection_form=form,
            State=SubmissionState,
        ), 400
    try:
        service.reject_submission(db(), signed_in(), submission, form.reason.data)
    except IllegalTransition as exc:
        flash(_("Ärendet kunde inte avslås: %(reason)s", reason=refusal_message(exc.code)), "error")
    else:
        commit()
        flash(_("Ärendet är avslaget."), "success")
    return redirect(url_for(".errand", reference=reference))
