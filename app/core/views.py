"""Start page and health endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue

from app.todo import to_do
from app.web import db, person_required, runtime, signed_in

bp = Blueprint("core", __name__, template_folder="templates")


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("core/index.html")


@bp.get("/att-gora")
@person_required
def todo() -> ResponseReturnValue:
    """An employer's person's start page after login: what waits for them."""
    agent = signed_in()
    assert agent.id is not None
    return render_template("core/todo.html", todo=to_do(db(), agent.id))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    problems: dict[str, str] = {}
    rt = runtime()
    for part, check in (("database", rt.check_database), ("broker", rt.check_broker)):
        try:
            check()
        except Exception as exc:
            problems[part] = type(exc).__name__
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ready")
