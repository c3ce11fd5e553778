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
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField

from app.eid import service as eid
from app.eid.messages import RFA6, error_message, user_message
from app.eid.models import EidOrder, OrderPurpose, OrderStatus
from app.eid.views import end_user_ip, qr_svg, status_json
from app.labels import problem_message
from app.registrations import documents, invitations, joint, service, signing
from app.registrations.models import DocumentKind, Errand, ErrandKind
from app.registrations.steps import REVIEW_SEGMENT, STEPS, build_form, step_by_segment
from app.web import (
    attach_problem,
    bankid_client,
    carry_out,
    collect_interval,
    commit,
    confirmation,
    confirmed,
    db,
    person_required,
    runtime,
    signed_in,
)
from forms.common import CompletionAnswerForm, EmployerForm, InvitationForm
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
        return _render_review(errand)
    current = step_by_segment(kind, segment)
    if current is None:
        abort(404)
    order = [s.name.value for s in STEPS[kind]]
    first_missing = service.next_step(errand)
    if first_missing != "review" and order.index(current.name) > order.index(first_missing):
        return redirect(step_url(errand, first_missing))
    form = build_form(current, errand)
    later = bool(request.form.get("save_and_exit"))
    if form.validate_on_submit():
        try:
            current.save(db(), signed_in(), errand, form)
        except service.FormProblem as problem:
            attach_problem(form, problem)
        else:
            commit()
            if later:
                return _saved_for_later()
            warning = service.step_warning(db(), errand, current.name)
            if warning and request.form.get("acknowledged") != warning[1]:
                return redirect(step_url(errand, current.name))  # the step says why
            return redirect(resume_url(errand))
    if later and request.method == "POST" and "csrf_token" not in form.errors:
        # "Spara och fortsätt senare": whatever is typed is kept, checked when going on.
        service.save_typed(db(), signed_in(), errand, current.name, _typed(form))
        commit()
        return _saved_for_later()
    warning = service.step_warning(db(), errand, current.name)
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
        warning=warning[0] if warning else None,
        acknowledged=warning[1] if warning else "",
        me=service.login_person(db(), signed_in()),
        signs_jointly=_signs_jointly(errand),
    )


def _signs_jointly(errand: Errand) -> bool:
    """The errand's employer signs two jointly (the register): two signatories sign."""
    employer = errand.progress.employer
    return employer is not None and joint.employer_signs_jointly(db(), employer.orgnr)


def _saved_for_later() -> ResponseReturnValue:
    flash(_("Utkastet är sparat. Du kan fortsätta senare från Mina ärenden."), "success")
    return redirect(url_for(".my_errands"))


def _typed(form: FlaskForm) -> dict[str, object]:
    """What the person typed in the step's fields, as typed."""
    return {
        field.name: request.form.getlist(field.name)
        if isinstance(field, SelectMultipleField)
        else request.form.get(field.name, "")
        for field in form
        if field.name != "csrf_token"
    }


def _render_review(
    errand: Errand, invitation_form: InvitationForm | None = None, status: int = 200
) -> ResponseReturnValue:
    if invitation_form is None:
        co = errand.data.co_signatory
        invitation_form = InvitationForm(
            data={"email": errand.data.signatory.email, "co_email": co.email if co else ""}
        )
    return render_template(
        "registrations/review.html",
        errand=errand,
        steps=STEPS[errand.kind],
        done=service.completed_steps(errand),
        action_form=FlaskForm(),
        invitation_form=invitation_form,
        declined=service.last_invitation(db(), errand),
        leaves_no_orderer=service.warns_of_no_orderer_left(db(), signed_in(), errand),
        step_url=step_url,
    ), status


@bp.get("/mina-arenden")
@person_required
def my_errands() -> ResponseReturnValue:
    search = request.args.get("sok", "")[:100]
    try:
        page = int(request.args.get("sida", "1"))
    except ValueError:
        page = 1
    result = service.own_errands(
        db(),
        signed_in(),
        search=search,
        page=page,
        after=request.args.get("efter", "")[:64],
        before=request.args.get("fore", "")[:64],
    )
    return render_template(
        "registrations/my_errands.html",
        result=result,
        errands=result.rows,
        search=search,
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
        invitation=service.last_invitation(db(), errand),
        **_joint_progress(errand),
    ), status


