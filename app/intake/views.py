"""Skanning: the clerk uploads scanned batches, follows their reading, works the manual
queue and confirms the handwritten signature of each matched paper form."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from app.documents.pki import seal_material
from app.documents.qr import FormKind
from app.intake import clerk_actions, queries, reading
from app.intake.models import BatchSource, PaperForm, ScanBatch, ScanPage
from app.labels import intake_error_message
from app.privacy import access_log
from app.privacy.access_log import named_in, typed_in_personnummers
from app.privacy.models import ViewKind
from app.registrations import documents
from app.registrations.data import RegistrationData, RemovalData
from app.registrations.service import FormProblem
from app.web import (
    attach_problem,
    carry_out,
    commit,
    db,
    intake_clerk_required,
    person_key,
    record_view,
    runtime,
    signed_in,
)
from forms.intake import (
    ConfirmForm,
    DiscardForm,
    MatchForm,
    PaperRegistrationForm,
    PaperRemovalForm,
    SetAsideForm,
    UploadForm,
)

bp = Blueprint("intake", __name__, template_folder="templates")


ZOOM_LEVELS = (1, 2, 3)
"""How much larger than its preview the signature page can be shown."""

M = TypeVar("M", ScanBatch, ScanPage, PaperForm)
T = TypeVar("T")


def _carry_out(act: Callable[[], T]) -> tuple[bool, T | None]:
    """A clerk's action: done and committed, or refused with the reason."""
    return carry_out(act, {clerk_actions.IntakeError: lambda exc: intake_error_message(exc.code)})


def _get(model: type[M], id_: int) -> M:
    row = db().get(model, id_)
    if row is None:
        abort(404)
    return row


@bp.route("/skanning", methods=["GET", "POST"])
@intake_clerk_required
def start() -> ResponseReturnValue:
    form = UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        received = reading.receive_file(
            db(), signed_in(), upload.read(), upload.filename or "scan", BatchSource.UPLOAD
        )
        commit()
        batch = received.batch
        if not received.is_new:
            flash(_("Filen är redan inläst. Ingenting har ändrats."), "info")
        elif batch.error_code:
            flash(intake_error_message(batch.error_code), "error")
        else:
            flash(_("Filen är mottagen och läses in sida för sida."), "success")
        return redirect(url_for(".batch", batch_id=batch.id))
    return render_template(
        "intake/start.html",
        form=form,
        batches=(batches := queries.recent_batches(db())),
        awaiting_check=queries.batches_awaiting_check(db(), [b.id for b in batches]),
        counts=queries.queue_counts(db()),
        to_confirm=queries.forms_to_confirm(db()),
        demo_scanner=runtime().settings.demo_scanner,
    ), 400 if form.errors else 200


@bp.get("/skanning/bunt/<int:batch_id>")
@intake_clerk_required
def batch(batch_id: int) -> ResponseReturnValue:
    return render_template(
        "intake/batch.html",
        batch=_get(ScanBatch, batch_id),
        awaiting_check=queries.batches_awaiting_check(db(), [batch_id]),
    )


@bp.get("/skanning/bunt/<int:batch_id>/status")
@intake_clerk_required
def batch_status(batch_id: int) -> ResponseReturnValue:
    """Progress for the batch page's script: pages read of all, and whether it is done."""
    row = _get(ScanBatch, batch_id)
    return jsonify(state=row.state.value, pages_read=row.pages_read, page_count=row.page_count)


@bp.get("/skanning/sida/<int:page_id>.jpg")
@intake_clerk_required
def page_image(page_id: int) -> ResponseReturnValue:
    page = _get(ScanPage, page_id)
    if not page.preview:
        abort(404)  # a page that could not be drawn
    return Response(page.preview, mimetype="image/jpeg")


def _record_pages_seen(pages: Iterable[ScanPage]) -> None:
    """The scans shown are the data of the people their errands name: one view per errand
    (a page matched to no errand names nobody known yet); committed."""
    errands = {page.errand.id: page.errand for page in pages if page.errand is not None}
    for errand in errands.values():
        access_log.record_view(
            db(), person_key(), signed_in(), named_in(errand), ViewKind.SCANNED_PAGES,
            errand.reference,
        )  # fmt: skip
    commit()


