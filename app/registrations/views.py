"""The submitter's pages: the registration form and "Mina ärenden"."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from app.registrations import service
from app.registrations.models import Submission
from app.web import commit, db, person_required, runtime, signed_in
from forms.registration import RegistrationForm
from workflows.states import IllegalTransition, SubmissionState

bp = Blueprint("registrations", __name__, template_folder="templates")

PROBLEM_MESSAGES = {
    "unknown_employer": _l("SPV känner inte till någon arbetsgivare med det organisationsnumret."),
    "code_not_of_employer": _l("Arbetsgivarkoden hör inte till arbetsgivaren."),
    "already_orderer": _l("Personen är redan behörig beställare hos arbetsgivaren."),
    "pending_errand": _l("Det finns redan ett pågående ärende för personen hos arbetsgivaren."),
}


@bp.route("/anmalan-behorig-bestallare", methods=["GET", "POST"])
@person_required
def registration_form() -> ResponseReturnValue:
    form = RegistrationForm()
    if form.validate_on_submit():
        data = service.RegistrationData(
            orgnr=form.orgnr.data,
            personnummer=form.personnummer.data,
            given_name=form.given_name.data.strip(),
            family_name=form.family_name.data.strip(),
            email=form.email.data.strip(),
            role=form.role.data,
            signatory_name=form.signatory_name.data.strip(),
            signatory_personnummer=form.signatory_personnummer.data,
        )
        try:
            submission = service.create_registration(db(), signed_in(), data)
        except service.FormProblem as problem:
            getattr(form, problem.field).errors.append(PROBLEM_MESSAGES[problem.code])
        else:
            commit()
            flash(_("Anmälan är sparad. Granska den och skriv under."), "success")
            return redirect(url_for(".errand", reference=submission.reference))
    return render_template("registrations/registration_form.html", form=form)


@bp.get("/mina-arenden")
@person_required
def my_errands() -> ResponseReturnValue:
    submissions = service.own_submissions(db(), signed_in())
    return render_template("registrations/my_errands.html", submissions=submissions)


def _own(reference: str) -> Submission:
    try:
        return service.own_submission(db(), signed_in(), reference)
    except service.NotYours:
        abort(404)


@bp.get("/mina-arenden/<reference>")
@person_required
def errand(reference: str) -> ResponseReturnValue:
    submission = _own(reference)
    return render_template(
        "registrations/errand.html",
        submission=submission,
        action_form=FlaskForm(),
        State=SubmissionState,
    )


@bp.post("/mina-arenden/<reference>/demo-signera")
@person_required
def demo_sign(reference: str) -> ResponseReturnValue:
    if not runtime().settings.demo_signing:
        abort(404)
    submission = _own(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        service.sign_with_demo_signature(db(), signed_in(), submission)
    except IllegalTransition:
        flash(_("Ärendet kan inte skrivas under i sitt nuvarande läge."), "error")
    else:
        commit()
        flash(_("Anmälan är underskriven och inskickad till SPV."), "success")
    return redirect(url_for(".errand", reference=reference))


@bp.post("/mina-arenden/<reference>/aterkalla")
@person_required
def withdraw(reference: str) -> ResponseReturnValue:
    submission = _own(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        service.withdraw(db(), signed_in(), submission)
    except IllegalTransition:
        flash(_("Ärendet kan inte återkallas i sitt nuvarande läge."), "error")
    else:
        commit()
        flash(_("Ärendet är återkallat."), "success")
    return redirect(url_for(".errand", reference=reference))