def _joint_progress(errand: Errand) -> dict[str, list[str]]:
    """Where two sign jointly and the errand waits for them: who has signed, who not."""
    if errand.state is not ErrandState.AWAITING_SIGNATORY or not joint.needs_two(errand.data):
        return {"joint_signed": [], "joint_awaited": []}
    awaited = joint.awaited(db(), errand)
    return {
        "joint_signed": [s.name for s in errand.data.signatories if s not in awaited],
        "joint_awaited": [s.name for s in awaited],
    }


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
    started = begin_signing(errand)
    if started is None:
        return redirect(url_for(".errand", reference=reference))
    if started is False:
        return redirect(resume_url(errand))
    return redirect(url_for(".signing_page", reference=reference))


def begin_signing(errand: Errand) -> bool | None:
    """Start the sign order for the signed-in person and keep it in this browser's
    session: True; False when BankID refused to start (its message flashed); None when
    the errand cannot be signed now."""
    binding_value, binding = eid.new_binding()
    try:
        pdf = documents.signable_form(errand, runtime().settings)
        order = signing.start(
            db(), signed_in(), bankid_client(), errand, pdf, end_user_ip(), binding
        )
    except IllegalTransition:
        flash(_("Ärendet kan inte skrivas under i sitt nuvarande läge."), "error")
        return None
    except eid.EidError as exc:
        flash(error_message(exc.code), "error")
        return False
    commit()
    session[SIGN_KEY] = {
        "order": order.id,
        "binding": binding_value,
        "reference": errand.reference,
        "same_device": request.form.get("device") == "this",
    }
    return True


def _sign_order(reference: str) -> EidOrder | None:
    state = session.get(SIGN_KEY) or {}
    if state.get("reference") != reference:
        return None
    return eid.find_order(db(), state.get("order"), state.get("binding"), OrderPurpose.SIGN)


def poll_signing(errand: Errand) -> tuple[EidOrder | None, eid.OrderState | None]:
    """Poll this browser's sign order for ``errand``; when it completes, check and seal
    (and tell the submitter if an invited signatory signed); when it fails or expires, the
    errand goes back to where it can be signed again, and BankID's message is shown."""
    order = _sign_order(errand.reference)
    if order is None or errand.state is not ErrandState.AWAITING_SIGNATURE:
        return None, None
    state = eid.poll(db(), bankid_client(), order, collect_interval())
    if state.status is OrderStatus.COMPLETE:
        try:
            invited = signing.finish(
                db(), order, errand, documents.seal_context(runtime().settings)
            )
        except signing.SignatureRejected as rejected:
            commit()
            flash(problem_message(rejected.code), "error")
            return order, state
        if invited:
            invitations.signed(db(), errand, base_url=runtime().settings.public_base_url)
        commit()
        session.pop(SIGN_KEY, None)
        if errand.state is ErrandState.AWAITING_SIGNATORY:  # the first of two who sign jointly
            flash(
                _(
                    "Du har skrivit under. Blanketten skickas in till SPV när den andra "
                    "firmatecknaren också har skrivit under."
                ),
                "success",
            )
        else:
            flash(_("Anmälan är underskriven och inskickad till SPV."), "success")
    elif state.status is OrderStatus.FAILED:
        signing.abandon(db(), signed_in(), bankid_client(), errand, None)
    commit()
    return order, state


def signing_pending_page(
    errand: Errand,
    order: EidOrder,
    state: eid.OrderState,
    *,
    status_url: str,
    cancel_url: str,
    retry_url: str,
) -> ResponseReturnValue:
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
        status_url=status_url,
        cancel_url=cancel_url,
        retry_url=retry_url,
    )


def signing_status_json(
    errand: Errand, order: EidOrder, state: eid.OrderState, done: str
) -> ResponseReturnValue:
    same_device = bool((session.get(SIGN_KEY) or {}).get("same_device"))
    finished = errand.state is not ErrandState.AWAITING_SIGNATURE
    if state.status is OrderStatus.FAILED:
        finished = False  # stay on the page: it shows BankID's message and "Försök igen"
    return status_json(order, state, done if finished else None, same_device)


def cancel_sign_order(errand: Errand) -> None:
    """The person cancels the signing: back to where it can be signed again."""
    signing.abandon(db(), signed_in(), bankid_client(), errand, _sign_order(errand.reference))
    commit()
    session.pop(SIGN_KEY, None)
    flash(str(RFA6), "info")


