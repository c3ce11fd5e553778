"""The simulator's blueprint: BankID's RP API v6.0 and the page standing in for the app.

Registered by the stand-ins plugin when the simulator is on. The RP API is JSON (no CSRF
token, as at BankID); the app page's forms carry one like every other form.
"""

from __future__ import annotations

from typing import TypeVar

import structlog
from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from app import csrf
from app.web import commit, db
from devtools.bankid_simulator import app_actions
from devtools.bankid_simulator import rp_api as rp
from devtools.bankid_simulator.app_actions import TESTER_FAILURES, AppActionRefused
from devtools.bankid_simulator.models import FaultCode, HintCode, OrderKind
from devtools.bankid_simulator.orders import SimulatorConfig
from devtools.bankid_simulator.rp_api import BankIdApiError
from devtools.pki import TestPki, UserIdentity
from devtools.plugin import StandIns

log = structlog.get_logger(__name__)
E = TypeVar("E", HintCode, FaultCode)

bp = Blueprint(
    "bankid_simulator", __name__, url_prefix="/bankid-simulator", template_folder="templates"
)

REFUSALS = {
    "no_such_order": _l("Beställningen finns inte."),
    "order_ended": _l("Beställningen är redan avslutad."),
    "already_open": _l("Beställningen är redan öppnad i appen."),
    "qr_unreadable": _l("Det där är ingen BankID-QR-kod."),
    "qr_unknown": _l("QR-koden hör inte till någon väntande beställning."),
    "qr_invalid": _l("QR-koden är för gammal eller felaktig. Skanna den aktuella koden."),
    "not_waiting_for_call": _l("Beställningen väntar inte på att samtalet bekräftas."),
    "not_started": _l("Öppna beställningen i appen och välj legitimation först."),
    "not_waiting_for_mrtd": _l("Beställningen väntar på att passet eller id-kortet skannas."),
    "wrong_person": _l("Beställningen kan bara slutföras av den person som RP har angett."),
    "bad_personal_number": _l("Ange ett giltigt personnummer."),
    "no_identity": _l("Välj en person eller skriv ett personnummer."),
    "bad_failure": _l("Välj ett fel att simulera."),
    "bad_count": _l("Ange ett antal mellan 1 och 100."),
}
DONE = {
    "open": _l("Beställningen är öppnad i appen."),
    "scan": _l("QR-koden är skannad."),
    "confirm_call": _l("Samtalet är bekräftat."),
    "decline_call": _l("Användaren är inte i samtal: beställningen avbröts."),
    "choose": _l("Legitimationen är vald. Nu väntar appen på säkerhetskoden."),
    "mrtd": _l("Passet eller id-kortet är skannat."),
    "approve": _l("Klart: beställningen är slutförd."),
    "cancel": _l("Beställningen är avbruten i appen."),
    "fail": _l("Beställningen misslyckades som du valde."),
    "fault": _l("RP-API:t svarar med felet på nästa anrop."),
}


def _stand_ins() -> StandIns:
    return StandIns.of(current_app)


def _config() -> SimulatorConfig:
    return _stand_ins().simulator_config


def _pki() -> TestPki:
    return _stand_ins().pki


def _error(error: BankIdApiError) -> ResponseReturnValue:
    return jsonify(error.body()), error.status


@bp.route("/rp/v6.0/<path:endpoint>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def rp_api(endpoint: str) -> ResponseReturnValue:
    """``auth``, ``sign``, ``phone/auth``, ``phone/sign``, ``collect`` and ``cancel``."""
    if endpoint not in rp.ENDPOINTS:
        return _error(rp.not_found())
    if request.method != "POST":
        return _error(BankIdApiError(405, "methodNotAllowed", "Only POST is allowed"))
    if request.mimetype != "application/json" or request.mimetype_params:
        return _error(
            BankIdApiError(415, "unsupportedMediaType", "Content-Type must be application/json")
        )
    body = request.get_json(silent=True)
    try:
        answer = rp.handle_rp_call(db(), endpoint, body, _config())
    except BankIdApiError as exc:
        commit()  # what led to the error stays (orders cancelled, a fault used up)
        return _error(exc)
    except Exception:
        db().rollback()
        log.exception("bankid_simulator.internal_error", endpoint=endpoint)
        return _error(BankIdApiError(500, "internalError", "Internal error in the simulator"))
    commit()
    return jsonify(answer)


csrf.exempt(rp_api)


@bp.get("/app")
def app_page() -> ResponseReturnValue:
    config = _config()
    orders = app_actions.pending_orders(db(), config)
    recent = app_actions.recent_orders(db(), config)
    commit()  # orders past their time were marked expired
    return render_template(
        "bankid_simulator/app.html",
        orders=orders,
        recent=recent,
        failures=TESTER_FAILURES,
        faults=list(FaultCode),
        OrderKind=OrderKind,
        HintCode=HintCode,
        outcome=_outcome(),
    )


@bp.post("/app")
def app_action() -> ResponseReturnValue:
    form = request.form
    action = form.get("action", "")
    order_ref = form.get("order_ref", "")
    session = db()
    try:
        if action == "open":
            app_actions.open_order(session, order_ref, _config())
        elif action == "scan":
            app_actions.scan_qr(session, form.get("qr", ""))
        elif action == "confirm_call":
            app_actions.confirm_call(session, order_ref)
        elif action == "decline_call":
            app_actions.decline_call(session, order_ref)
        elif action == "choose":
            identity = _identity(required=True)
            assert identity is not None
            app_actions.choose_identity(session, order_ref, identity, request.remote_addr)
        elif action == "mrtd":
            app_actions.scan_mrtd(session, order_ref)
        elif action == "approve":
            app_actions.approve(
                session, order_ref, _pki(), _identity(required=False), request.remote_addr
            )
        elif action == "cancel":
            app_actions.cancel_in_app(session, order_ref)
        elif action == "fail":
            app_actions.fail(session, order_ref, _choice(HintCode, form.get("hint", "")))
        elif action == "fault":
            fault = _choice(FaultCode, form.get("error_code", ""))
            app_actions.inject_fault(session, fault, _count())
        else:
            abort(400)
    except AppActionRefused as exc:
        commit()
        return redirect(url_for(".app_page", fel=exc.reason), 303)
    commit()
    return redirect(url_for(".app_page", klart=action), 303)


def _outcome() -> tuple[str, str] | None:
    """What the last action did, named in the address and not flashed: the app stands for a
    phone, so it must not write the browser's session (logging in, which the action may have
    just let through in another tab, ends that session)."""
    done, refused = request.args.get("klart", ""), request.args.get("fel", "")
    if done in DONE:
        return "success", str(DONE[done])
    if refused in REFUSALS:
        return "error", str(REFUSALS[refused])
    return None


def _identity(required: bool) -> UserIdentity | None:
    """The person picked in the list, or the personal number typed instead."""
    typed = request.form.get("personal_number", "").strip()
    picked = request.form.get("identity", "").strip()
    if typed:
        return app_actions.identity_for(db(), app_actions.parse_personal_number(typed))
    if picked:
        return app_actions.identity_for(db(), app_actions.parse_personal_number(picked))
    if required:
        raise AppActionRefused("no_identity")
    return None


def _choice(enum: type[E], value: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise AppActionRefused("bad_failure") from None


def _count() -> int:
    try:
        return int(request.form.get("count", "1"))
    except ValueError:
        raise AppActionRefused("bad_count") from None
