"""The submitter's pages: both forms step by step, Mina ärenden, the printable PDFs."""

from __future__ import annotations

import io
from collections.abc import Callable
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
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from app.documents.render import render_blank_form
from app.eid import service as eid
from app.eid.messages import error_message, user_message
from app.eid.models import EidOrder, OrderPurpose, OrderStatus
from app.eid.views import end_user_ip, qr_svg, status_json
from app.labels import problem_message
from app.registrations import documents, service, signing
from app.registrations.models import DocumentKind, Errand, ErrandKind
from app.registrations.steps import REVIEW_SEGMENT, STEPS, build_form, step_by_segment
from app.web import (
    attach_problem,
    bankid_client,
    carry_out,
    collect_interval,
    commit,
    db,
    person_required,
    runtime,
    signed_in,
)
from forms.common import CompletionAnswerForm, EmployerForm
from workflows.states import ErrandState, IllegalTransition

bp = Blueprint("registrations", __name__, template_folder="templates")
T = TypeVar("T")

FORM_PATHS = {
    ErrandKind.REGISTRATION: "/anmalan-behorig-bestallare",
    ErrandKind.REMOVAL: "/ta-bort-behorig-bestallare",
}
KIND_OF_PATH = {
    "anmalan-behorig-bestallare": ErrandKind.REGISTRATION,
    "ta-bort-behorig-bestallare": ErrandKind.REMOVAL,
}


def _language() -> str:
    return str(get_locale() or "sv")


def step_url(errand: Errand, name: str) -> str:
    """The URL of a step (by its service name) or of ``review``."""
    segment = REVIEW_SEGMENT
    for step in STEPS[errand.kind]:
        if step.name == name:
            segment = step.segment
    return f"{FORM_PATHS[errand.kind]}/{errand.reference}/{segment}"


@bp.app_template_global()
def resume_url(errand: Errand) -> str:
    """Where a draft goes on (also for the to-do page's templates)."""
    return step_url(errand, service.next_step(errand))


@bp.route(
    "/anmalan-behorig-bestallare",
    methods=["GET", "POST"],
    defaults={"path": "anmalan-behorig-bestallare"},
)
@bp.route(
    "/ta-bort-behorig-bestallare",
    methods=["GET", "POST"],
    defaults={"path": "ta-bort-behorig-bestallare"},
)
@person_required
def start(path: str) -> ResponseReturnValue:
    """The first step, employer: creates the draft."""
    kind = KIND_OF_PATH[path]
    form = EmployerForm()
    if form.validate_on_submit():
        try:
            errand = service.start_draft(db(), signed_in(), kind, form.orgnr.data, _language())
        except service.FormProblem as problem:
            attach_problem(form, problem)
        else:
            commit()
            return redirect(resume_url(errand))
    return render_template(
        "registrations/step.html",
        form=form,
        kind=kind,
        errand=None,
        steps=STEPS[kind],
        current="employer",
        done=[],
    )


def _own(reference: str) -> Errand:
    try:
        return service.own_errand(db(), signed_in(), reference)
    except service.NotYours:
        abort(404)


def _draft(reference: str, kind: ErrandKind) -> Errand | ResponseReturnValue:
    errand = _own(reference)
    if errand.kind is not kind:
        abort(404)
    if errand.state is not ErrandState.DRAFT or service.is_lapsed(errand):
        flash(_("Ärendet kan inte längre ändras."), "info")
        return redirect(url_for(".errand", reference=reference))
    return errand


@bp.route(
    "/anmalan-behorig-bestallare/<reference>/<segment>",
    methods=["GET", "POST"],
    defaults={"path": "anmalan-behorig-bestallare"},
)
@bp.route(
    "/ta-bort-behorig-bestallare/<reference>/<segment>",
    methods=["GET", "POST"],
    defaults={"path": "ta-bort-behorig-bestallare"},
)
@person_required
def step(path: str, reference: str, segment: str) -> ResponseReturnValue:
    kind = KIND_OF_PATH[path]
    loaded = _draft(reference, kind)
    if not isinstance(loaded, Errand):
        return loaded
    errand = loaded
    done = service.completed_steps(errand)
    if segment == REVIEW_SEGMENT:
        if service.next_step(errand) != "review":
            return redirect(resume_url(errand))
        return render_template(
            "registrations/review.html",
            errand=errand,
            steps=STEPS[kind],
            done=done,
            action_form=FlaskForm(),
            leaves_no_orderer=service.warns_of_no_orderer_left(db(), signed_in(), errand),
            step_url=step_url,
        )
    current = step_by_segment(kind, segment)
    if current is None:
        abort(404)
    order = [s.name.value for s in STEPS[kind]]
    first_missing = service.next_step(errand)
    if first_missing != "review" and order.index(current.name) > order.index(first_missing):
        return redirect(step_url(errand, first_missing))
    form = build_form(current, errand)
    if form.validate_on_submit():
        try:
            current.save(db(), signed_in(), errand, form)
        except service.FormProblem as problem:
            attach_problem(form, problem)
        else:
            commit()
            if request.form.get("save_and_exit"):
                flash(
                    _("Utkastet är sparat. Du kan fortsätta senare från Mina ärenden."), "success"
                )
                return redirect(url_for(".my_errands"))
            return redirect(resume_url(errand))
    return render_template(
        "registrations/step.html",
        form=form,
        kind=kind,
        errand=errand,
        steps=STEPS[kind],
        current=current.name,
        done=done,
        step_url=step_url,
        leaves_no_orderer=service.warns_of_no_orderer_left(db(), signed_in(), errand),
    )


