"""Login and logout. Until BankID arrives, the demo sign-in picks a seeded identity."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from app.access.models import Person
from app.core.agents import AgentKind
from app.db import utcnow
from app.staff.models import StaffMember
from app.web import commit, db, runtime, sign_in, sign_out

bp = Blueprint("eid", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("core.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("core.index")
    return target


@bp.get("/logga-in")
def login() -> ResponseReturnValue:
    if not runtime().settings.demo_login:
        return render_template("eid/login_unavailable.html"), 503
    persons = db().scalars(select(Person).order_by(Person.family_name, Person.given_name)).all()
    staff = db().scalars(select(StaffMember).order_by(StaffMember.name)).all()
    return render_template(
        "eid/demo_login.html", persons=persons, staff=staff, next=request.args.get("next", "")
    )


@bp.post("/logga-in")
def demo_sign_in() -> ResponseReturnValue:
    if not runtime().settings.demo_login:
        abort(404)
    kind = request.form.get("kind", "")
    try:
        agent_id = int(request.form.get("id", ""))
    except ValueError:
        abort(400)
    if kind == AgentKind.PERSON.value:
        person = db().get(Person, agent_id)
        if person is None:
            abort(400)
        person.last_login_dt = utcnow()
        commit()
        sign_in(AgentKind.PERSON, person.id)
    elif kind == AgentKind.STAFF.value:
        staff = db().get(StaffMember, agent_id)
        if staff is None or not staff.is_active:
            abort(400)
        sign_in(AgentKind.STAFF, staff.id)
    else:
        abort(400)
    flash(_("Du är inloggad."), "success")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logga-ut")
def logout() -> ResponseReturnValue:
    sign_out()
    flash(_("Du är utloggad."), "info")
    return redirect(url_for("core.index"))
