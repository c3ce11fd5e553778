"""Login and logout with BankID: QR code on another device, or the app on this device."""

from __future__ import annotations

from typing import Any

import segno
from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from app.core.agents import AgentKind
from app.eid import service
from app.eid.login import resolve_login
from app.eid.messages import error_message, user_message
from app.eid.models import EidOrder, OrderPurpose, OrderStatus
from app.staff.models import StaffMember
from app.web import (
    bankid_client,
    collect_interval,
    commit,
    db,
    runtime,
    safe_next,
    sign_in,
    sign_out,
)

bp = Blueprint("eid", __name__, template_folder="templates")

SESSION_KEY = "eid_login"


def qr_svg(content: str) -> str:
    """The animated QR code's current frame; the page labels it (role="img")."""
    return str(segno.make_qr(content, error="l").svg_inline(scale=5, border=4))


def end_user_ip() -> str:
    return request.remote_addr or "127.0.0.1"


@bp.get("/logga-in")
def login() -> ResponseReturnValue:
    return render_template(
        "eid/login.html", form=FlaskForm(), next=safe_next(request.args.get("next"))
    )


@bp.post("/logga-in")
def start_login() -> ResponseReturnValue:
    if not FlaskForm().validate_on_submit():
        abort(400)
    same_device = request.form.get("device") == "this"
    binding_value, binding = service.new_binding()
    try:
        order = service.start_login(db(), bankid_client(), end_user_ip(), binding)
    except service.EidError as exc:
        flash(error_message(exc.code), "error")
        return redirect(url_for(".login"))
    commit()
    session[SESSION_KEY] = {
        "order": order.id,
        "binding": binding_value,
        "same_device": same_device,
        "next": safe_next(request.form.get("next")),
    }
    return redirect(url_for(".login_pending"))


def _login_order() -> EidOrder | None:
    state = session.get(SESSION_KEY) or {}
    return service.find_order(db(), state.get("order"), state.get("binding"), OrderPurpose.LOGIN)


def _start_page(kind: AgentKind, agent_id: int) -> str:
    """Where each kind of user starts: caseworkers at the queue, clerks at the scanning,
    an employer's people at what waits for them."""
    if kind is AgentKind.PERSON:
        return url_for("core.todo")
    staff = db().get_one(StaffMember, agent_id)
    if staff.is_caseworker:
        return url_for("casework.queue")
    if staff.is_intake_clerk:
        return url_for("intake.start")
    return url_for("core.index")


def _finish_login(order: EidOrder) -> str:
    """Sign in the identified person; returns where to go next."""
    identity = service.use_completion(db(), order)
    kind, agent_id = resolve_login(db(), identity, str(get_locale()))
    commit()
    target = safe_next((session.get(SESSION_KEY) or {}).get("next")) or _start_page(kind, agent_id)
    sign_in(kind, agent_id)  # a new session: the old one (and its CSRF token) is gone
    flash(_("Du är inloggad."), "success")
    return str(target)


def _poll_login() -> tuple[EidOrder, service.OrderState] | None:
    order = _login_order()
    if order is None:
        return None
    state = service.poll(db(), bankid_client(), order, collect_interval())
    commit()
    return order, state


@bp.get("/logga-in/bankid")
def login_pending() -> ResponseReturnValue:
    polled = _poll_login()
    if polled is None:
        return redirect(url_for(".login"))
    order, state = polled
    if state.status is OrderStatus.COMPLETE:
        return redirect(_finish_login(order))
    return render_template(
        "eid/pending.html",
        **_pending_context(order, state),
        status_url=url_for(".login_status"),
        cancel_url=url_for(".cancel_login"),
        retry_url=url_for(".login"),
    )


def _pending_context(order: EidOrder, state: service.OrderState) -> dict[str, Any]:
    same_device = bool((session.get(SESSION_KEY) or {}).get("same_device"))
    return {
        "state": state,
        "order": order,
        "same_device": same_device,
        "form": FlaskForm(),
        "message": user_message(state.status, state.hint_code, same_device),
        "qr_svg": qr_svg(state.qr_content) if state.qr_content else None,
        "autostart_url": f"bankid:///?autostarttoken={order.auto_start_token}&redirect=null",
        "simulator": runtime().settings.bankid_simulator,
    }


def status_json(
    order: EidOrder, state: service.OrderState, done: str | None, same_device: bool
) -> ResponseReturnValue:
    return jsonify(
        status=state.status.value,
        hint_code=state.hint_code,
        done=done,
        message=user_message(state.status, state.hint_code, same_device),
        qr_svg=qr_svg(state.qr_content) if state.qr_content else None,
    )


@bp.post("/logga-in/bankid/status")
def login_status() -> ResponseReturnValue:
    polled = _poll_login()
    if polled is None:
        return jsonify(status="failed", done=url_for(".login")), 404
    order, state = polled
    done = _finish_login(order) if state.status is OrderStatus.COMPLETE else None
    same_device = bool((session.get(SESSION_KEY) or {}).get("same_device"))
    return status_json(order, state, done, same_device)


@bp.post("/logga-in/avbryt")
def cancel_login() -> ResponseReturnValue:
    order = _login_order()
    if order is not None:
        service.cancel(db(), bankid_client(), order)
        commit()
    session.pop(SESSION_KEY, None)
    flash(_("Inloggningen är avbruten."), "info")
    return redirect(url_for(".login"))


@bp.post("/logga-ut")
def logout() -> ResponseReturnValue:
    sign_out()
    flash(_("Du är utloggad."), "info")
    return redirect(url_for("core.index"))