@bp.get("/mina-arenden")
@person_required
def my_errands() -> ResponseReturnValue:
    errands = service.own_errands(db(), signed_in())
    return render_template(
        "registrations/my_errands.html",
        errands=errands,
        resume_url=resume_url,
        is_lapsed=service.is_lapsed,
    )


def _render_errand(
    errand: Errand, answer_form: CompletionAnswerForm | None = None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "registrations/errand.html",
        errand=errand,
        action_form=FlaskForm(),
        answer_form=answer_form or CompletionAnswerForm(),
        open_request=service.open_completion_request(errand),
        State=ErrandState,
        resume_url=resume_url,
        downloads={name: service.document(errand, kind) for name, kind in DOWNLOADS.items()},
        is_lapsed=service.is_lapsed(errand),
    ), status


@bp.get("/mina-arenden/<reference>")
@person_required
def errand(reference: str) -> ResponseReturnValue:
    return _render_errand(_own(reference))


@bp.post("/mina-arenden/<reference>/komplettera")
@person_required
def answer_completion(reference: str) -> ResponseReturnValue:
    """Answer SPV's request for more; the errand goes back to its caseworker."""
    errand = _own(reference)
    form = CompletionAnswerForm()
    if not form.validate_on_submit():
        return _render_errand(errand, form, 400)
    done, _none = _carry_out(
        lambda: service.answer_completion(db(), signed_in(), errand, form.answer.data),
        _("Ärendet väntar inte på någon komplettering."),
    )
    if done:
        flash(_("Tack! Din komplettering är skickad till handläggaren."), "success")
    return redirect(url_for(".errand", reference=reference))


def _carry_out(act: Callable[[], T], refused: str) -> tuple[bool, T | None]:
    """The submitter's action: done and committed, or refused in the errand's state."""
    return carry_out(act, {IllegalTransition: lambda _exc: refused})


def _post_action(reference: str) -> Errand:
    errand = _own(reference)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return errand


