"""Caseworkers' pages about one person: who has looked at their data (and the CSV of it), and
their register extract (made, downloaded, delivered)."""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.documents.pki import seal_material
from app.labels import look_label
from app.privacy import access_log, extract
from app.privacy.models import RegisterExtract, ViewKind
from app.web import (
    caseworker_required,
    commit,
    db,
    person_key,
    record_view,
    runtime,
    signed_in,
)
from forms.privacy import AccessLogExportForm, AccessLogSearchForm, DeliveryForm, ExtractRequestForm

bp = Blueprint("privacy", __name__, template_folder="templates")


@bp.route("/handlaggning/atkomstlogg", methods=["GET", "POST"])
@caseworker_required
def access_log_search() -> ResponseReturnValue:
    """Vem har tittat på personens uppgifter? (The search is itself logged, with its reason.)
    A POST, so that the personnummer is never in a URL."""
    form = AccessLogSearchForm()
    looks = None
    if form.validate_on_submit():
        personnummer = form.personnummer.data
        record_view([personnummer], ViewKind.ACCESS_LOG, reason=form.reason.data)
        looks = access_log.who_looked(db(), person_key(), personnummer)
    return render_template(
        "privacy/access_log.html",
        form=form,
        looks=looks,
        export_form=AccessLogExportForm(
            personnummer=form.personnummer.data, reason=form.reason.data
        ),
    ), 400 if form.errors else 200


@bp.post("/handlaggning/atkomstlogg.csv")
@caseworker_required
def access_log_csv() -> ResponseReturnValue:
    form = AccessLogExportForm()
    if not form.validate_on_submit():
        abort(400)
    personnummer = form.personnummer.data
    looks = access_log.who_looked(db(), person_key(), personnummer)
    record_view([personnummer], ViewKind.ACCESS_LOG_CSV, reason=form.reason.data)
    body = access_log.looks_csv(looks, look_label)
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="atkomstlogg.csv"'},
    )


@bp.route("/handlaggning/registerutdrag", methods=["GET", "POST"])
@caseworker_required
def extracts() -> ResponseReturnValue:
    form = ExtractRequestForm()
    status = 200
    if form.validate_on_submit():
        try:
            made = extract.make_extract(
                db(),
                person_key(),
                signed_in(),
                form.personnummer.data,
                request_note=form.request_note.data,
                language=form.language.data,
                material=lambda: seal_material(runtime().settings),
            )
        except extract.NotSealed as failure:
            # Nothing of it kept; the form as filled in, to try again.
            db().rollback()
            extract.record_not_sealed(db(), signed_in(), failure)
            commit()
            flash(
                _(
                    "Registerutdraget kunde inte förseglas just nu: förseglingen eller "
                    "tidsstämpeltjänsten svarar inte. Ingenting är sparat. Försök igen om "
                    "en stund."
                ),
                "error",
            )
            status = 503
        else:
            commit()
            flash(_("Registerutdraget %(ref)s är klart.", ref=made.reference), "success")
            return redirect(url_for(".extract_page", reference=made.reference))
    elif form.errors:
        status = 400
    return render_template(
        "privacy/extracts.html", form=form, extracts=extract.recent_extracts(db())
    ), status


def _extract(reference: str) -> RegisterExtract:
    found = extract.find_extract(db(), reference[:12])
    if found is None:
        abort(404)
    return found


def _render_extract(
    found: RegisterExtract, form: DeliveryForm, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "privacy/extract.html",
        extract=found,
        documents=extract.extract_documents(db(), found),
        form=form,
    ), status


@bp.get("/handlaggning/registerutdrag/<reference>")
@caseworker_required
def extract_page(reference: str) -> ResponseReturnValue:
    return _render_extract(_extract(reference), DeliveryForm())


@bp.get("/handlaggning/registerutdrag/<reference>/handlingar/<int:document_id>")
@caseworker_required
def extract_document(reference: str, document_id: int) -> ResponseReturnValue:
    document = extract.open_document(db(), signed_in(), _extract(reference), document_id)
    if document is None:
        abort(404)
    commit()
    return send_file(
        io.BytesIO(document.content),
        mimetype=document.media_type,
        download_name=document.filename,
        as_attachment=True,
    )


@bp.post("/handlaggning/registerutdrag/<reference>/levererat")
@caseworker_required
def deliver(reference: str) -> ResponseReturnValue:
    found = _extract(reference)
    form = DeliveryForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _render_extract(found, form, 400)
    try:
        extract.deliver_extract(db(), signed_in(), found, form.delivery_note.data)
    except extract.AlreadyDelivered:
        flash(_("Utdraget är redan lämnat."), "error")
    else:
        commit()
        flash(_("Det är registrerat att utdraget är lämnat."), "success")
    return redirect(url_for(".extract_page", reference=reference))
