"""A stand-in for the company register's delivery of an extract of signatories (demo and
tests only).

``POST /demo/bolagsverket`` (a caseworker's button on the queue) imports
``devtools/signatory_extract_demo.csv`` through the product's own import, the one
``behorighet signatories import FILE`` runs outside the demo: in the demo's extract Statens
testmyndighet's director-general Gunilla, who signed Anna's registration, has left, so
Anna's role is flagged for review and an errand opens in the queue.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from app.db import utcnow
from app.registers.changes import import_extract
from app.registers.extract import read_extract
from app.web import caseworker_required, commit, db, runtime

bp = Blueprint("company_register", __name__)

DEMO_EXTRACT = Path(__file__).resolve().parent / "signatory_extract_demo.csv"


@bp.post("/demo/bolagsverket")
@caseworker_required
def deliver() -> ResponseReturnValue:
    if not FlaskForm().validate_on_submit():
        abort(400)
    extract = read_extract(DEMO_EXTRACT.read_bytes(), today=utcnow().date())
    report = import_extract(db(), extract, base_url=runtime().settings.public_base_url)
    commit()
    flash(
        f"Bolagsverkets utdrag importerat: {len(report.changes)} ändringar, "
        f"{len(report.flags)} behörigheter markerade för granskning "
        f"({', '.join(report.errands) or 'inga nya ärenden'}).",
        "success",
    )
    return redirect(url_for("casework.queue"))
