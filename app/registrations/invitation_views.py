"""The invited signatory's pages: open the link, log in with BankID, read the whole form
and its PDF, then sign it or decline with a reason (``app.registrations.invitations``).

Only the signatory the form names opens them; for anyone else the link does not exist
(404, the same as a link that ended or never was).
"""

from __future__ import annotations

import io

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from app.eid.models import OrderStatus
from app.registrations import documents, invitations
from app.registrations.models import Errand, SigningInvitation
from app.registrations.views import (
    begin_signing,
    cancel_sign_order,
    poll_signing,
    signing_pending_page,
    signing_status_json,
)
from app.web import carry_out, db, person_required, runtime, signed_in
from forms.common import DeclineForm
from workflows.states import ErrandState, IllegalTransition

bp = Blueprint("signatory", __name__, template_folder="templates")


def _invitation(token: str) -> tuple[SigningInvitation, Errand]:
    try:
        return invitations.for_signatory(db(), signed_in(), token)
    except invitations.InvitationNotFound:
        abort(404)


def _page(
    token: str, decline_form: DeclineForm | None = None, status: int = 200
) -> ResponseReturnValue:
    link, errand = _invitation(token)
    return render_template(
        "registrations/invitation.html",
        token=token,
        link=link,
        errand=errand,
        action_form=FlaskForm(),
        decline_form=decline_form or DeclineForm(),
    ), status


@bp.get("/underskrift/<token>")
@person_required
def invitation(token: str) -> ResponseReturnValue:
    """The whole form as the signatory will sign it, with the PDF and both choices."""
    return _page(token)


@bp.get("/underskrift/<token>/blankett.pdf")
@person_required
def invitation_pdf(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    pdf = documents.signable_form(errand, runtime().settings)
    return send_file(
        io.BytesIO(pdf), mimetype="application/pdf", download_name=f"{errand.reference}.pdf"
    )


@bp.post("/underskrift/<token>/signera")
@person_required
def start_signing(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if begin_signing(errand):
        return redirect(url_for(".signing_page", token=token))
    return redirect(url_for(".invitation", token=token))


@bp.get("/underskrift/<token>/signera")
@person_required
def signing_page(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    order, state = poll_signing(errand)
    if order is None or state is None or state.status is OrderStatus.COMPLETE:
        target = url_for(".done") if _signed(errand) else url_for(".invitation", token=token)
        return redirect(target)
    return signing_pending_page(
        errand,
        order,
        state,
        status_url=url_for(".signing_status", token=token),
        cancel_url=url_for(".cancel_signing", token=token),
        retry_url=url_for(".invitation", token=token),
    )


def _signed(errand: Errand) -> bool:
    return errand.state not in (ErrandState.AWAITING_SIGNATORY, ErrandState.AWAITING_SIGNATURE)


@bp.post("/underskrift/<token>/signera/status")
@person_required
def signing_status(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    order, state = poll_signing(errand)
    if order is None or state is None:
        return jsonify(status="failed", done=url_for(".invitation", token=token)), 404
    done = url_for(".done") if _signed(errand) else url_for(".invitation", token=token)
    return signing_status_json(errand, order, state, done)


@bp.post("/underskrift/<token>/signera/avbryt")
@person_required
def cancel_signing(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    if not FlaskForm().validate_on_submit():
        abort(400)
    cancel_sign_order(errand)
    return redirect(url_for(".invitation", token=token))


@bp.post("/underskrift/<token>/avboj")
@person_required
def decline(token: str) -> ResponseReturnValue:
    _link, errand = _invitation(token)
    form = DeclineForm()
    if not form.validate_on_submit():
        return _page(token, form, 400)
    done, _none = carry_out(
        lambda: invitations.decline(
            db(), signed_in(), errand, form.reason.data, base_url=runtime().settings.public_base_url
        ),
        {IllegalTransition: lambda _exc: _("Blanketten kan inte avböjas just nu.")},
    )
    if not done:
        return redirect(url_for(".invitation", token=token))
    flash(
        _("Du har avböjt att skriva under. Den som skickade blanketten har fått ditt svar."),
        "info",
    )
    return redirect(url_for(".done"))


@bp.get("/underskrift/klar")
@person_required
def done() -> ResponseReturnValue:
    return render_template("registrations/invitation_done.html")
