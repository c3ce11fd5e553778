"""Behörighet: employers manage who may use SPV's self-service services."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from flask import Flask, g, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Settings, UnsafeSettings, production_problems
from app.logging import configure_logging
from app.plugins import Plugin, configure_all

SUPPORTED_LOCALES = ("sv", "en")
csrf = CSRFProtect()
babel = Babel()


def select_locale() -> str:
    requested = request.args.get("lang")
    if requested in SUPPORTED_LOCALES:
        session["lang"] = requested
    return str(session.get("lang", "sv"))


def create_app(settings: Settings | None = None, plugins: Sequence[Plugin] = ()) -> Flask:
    """The app for ``settings`` (from the environment by default), with ``plugins`` (the
    demo's and the tests' stand-ins) configured and plugged in."""
    settings = configure_all(settings or Settings.from_env(), plugins)
    problems = production_problems(settings)
    if problems:
        raise UnsafeSettings(problems)
    configure_logging(
        json_logs=not (settings.stand_ins or settings.testing), level=settings.log_level
    )
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_idle_minutes),
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE="sv",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        MAX_CONTENT_LENGTH=settings.intake_max_file_bytes,
    )
    from workflows import bootstrap  # here: a decoder process importing app stays light

    app.extensions["behorighet"] = bootstrap.configure(settings)
    from app.eid import sessions

    sessions.init_app(app, settings, app.extensions["behorighet"])
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    from app import lang

    lang.init_app(app)

    from app import ratelimits, web

    app.url_map.converters["int"] = web.BoundedIntConverter  # before any route is added
    from app.access.review_views import bp as access_review_bp
    from app.access.views import bp as access_bp
    from app.api import views as api_views
    from app.casework.views import bp as casework_bp
    from app.core.views import bp as core_bp
    from app.eid.views import bp as eid_bp
    from app.intake.views import bp as intake_bp
    from app.overview.views import bp as overview_bp
    from app.privacy.views import bp as privacy_bp
    from app.registrations.invitation_views import bp as signatory_bp
    from app.registrations.views import bp as registrations_bp
    from app.safeguards.views import bp as safeguards_bp

    web.init_app(app)
    for blueprint in (
        core_bp,
        eid_bp,
        registrations_bp,
        signatory_bp,
        casework_bp,
        intake_bp,
        access_bp,
        access_review_bp,
        overview_bp,
        privacy_bp,
        safeguards_bp,
    ):
        app.register_blueprint(blueprint)
    # The API authenticates its callers by key or certificate: no session, no CSRF token.
    csrf.exempt(api_views.bp)
    limiter = ratelimits.init_app(app, settings)
    api_views.init_app(app, settings, limiter)
    for plugin in plugins:
        plugin.init_app(app)
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    return app
