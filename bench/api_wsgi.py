"""The app as bench/bench_api.py serves it under gunicorn (``api_wsgi:app``).

The product's own app, configured from the environment like any deployment, with one
bench-only plugin: ``POST /bench/constant`` answers a fixed check result without reading
anything, the baseline that ``POST /api/v1/check`` is measured against (same app, same
server, same worker); ``POST /bench/api-constant`` answers the same behind the API's
authentication and rate limit; ``POST /bench/api-round-trip`` answers it too after one
``SELECT 1`` on the check's own database connections (``app.api.log_engine``): the floor of
any answer read from the last committed state. The product has no such endpoints.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Blueprint, Flask, Response, jsonify

from app import create_app, csrf
from app.api import log_engine
from app.api import views as api_views
from app.config import Settings
from app.web import runtime

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

        # The same constant behind the API's own request handling: the client
        # authenticated and counted against its rate limit, as every /api/v1/ call is.
        api_bp = Blueprint("bench_api_constant", __name__)
        api_bp.before_request(api_views.authenticate)

        @api_bp.post("/bench/api-constant")
        def api_constant() -> Response:
            return jsonify(CONSTANT)

        @api_bp.post("/bench/api-round-trip")
        def api_round_trip() -> Response:
            hot_path: log_engine.HotPath = app.extensions[api_views._HOT_PATH]
            engine = hot_path.engine_for(runtime().session_factory)
            assert engine is not None, "the bench serves PostgreSQL"
            log_engine.run_raw(engine, lambda cursor: cursor.execute("SELECT 1").fetchone())
            return jsonify(CONSTANT)

        for blueprint in (bp, api_bp):
            csrf.exempt(blueprint)
            app.register_blueprint(blueprint)


app = create_app(Settings.from_env(), plugins=[ConstantEndpoint()])