@bp.get("/mina-arenden/<reference>/signera")
@person_required
def signing_page(reference: str) -> ResponseReturnValue:
    errand = _own(reference)
    order, state = poll_signing(errand)
    if order is None or state is None or (state.status is OrderStatus.COMPLETE):
        return redirect(url_for(".errand", reference=reference))
    return signing_pending_page(
        errand,
        order,
        state,
        status_url=url_for(".signing_status", reference=reference),
        cancel_url=url_for(".cancel_signing", reference=reference),
        retry_url=resume_url(errand)
        if errand.state is ErrandState.DRAFT
        else url_for(".errand", reference=reference),
    )


@bp.post("/mina-arenden/<reference>/signera/status")
@person_required
def signing_status(reference: str) -> ResponseReturnValue:
    errand = _own(reference)
    order, state = poll_signing(errand)
    if order is None or state is None:
        return jsonify(status="failed", done=url_for(".errand", reference=reference)), 404
    return signing_status_json(errand, order, state, url_for(".errand", reference=reference))


@bp.post("/mina-arenden/<reference>/signera/avbryt")
@person_required
def cancel_signing(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    cancel_sign_order(errand)
    flash(_("Ärendet är kvar som utkast."), "info")
    return redirect(resume_url(errand))


@bp.post("/mina-arenden/<reference>/skicka-till-firmatecknaren")
@person_required
def send_to_signatory(reference: str) -> ResponseReturnValue:
    """The signatory is not here: email them a link to sign later in their own session."""
    loaded = _draft(reference, _own(reference).kind)
    if not isinstance(loaded, Errand):
        return loaded
    errand = loaded
    form = InvitationForm()
    if not form.validate_on_submit() or not _co_email_given(errand, form):
        return _render_review(errand, form, 400)
    done, _none = _carry_out(
        lambda: invitations.send_to_signatory(
            db(),
            signed_in(),
            errand,
            form.email.data,
            base_url=runtime().settings.public_base_url,
            co_email=form.co_email.data,
        ),
        _("Ärendet kan inte skickas till firmatecknaren i sitt nuvarande läge."),
    )
    if done:
        flash(
            _(
                "Blanketten är skickad till %(name)s för underskrift.",
                name=", ".join(s.name for s in errand.data.signatories),
            ),
            "success",
        )
    return redirect(url_for(".errand", reference=reference))


def _co_email_given(errand: Errand, form: InvitationForm) -> bool:
    """Where two sign jointly, both are emailed a link: the second one's address too."""
    if errand.data.co_signatory is not None and not form.co_email.data:
        form.co_email.errors = [_("Ange den andra firmatecknarens e-postadress.")]
        return False
    return True


@bp.post("/mina-arenden/<reference>/paminn")
@person_required
def remind_signatory(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    try:
        invitations.remind(db(), signed_in(), errand, base_url=runtime().settings.public_base_url)
    except invitations.TooSoon as soon:
        flash(
            _(
                "Firmatecknaren har nyss fått en påminnelse. Du kan påminna igen %(when)s.",
                when=format_datetime(soon.next_dt, "short"),
            ),
            "info",
        )
    except IllegalTransition:
        flash(_("Ärendet väntar inte på firmatecknarens underskrift."), "error")
    else:
        commit()
        flash(_("Firmatecknaren har fått en påminnelse med en ny länk."), "success")
    return redirect(url_for(".errand", reference=reference))


@bp.post("/mina-arenden/<reference>/ta-tillbaka")
@person_required
def recall_invitation(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    done, _none = _carry_out(
        lambda: invitations.recall(db(), signed_in(), errand),
        _("Ärendet väntar inte på firmatecknarens underskrift."),
    )
    if done:
        flash(
            _("Inbjudan är tillbakatagen. Länken till firmatecknaren gäller inte längre."),
            "success",
        )
        return redirect(resume_url(errand))
    return redirect(url_for(".errand", reference=reference))


@bp.post("/mina-arenden/<reference>/aterkalla")
@person_required
def withdraw(reference: str) -> ResponseReturnValue:
    errand = _post_action(reference)
    if not confirmed():
        return confirmation(
            _("Återkalla ärendet %(ref)s?", ref=errand.reference),
            _(
                "Ett återkallat ärende går inte att öppna igen. Vill du ändra något senare "
                "skickar du in en ny blankett."
            ),
            confirm_label=_("Ja, återkalla ärendet"),
            cancel_url=url_for(".errand", reference=reference),
            details=[(_("Ärendet gäller"), errand.subject_name)] if errand.subject_name else [],
        )
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
    pdf = documents.blank_form(db(), kind, _language(), runtime().settings.qr_key)
    commit()
    name = "anmalan" if kind is ErrandKind.REGISTRATION else "borttag"
    return _pdf(pdf, f"{name}-behorig-bestallare.pdf")
