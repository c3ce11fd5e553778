"""Handläggning: the caseworker queue, the errand page and decisions."""

from __future__ import annotations

import enum
import io
from collections.abc import Callable
from typing import TypeVar

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from app.audit.service import actor_names, history
from app.casework import service
from app.labels import finding_label, refusal_message
from app.privacy.access_log import employer_contacts_named, named_in
from app.privacy.models import ViewKind
from app.registers import changes
from app.registrations.models import Channel, Errand, ErrandKind, RejectionReason
from app.web import (
    carry_out,
    caseworker_required,
    commit,
    confirmation,
    confirmed,
    db,
    record_view,
    runtime,
    signed_in,
)
from forms.casework import (
    REJECTION_REASON_NAMES_L,
    ApprovalForm,
    CommentForm,
    CompletionRequestForm,
    DecisionForm,
    ReassignForm,
    RejectionForm,
    approval_form,
)
from workflows.states import ErrandState, IllegalTransition

bp = Blueprint("casework", __name__, template_folder="templates")


E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


def _enum_arg(cls: type[E], name: str) -> E | None:
    try:
        return cls(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/handlaggning")
@caseworker_required
def queue() -> ResponseReturnValue:
    agent = signed_in()
    try:
        page = int(request.args.get("sida", "1"))
    except ValueError:
        page = 1
    f = service.QueueFilter(
        list=_enum_arg(service.QueueList, "lista") or service.QueueList.UNASSIGNED,
        kind=_enum_arg(ErrandKind, "typ"),
        channel=_enum_arg(Channel, "kanal"),
        employer=request.args.get("arbetsgivare", "")[:100],
        checks=request.args.get("kontroller", ""),
        sort=request.args.get("ordning", "due"),
        page=page,
        after=request.args.get("efter", "")[:64],
        before=request.args.get("fore", "")[:64],
    )
    counts = service.counts(db(), agent)
    return render_template(
        "casework/queue.html",
        result=service.queue(db(), agent, f, counts),
        f=f,
        counts=counts,
        lists=service.QueueList,
        take_form=DecisionForm(),
        demo_company_register=runtime().settings.demo_company_register,
    )


@bp.post("/handlaggning/ta-nasta")
@caseworker_required
def take_next() -> ResponseReturnValue:
    """Claim the unassigned errand that is due first and open it."""
    if not DecisionForm().validate_on_submit():
        abort(400)
    taken = service.take_next(db(), signed_in())
    if taken is None:
        flash(_("Det finns inga otilldelade ärenden att ta."), "info")
        return redirect(url_for(".queue"))
    commit()
    flash(_("Ärendet är ditt."), "success")
    return redirect(url_for(".errand", reference=taken.reference))


def _errand(reference: str) -> Errand:
    try:
        return service.errand(db(), reference)
    except service.NotFound:
        abort(404)


def _approval_form(errand: Errand) -> ApprovalForm:
    return approval_form(
        {f.value: finding_label(f) for f in service.findings_to_acknowledge(errand)}
    )


def _render_errand(errand: Errand, status: int = 200, **forms: object) -> ResponseReturnValue:
    reassign = ReassignForm()
    reassign.staff_id.choices = [SelectChoice(s.id, s.name) for s in service.caseworkers(db())]
    context = {
        "errand": errand,
        "decision_form": DecisionForm(),
        "approval_form": _approval_form(errand),
        "blocking": service.blocking_findings(errand),
        "rejection_form": RejectionForm(),
        "completion_form": CompletionRequestForm(),
        "comment_form": CommentForm(),
        "reassign_form": reassign,
        "State": ErrandState,
        "Kind": ErrandKind,
        "review_flags": changes.flags_of_errand(db(), errand.id)
        if errand.kind is ErrandKind.SIGNATORY_CHANGE
        else [],
        "comments": service.comments(db(), errand),
        "history": (events := history(db(), errand)),
        "actor_names": actor_names(db(), events),
        "second_approval": service.needs_second_approval(db(), errand),
        "form_document": service.form_document(errand),
    }
    context.update(forms)
    page = render_template("casework/errand.html", **context)
    record_view(named_in(errand), ViewKind.ERRAND, errand.reference)
    return page, status


@bp.get("/handlaggning/<reference>")
@caseworker_required
def errand(reference: str) -> ResponseReturnValue:
    return _render_errand(_errand(reference))


def _back(reference: str) -> ResponseReturnValue:
    return redirect(url_for(".errand", reference=reference))


def _checked_post(reference: str) -> Errand:
    errand = _errand(reference)
    if not DecisionForm().validate_on_submit():
        abort(400)
    return errand


TAKE_IT_FIRST = _l("Ta ärendet innan du beslutar.")


def _carry_out(
    act: Callable[[], T],
    *,
    not_yours: str = TAKE_IT_FIRST,
    refused: Callable[[str], str] = refusal_message,
) -> tuple[bool, T | None]:
    """A caseworker's action: done and committed, or refused with a message."""
    return carry_out(
        act,
        {
            service.NotYourErrand: lambda _exc: str(not_yours),
            IllegalTransition: lambda exc: refused(exc.code),
        },
    )


@bp.post("/handlaggning/<reference>/ta")
@caseworker_required
def claim(reference: str) -> ResponseReturnValue:
    errand = _checked_post(reference)
    if service.claim(db(), signed_in(), errand):
        commit()
        flash(_("Ärendet är ditt."), "success")
    else:
        flash(_("Ärendet har redan tagits av någon annan."), "error")
    return _back(reference)


@bp.post("/handlaggning/<reference>/slapp")
@caseworker_required
def release(reference: str) -> ResponseReturnValue:
    errand = _checked_post(reference)
    done, _none = _carry_out(
        lambda: service.release(db(), signed_in(), errand),
        not_yours=_("Ärendet är inte ditt."),
    )
    if done:
        flash(_("Ärendet är tillbaka i kön."), "success")
    return _back(reference)


@bp.post("/handlaggning/<reference>/tilldela")
@caseworker_required
def reassign(reference: str) -> ResponseReturnValue:
    errand = _errand(reference)
    form = ReassignForm()
    form.staff_id.choices = [SelectChoice(s.id, s.name) for s in service.caseworkers(db())]
    if not form.validate_on_submit():
        abort(400)
    try:
        service.reassign(db(), signed_in(), errand, form.staff_id.data)
    except (service.NotFound, IllegalTransition):
        flash(_("Ärendet kunde inte ges till den handläggaren."), "error")
    else:
        commit()
        flash(_("Ärendet har fått en ny handläggare."), "success")
    return _back(reference)


@bp.post("/handlaggning/<reference>/anteckning")
@caseworker_required
def add_comment(reference: str) -> ResponseReturnValue:
    errand = _errand(reference)
    form = CommentForm()
    if not form.validate_on_submit():
        return _render_errand(errand, 400, comment_form=form)
    service.comment(db(), signed_in(), errand, form.body.data)
    commit()
    return _back(reference)


@bp.post("/handlaggning/<reference>/godkann")
@caseworker_required
def approve(reference: str) -> ResponseReturnValue:
    errand = _errand(reference)
    form = _approval_form(errand)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _render_errand(errand, 400, approval_form=form)
    done, decided = _carry_out(
        lambda: service.approve_errand(db(), signed_in(), errand, form.notes()),
        refused=lambda code: _(
            "Ärendet kunde inte godkännas: %(reason)s", reason=refusal_message(code)
        ),
    )
    if done:
        if decided:
            flash(_("Ärendet är godkänt. Behörigheten läggs in."), "success")
        else:
            flash(
                _(
                    "Ditt godkännande är registrerat. Ärendet lämnar arbetsgivaren utan "
                    "behörig beställare och behöver godkännas av ytterligare en handläggare."
                ),
                "info",
            )
    return _back(reference)


@bp.post("/handlaggning/<reference>/avsla")
@caseworker_required
def reject(reference: str) -> ResponseReturnValue:
    errand = _errand(reference)
    form = RejectionForm()
    if not form.validate_on_submit():
        return _render_errand(errand, 400, rejection_form=form)
    reason = RejectionReason(form.reason_code.data)
    if not confirmed():
        return confirmation(
            _("Avslå ärendet %(ref)s?", ref=errand.reference),
            _(
                "Ett avslag går inte att ångra. Den som skickade in ärendet får beslutet "
                "och din förklaring med e-post."
            ),
            confirm_label=_("Ja, avslå ärendet"),
            cancel_url=url_for(".errand", reference=reference),
            details=[
                (_("Skäl"), str(REJECTION_REASON_NAMES_L[reason])),
                (_("Förklaring"), form.reason.data),
            ],
            carried={"reason_code": reason.value, "reason": form.reason.data},
        )
    done, _none = _carry_out(
        lambda: service.reject_errand(
            db(),
            signed_in(),
            errand,
            reason,
            form.reason.data,
            base_url=runtime().settings.public_base_url,
        ),
        refused=lambda code: _(
            "Ärendet kunde inte avslås: %(reason)s", reason=refusal_message(code)
        ),
    )
    if done:
        flash(_("Ärendet är avslaget."), "success")
    return _back(reference)


@bp.post("/handlaggning/<reference>/komplettering")
@caseworker_required
def request_completion(reference: str) -> ResponseReturnValue:
    errand = _errand(reference)
    form = CompletionRequestForm()
    if not form.validate_on_submit():
        return _render_errand(errand, 400, completion_form=form)
    done, _none = _carry_out(
        lambda: service.request_completion(
            db(),
            signed_in(),
            errand,
            form.message.data,
            base_url=runtime().settings.public_base_url,
        ),
        not_yours=_("Ta ärendet innan du begär komplettering."),
    )
    if done:
        flash(
            _("Kompletteringen är begärd och den som skickade in ärendet har fått e-post."),
            "success",
        )
    return _back(reference)


@bp.get("/handlaggning/<reference>/handlingar/<int:document_id>")
@caseworker_required
def document(reference: str, document_id: int) -> ResponseReturnValue:
    """One of the errand's archived documents: form, evidence, scan, receipt or decision."""
    errand = _errand(reference)
    doc = service.errand_document(db(), errand, document_id)
    if doc is None:
        abort(404)
    record_view(named_in(errand), ViewKind.ERRAND_DOCUMENT, f"{reference}/{document_id}")
    response = send_file(
        io.BytesIO(doc.content),
        mimetype=doc.media_type,
        download_name=doc.filename,
        as_attachment=doc.media_type != "application/pdf",  # evidence files are saved
    )
    # The errand page shows the form inline, in a frame of its own origin.
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'self'"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.post("/handlaggning/<reference>/forsok-igen")
@caseworker_required
def retry(reference: str) -> ResponseReturnValue:
    errand = _checked_post(reference)
    done, _none = _carry_out(lambda: service.retry_failed(db(), signed_in(), errand))
    if done:
        flash(_("Steget körs igen."), "success")
    return _back(reference)


@bp.get("/handlaggning/arbetsgivare")
@caseworker_required
def employer_lookup() -> ResponseReturnValue:
    query = request.args.get("q", "")[:100]
    employer, contacts = service.employer_contacts(db(), query) if query else (None, [])
    matches = service.find_employers(db(), query) if query and employer is None else []
    if employer is not None:
        record_view(
            employer_contacts_named(db(), employer.id), ViewKind.EMPLOYER_LOOKUP, str(employer.id)
        )
    return render_template(
        "casework/employer_lookup.html",
        query=query,
        employer=employer,
        contacts=contacts,
        matches=matches,
    )
