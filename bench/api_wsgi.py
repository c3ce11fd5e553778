"""The app as bench/bench_api.py serves it under gunicorn (``api_wsgi:app``).

The product's own app, configured from the environment like any deployment, with one
bench-only plugin: ``POST /bench/constant`` answers a fixed check result without reading
anything, the baseline that ``POST /api/v1/check`` is measured against (same app, same
server, same worker). The product has no such endpoint.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Blueprint, Flask, Response, jsonify

from app import create_app, csrf
from app.config import Settings

CONSTANT = {"allowed": True, "reason": "constant", "role": None}


class ConstantEndpoint:
    """A plugin (app/plugins.py) that adds the constant-response endpoint."""

    def configure(self, settings: Settings) -> Settings:
        # A measurement, not a deployment: no BankID, seal or mail is used here, so the
        # production settings' check (app.config.production_problems) does not apply.
        return dataclasses.replace(settings, testing=True)

    def init_app(self, app: Flask) -> None:
        bp = Blueprint("bench_constant", __name__)

        @bp.post("/bench/constant")
        def constant() -> Response:
            return jsonify(CONSTANT)

        csrf.exempt(bp)
        app.register_blueprint(bp)


app = create_app(Settings.from_env(), plugins=[ConstantEndpoint()])