@bp.get("/skanning/manuell")
@intake_clerk_required
def manual_queue() -> ResponseReturnValue:
    pages, set_aside = queries.manual_queue(db()), queries.set_aside(db())
    page = render_template(
        "intake/manual.html",
        pages=pages,
        incomplete=queries.incomplete_forms(db()),
        set_aside=set_aside,
        match_form=MatchForm(),
        set_aside_form=SetAsideForm(),
        action_form=FlaskForm(),
    )
    _record_pages_seen([*pages, *set_aside])
    return page


@bp.post("/skanning/sida/<int:page_id>/koppla")
@intake_clerk_required
def match(page_id: int) -> ResponseReturnValue:
    page = _get(ScanPage, page_id)
    form = MatchForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for(".manual_queue"))
    done, paper_form = _carry_out(
        lambda: clerk_actions.match_page(
            db(), signed_in(), page, form.reference.data, form.form_page.data
        )
    )
    if not done:
        return redirect(url_for(".manual_queue"))
    if paper_form is not None:
        flash(_("Blanketten är komplett. Kontrollera underskriften."), "success")
        return redirect(url_for(".confirm", form_id=paper_form.id))
    flash(_("Sidan är kopplad till ärendet. Blanketten väntar på sina övriga sidor."), "success")
    return redirect(url_for(".manual_queue"))


def _typed_in(form: PaperRegistrationForm | PaperRemovalForm) -> RegistrationData | RemovalData:
    return form.removal() if isinstance(form, PaperRemovalForm) else form.registration()


@bp.route("/skanning/sida/<int:page_id>/registrera", methods=["GET", "POST"])
@intake_clerk_required
def register(page_id: int) -> ResponseReturnValue:
    """Type in a blank form filled in by hand, on the signatory's behalf: a registration,
    or a removal when the page's code says so."""
    page = _get(ScanPage, page_id)
    removal = page.form_kind == FormKind.REMOVAL.value
    form = PaperRemovalForm() if removal else PaperRegistrationForm()
    if form.validate_on_submit():
        settings = runtime().settings
        try:
            errand = clerk_actions.register_paper_form(
                db(),
                signed_in(),
                page,
                _typed_in(form),
                lambda s: documents.printable_form(s, settings, s.language),
                form.form_page.data,
            )
        except FormProblem as problem:
            db().rollback()
            attach_problem(form, problem)
        except clerk_actions.IntakeError as exc:
            flash(intake_error_message(exc.code), "error")
            return redirect(url_for(".manual_queue"))
        else:
            access_log.record_view(
                db(), person_key(), signed_in(), named_in(errand), ViewKind.PAPER_FORM_TYPING,
                errand.reference,
            )  # fmt: skip
            commit()
            flash(
                _(
                    "Blanketten är registrerad som ärende %(ref)s. Koppla blankettens övriga "
                    "sidor till den referensen.",
                    ref=errand.reference,
                ),
                "success",
            )
            return redirect(url_for(".manual_queue"))
    shown = render_template("intake/register.html", page=page, form=form, removal=removal)
    # The scan, and the people typed in so far (shown again in the fields).
    seen = named_in(page.errand) if page.errand else typed_in_personnummers(form.data.values())
    if seen:
        record_view(seen, ViewKind.PAPER_FORM_TYPING, page.errand.reference if page.errand else "")
    return shown, 400 if form.errors else 200


@bp.post("/skanning/arende/<int:errand_id>/lagg-tillbaka")
@intake_clerk_required
def return_pages(errand_id: int) -> ResponseReturnValue:
    if not FlaskForm().validate_on_submit():  # the CSRF token only
        abort(400)
    count = clerk_actions.return_waiting_pages(db(), signed_in(), errand_id)
    commit()
    flash(_("%(count)s sidor är tillbaka i den manuella kön.", count=count), "success")
    return redirect(url_for(".manual_queue"))


