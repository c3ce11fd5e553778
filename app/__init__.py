"""Behörighet: employers manage who may use SPV's self-service services."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect

from app.config import Settings
from app.logging import configure_logging

SUPPORTED_LOCALES = ("sv", "en")
csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str:
    requested = request.args.get("lang")
    if requested in SUPPORTED_LOCALES:
        session["lang"] = requested
    return str(session.get("lang", "sv"))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(json_logs=not (settings.bankid_simulator or settings.testing))
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE="sv",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
    )
    from workflows import bootstrap  # here: a decoder process importing app stays light

    app.extensions["behorighet"] = bootstrap.configure(settings)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)

    from app import web
    from app.access.views import bp as access_bp
    from app.casework.views import bp as casework_bp
    from app.core.views import bp as core_bp
    from app.eid.views import bp as eid_bp
    from app.intake.views import bp as intake_bp
    from app.registrations.views import bp as registrations_bp

    web.init_app(app)
    for blueprint in (core_bp, eid_bp, registrations_bp, casework_bp, intake_bp, access_bp):
        app.register_blueprint(blueprint)
    if settings.bankid_simulator:
        from app.eid.simulator.views import bp as simulator_bp

        app.register_blueprint(simulator_bp)
    if settings.mail_sink:
        from app.notifications.sink import bp as mail_sink_bp

        app.register_blueprint(mail_sink_bp)
    if settings.demo_scanner:
        from app.intake.demo import bp as demo_scanner_bp

        app.register_blueprint(demo_scanner_bp)

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    return app
