"""The mail sink's page: every message it received, newest first (demo only)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app.web import db
from devtools.mail_sink.models import SinkMessage

PAGE_SIZE = 100

bp = Blueprint("mail_sink", __name__, template_folder="templates")


@bp.get("/demo/e-post")
def sent_mail() -> ResponseReturnValue:
    """Every message the sink received, newest first."""
    messages = (
        db().scalars(select(SinkMessage).order_by(SinkMessage.id.desc()).limit(PAGE_SIZE)).all()
    )
    return render_template("mail_sink/sent_mail.html", messages=messages)