@bp.post("/skanning/blankett/<int:form_id>/ta-isar")
@intake_clerk_required
def take_apart(form_id: int) -> ResponseReturnValue:
    paper_form = _get(PaperForm, form_id)
    form = DiscardForm()
    if not form.validate_on_submit():
        flash(_("Skriv varför sidorna inte hör ihop."), "error")
        return redirect(url_for(".confirm", form_id=form_id))
    done, _none = _carry_out(
        lambda: clerk_actions.take_apart(db(), signed_in(), paper_form, form.reason.data)
    )
    if not done:
        return redirect(url_for(".confirm", form_id=form_id))
    flash(_("Sidorna är tillbaka i den manuella kön."), "success")
    return redirect(url_for(".manual_queue"))


@bp.post("/skanning/sida/<int:page_id>/lagg-undan")
@intake_clerk_required
def discard(page_id: int) -> ResponseReturnValue:
    page = _get(ScanPage, page_id)
    form = SetAsideForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for(".manual_queue") + f"#page-{page_id}")
    done, _none = _carry_out(
        lambda: clerk_actions.discard_page(db(), signed_in(), page, form.chosen_reason())
    )
    if done:
        flash(_("Sidan är lagd åt sidan. Den finns kvar i bunten."), "success")
    return redirect(url_for(".manual_queue"))


@bp.post("/skanning/sida/<int:page_id>/ta-tillbaka")
@intake_clerk_required
def restore(page_id: int) -> ResponseReturnValue:
    page = _get(ScanPage, page_id)
    if not FlaskForm().validate_on_submit():  # the CSRF token only
        abort(400)
    done, _none = _carry_out(lambda: clerk_actions.restore_page(db(), signed_in(), page))
    if done:
        flash(_("Sidan är tillbaka i den manuella kön."), "success")
    return redirect(url_for(".manual_queue") + f"#page-{page_id}")


def _joint_answered(form: ConfirmForm, two: bool) -> bool:
    """Where two sign jointly, the clerk says whether the second signatory signed too."""
    if two and not form.co_signature_present.data:
        form.co_signature_present.errors = [
            _("Svara på om den andra firmatecknaren har skrivit under.")
        ]
        return False
    return True


@bp.route("/skanning/blankett/<int:form_id>", methods=["GET", "POST"])
@intake_clerk_required
def confirm(form_id: int) -> ResponseReturnValue:
    paper_form = _get(PaperForm, form_id)
    form = ConfirmForm()
    two = paper_form.errand.data.co_signatory is not None  # two sign jointly: both checked
    if form.validate_on_submit() and _joint_answered(form, two):
        done, errand = _carry_out(
            lambda: clerk_actions.confirm_paper_form(
                db(),
                signed_in(),
                paper_form,
                signature_present=form.signature_present.data == "yes",
                signer_is_named=form.signer_is_named.data == "yes",
                material=seal_material(runtime().settings),
                note=form.note.data or "",
                co_signature_present=form.co_signature_present.data == "yes" if two else None,
            )
        )
        if done and errand is not None:
            flash(
                _(
                    "Ärende %(ref)s är mottaget och går vidare till handläggning.",
                    ref=errand.reference,
                ),
                "success",
            )
            following = queries.next_form_to_confirm(db())
            if following is not None:  # "Nästa blankett": straight on to the next check
                return redirect(url_for(".confirm", form_id=following.id))
            return redirect(url_for(".start"))
    zoom = request.args.get("zoom", type=int)
    page = render_template(
        "intake/confirm.html",
        paper_form=paper_form,
        form=form,
        apart_form=DiscardForm(),
        zoom=zoom if zoom in ZOOM_LEVELS else 1,
        zoom_levels=ZOOM_LEVELS,
        signature_page=max(paper_form.pages, key=lambda p: p.form_page or 0, default=None),
        next_form=queries.next_form_to_confirm(db(), after=paper_form),
    )
    record_view(named_in(paper_form.errand), ViewKind.PAPER_FORM, paper_form.errand.reference)
    return page, 400 if form.errors else 200