@bp.post("/mina-arenden/<reference>/skriv-ut")
@person_required
def print_for_post(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    pdf = documents.printable_form(errand, runtime().settings, _language())
    done, _none = _carry_out(
        lambda: service.print_for_post(db(), signed_in(), errand, pdf),
        _("Ärendet kan inte skrivas ut i sitt nuvarande läge."),
    )
    if done:
        flash(
            _("Skriv ut blanketten, låt firmatecknaren skriva under och skicka den till SPV."),
            "success",
        )
    return redirect(url_for(".errand", reference=reference))


SIGN_KEY = "eid_sign"


@bp.post("/mina-arenden/<reference>/signera")
@person_required
def start_signing(reference: str) -> ResponseReturnValue:
    """Sign with BankID: the signatory named in the form signs the exact PDF."""
    errand = _post_action(reference)
    binding_value, binding = eid.new_binding()
    try:
        pdf = documents.signable_form(errand, runtime().settings)
        order = signing.start(
            db(), signed_in(), bankid_client(), errand, pdf, end_user_ip(), binding
        )
    except IllegalTransition:
        flash(_("Ärendet kan inte skrivas under i sitt nuvarande läge."), "error")
        return redirect(url_for(".errand", reference=reference))
    except eid.EidError as exc:
        flash(error_message(exc.code), "error")
        return redirect(resume_url(errand))
    commit()
    session[SIGN_KEY] = {
        "order": order.id,
        "binding": binding_value,
        "reference": reference,
        "same_device": request.form.get("device") == "this",
    }
    return redirect(url_for(".signing_page", reference=reference))


def _sign_order(reference: str) -> EidOrder | None:
    state = session.get(SIGN_KEY) or {}
    if state.get("reference") != reference:
        return None
    return eid.find_order(db(), state.get("order"), state.get("binding"), OrderPurpose.SIGN)


def _poll_signing(reference: str) -> tuple[Errand, EidOrder | None, eid.OrderState | None]:
    """Poll the sign order; finish (seal) or fall back to the draft when it ends."""
    errand = _own(reference)
    order = _sign_order(reference)
    if order is None or errand.state is not ErrandState.AWAITING_SIGNATURE:
        return errand, None, None
    state = eid.poll(db(), bankid_client(), order, collect_interval())
    if state.status is OrderStatus.COMPLETE:
        try:
            signing.finish(db(), order, errand, documents.seal_context(runtime().settings))
        except signing.SignatureRejected as rejected:
            commit()
            flash(problem_message(rejected.code), "error")
            return errand, order, state
        commit()
        session.pop(SIGN_KEY, None)
        flash(_("Anmälan är underskriven och inskickad till SPV."), "success")
    elif state.status is OrderStatus.FAILED:
        signing.abandon(db(), signed_in(), bankid_client(), errand, None)
    commit()
    return errand, order, state


def _signing_done_url(errand: Errand) -> str | None:
    if errand.state is ErrandState.AWAITING_SIGNATURE:
        return None
    return url_for(".errand", reference=errand.reference)


@bp.get("/mina-arenden/<reference>/signera")
@person_required
def signing_page(reference: str) -> ResponseReturnValue:
    errand, order, state = _poll_signing(reference)
    if order is None or state is None or (state.status is OrderStatus.COMPLETE):
        return redirect(url_for(".errand", reference=reference))
    same_device = bool((session.get(SIGN_KEY) or {}).get("same_device"))
    return render_template(
        "eid/pending.html",
        heading=_("Skriv under med BankID"),
        state=state,
        order=order,
        same_device=same_device,
        form=FlaskForm(),
        message=user_message(state.status, state.hint_code, same_device),
        qr_svg=qr_svg(state.qr_content) if state.qr_content else None,
        autostart_url=f"bankid:///?autostarttoken={order.auto_start_token}&redirect=null",
        simulator=runtime().settings.bankid_simulator,
        status_url=url_for(".signing_status", reference=reference),
        cancel_url=url_for(".cancel_signing", reference=reference),
        retry_url=resume_url(errand)
        if errand.state is ErrandState.DRAFT
        else url_for(".errand", reference=reference),
    )


@bp.post("/mina-arenden/<reference>/signera/status")
@person_required
def signing_status(reference: str) -> ResponseReturnValue:
    errand, order, state = _poll_signing(reference)
    if order is None or state is None:
        return jsonify(status="failed", done=url_for(".errand", reference=reference)), 404
    same_device = bool((session.get(SIGN_KEY) or {}).get("same_device"))
    return status_json(order, state, _signing_done_url(errand), same_device)


@bp.post("/mina-arenden/<reference>/signera/avbryt")
@person_required
def cancel_signing(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    signing.abandon(db(), signed_in(), bankid_client(), errand, _sign_order(reference))
    commit()
    session.pop(SIGN_KEY, None)
    flash(_("Underskriften är avbruten. Ärendet är kvar som utkast."), "info")
    return redirect(resume_url(errand))


@bp.post("/mina-arenden/<reference>/aterkalla")
@person_required
def withdraw(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    done, _none = _carry_out(
        lambda: service.withdraw(db(), signed_in(), errand),
        _("Ärendet kan inte återkallas i sitt nuvarande läge."),
    )
    if done:
        flash(_("Ärendet är återkallat."), "success")
    return redirect(url_for(".errand", reference=reference))


def _pdf(content: bytes, filename: str) -> Response:
    return send_file(io.BytesIO(content), mimetype="application/pdf", download_name=filename)


DOWNLOADS = {
    "blankett": DocumentKind.PRINTED,
    "underskriven": DocumentKind.SIGNED,
    "kvittens": DocumentKind.RECEIPT,
    "beslut": DocumentKind.DECISION,
}


@bp.get("/mina-arenden/<reference>/<name>.pdf")
@person_required
def document_pdf(reference: str, name: str) -> ResponseReturnValue:
    """The printed form, the signed and sealed form, the receipt or the decision letter."""
    kind = DOWNLOADS.get(name)
    doc = service.document(_own(reference), kind) if kind else None
    if doc is None:
        abort(404)
    return _pdf(doc.content, doc.filename)


@bp.get("/blanketter/anmalan.pdf", defaults={"kind": ErrandKind.REGISTRATION})
@bp.get("/blanketter/borttag.pdf", defaults={"kind": ErrandKind.REMOVAL})
def blank_form(kind: ErrandKind) -> ResponseReturnValue:
    """For people who cannot use the web form: no login needed."""
    pdf = render_blank_form(kind, lang=_language(), key=runtime().settings.qr_key)
    name = "anmalan" if kind is ErrandKind.REGISTRATION else "borttag"
    return _pdf(pdf, f"{name}-behorig-bestallare.pdf")
