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
from app.registrations import documents, invitations, joint
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


def _invitation(reference: str) -> tuple[SigningInvitation, Errand]:
    try:
        return invitations.for_signatory_by_reference(db(), signed_in(), reference)
    except invitations.InvitationNotFound:
        abort(404)


@bp.get("/underskrift/<token>")
@person_required
def link(token: str) -> ResponseReturnValue:
    """The link in the email: for the signatory it names, on to the errand's page."""
    try:
        _link, errand = invitations.for_signatory(db(), signed_in(), token)
    except invitations.InvitationNotFound:
        abort(404)
    return redirect(url_for(".invitation", reference=errand.reference))


def _page(
    reference: str, decline_form: DeclineForm | None = None, status: int = 200
) -> ResponseReturnValue:
    link, errand = _invitation(reference)
    return render_template(
        "registrations/invitation.html",
        link=link,
        errand=errand,
        action_form=FlaskForm(),
        decline_form=decline_form or DeclineForm(),
    ), status


@bp.get("/underskrift/arende/<reference>")
@person_required
def invitation(reference: str) -> ResponseReturnValue:
    """The whole form as the signatory will sign it, with the PDF and both choices."""
    return _page(reference)


@bp.get("/underskrift/arende/<reference>/blankett.pdf")
@person_required
def invitation_pdf(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    first = joint.first_signature(db(), errand)  # two sign jointly: the PDF the first signed
    pdf = first.document if first and first.document else None
    pdf = pdf or documents.signable_form(errand, runtime().settings)
    return send_file(
        io.BytesIO(pdf), mimetype="application/pdf", download_name=f"{errand.reference}.pdf"
    )


@bp.post("/underskrift/arende/<reference>/signera")
@person_required
def start_signing(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if begin_signing(errand):
        return redirect(url_for(".signing_page", reference=reference))
    return redirect(url_for(".invitation", reference=reference))


@bp.get("/underskrift/arende/<reference>/signera")
@person_required
def signing_page(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    order, state = poll_signing(errand)
    if order is None or state is None or state.status is OrderStatus.COMPLETE:
        target = (
            url_for(".done") if _signed(errand) else url_for(".invitation", reference=reference)
        )
        return redirect(target)
    return signing_pending_page(
        errand,
        order,
        state,
        status_url=url_for(".signing_status", reference=reference),
        cancel_url=url_for(".cancel_signing", reference=reference),
        retry_url=url_for(".invitation", reference=reference),
    )


def _signed(errand: Errand) -> bool:
    """Done for the signatory signed in: the errand went on, or they gave the first of two
    joint signatures."""
    waiting = errand.state in (ErrandState.AWAITING_SIGNATORY, ErrandState.AWAITING_SIGNATURE)
    return not waiting or joint.has_signed(db(), errand, signed_in().personnummer)


@bp.post("/underskrift/arende/<reference>/signera/status")
@person_required
def signing_status(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    order, state = poll_signing(errand)
    if order is None or state is None:
        return jsonify(status="failed", done=url_for(".invitation", reference=reference)), 404
    done = url_for(".done") if _signed(errand) else url_for(".invitation", reference=reference)
    return signing_status_json(errand, order, state, done)


@bp.post("/underskrift/arende/<reference>/signera/avbryt")
@person_required
def cancel_signing(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    cancel_sign_order(errand)
    return redirect(url_for(".invitation", reference=reference))


@bp.post("/underskrift/arende/<reference>/avboj")
@person_required
def decline(reference: str) -> ResponseReturnValue:
    _link, errand = _invitation(reference)
    form = DeclineForm()
    if not form.validate_on_submit():
        return _page(reference, form, 400)
    done, _none = carry_out(
        lambda: invitations.decline(
            db(), signed_in(), errand, form.reason.data, base_url=runtime().settings.public_base_url
        ),
        {IllegalTransition: lambda _exc: _("Blanketten kan inte avböjas just nu.")},
    )
    if not done:
        return redirect(url_for(".invitation", reference=reference))
    flash(
        _("Du har avböjt att skriva under. Den som skickade blanketten har fått ditt svar."),
        "info",
    )
    return redirect(url_for(".done"))


@bp.get("/underskrift/klar")
@person_required
def done() -> ResponseReturnValue:
    return render_template("registrations/invitation_done.html")
