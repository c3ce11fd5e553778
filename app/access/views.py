"""Hantera behörigheter: who holds which role at the signed-in person's employers."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from app.access import service
from app.web import db, person_required, signed_in

bp = Blueprint("access", __name__, template_folder="templates")


@bp.get("/hantera-behorigheter")
@person_required
def overview() -> ResponseReturnValue:
    agent = signed_in()
    assert agent.id is not None
    grants = service.grants_of_person(db(), agent.id)
    employers = service.employers_of_person(db(), agent.id)
    contacts = {e.id: service.orderers_and_administrators(db(), e.id) for e in employers}
    return render_template(
        "access/overview.html", grants=grants, employers=employers, contacts=contacts
    )
