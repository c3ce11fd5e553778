"""The employer's lock against posted forms (/sparr) and the stop of a posted registration
in its waiting period (/vantetid/<reference>). Thin: each view asks ``service`` and renders.

Both changes are e-ID actions: the person is identified by their BankID login, and the
login must be recent (``FRESH_EID``); otherwise they are sent to log in with BankID again
and come back to the page. Who may act is decided on the server for every request: only
the employer's signatories switch its lock; only its orderers and signatories stop its
registrations (anyone else gets 403 or 404, audited)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.access.models import Employer
from app.db import utcnow
from app.registrations.models import Errand
from app.safeguards import service
from app.safeguards.models import PaperLock
from app.web import commit, db, person_required, signed_in
from forms.safeguards import LOCK_ON, DisputeForm, LockForm

bp = Blueprint("safeguards", __name__, template_folder="templates")

FRESH_EID = timedelta(minutes=10)
"""How recent the BankID login must be for switching the lock or stopping a registration."""


@bp.app_template_global()
def paper_lock_of(employer_id: int | None) -> PaperLock | None:
    """For the employer's pages and the caseworker's: the employer's lock, if on."""
    return service.lock_of(db(), employer_id) if employer_id is not None else None


def _eid_is_fresh() -> bool:
    login = float(session.get("login_ts", 0))
    return utcnow().timestamp() - login <= FRESH_EID.total_seconds()


def _identify_again(back: str) -> ResponseReturnValue:
    flash(
        _(
            "Legitimera dig med BankID igen för att bekräfta att det är du. Gör sedan "
            "samma val en gång till."
        ),
        "info",
    )
    return redirect(url_for("eid.login", next=back))


def _form(employer_id: int) -> LockForm:
    return LockForm(prefix=f"e{employer_id}")


@bp.get("/sparr")
@person_required
def locks() -> ResponseReturnValue:
    rows = service.lock_page(db(), signed_in())
    return render_template(
        "safeguards/locks.html",
        rows=rows,
        forms={r.employer.id: _form(r.employer.id) for r in rows},
    )


@bp.post("/sparr/<int:employer_id>")
@person_required
def switch(employer_id: int) -> ResponseReturnValue:
    employer = db().get(Employer, employer_id)
    if employer is None:
        abort(404)
    agent = signed_in()
    if not service.is_employer_signatory(db(), agent, employer):
        abort(403)
    form = _form(employer_id)
    if not form.validate_on_submit():
        rows = service.lock_page(db(), agent)
        forms = {r.employer.id: _form(r.employer.id) for r in rows}
        forms[employer_id] = form
        return render_template("safeguards/locks.html", rows=rows, forms=forms), 400
    if not _eid_is_fresh():
        return _identify_again(url_for(".locks"))
    if form.switch.data == LOCK_ON:
        service.switch_on(db(), agent, employer, form.contact_email.data)
        message = _(
            "Spärren är på. Blanketter på papper för %(employer)s stoppas.", employer=employer.name
        )
    else:
        service.switch_off(db(), agent, employer)
        message = _(
            "Spärren är av. SPV tar emot blanketter på papper för %(employer)s igen.",
            employer=employer.name,
        )
    commit()
    flash(message, "success")
    return redirect(url_for(".locks"))


def _waiting(reference: str) -> Errand:
    try:
        return service.waiting_errand(db(), signed_in(), reference)
    except service.NotFound:
        abort(404)


@bp.get("/vantetid/<reference>")
@person_required
def waiting(reference: str) -> ResponseReturnValue:
    errand = _waiting(reference)
    return render_template("safeguards/waiting.html", errand=errand, form=DisputeForm())


@bp.post("/vantetid/<reference>")
@person_required
def dispute(reference: str) -> ResponseReturnValue:
    errand = _waiting(reference)
    if not DisputeForm().validate_on_submit():
        abort(400)
    if not _eid_is_fresh():
        return _identify_again(url_for(".waiting", reference=errand.reference))
    try:
        service.dispute(db(), signed_in(), errand)
    except service.Refused:
        db().rollback()
        flash(
            _("Anmälan kan inte stoppas längre: väntetiden är slut eller den är redan stoppad."),
            "error",
        )
        return redirect(url_for(".waiting", reference=reference))
    commit()
    flash(
        _(
            "Anmälan är stoppad. Den börjar inte gälla, och SPV utreder den som ett "
            "misstänkt bedrägeri."
        ),
        "success",
    )
    return redirect(url_for(".waiting", reference=errand.reference))
