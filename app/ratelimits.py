"""Rate limits (Flask-Limiter): one limiter per app, for the API (``app.api.views``) and the
site's costly steps: starting a login, polling a BankID order, starting a signature and
downloading a blank form. The counters live in Redis when configured
(``Settings.rate_limit_storage``: shared by every web process), else in the process's memory.

A site limit counts per signed-in person, or per address for a request without a login; a
request over it gets the site's "too many tries" page in the person's language (a problem
for ``/api/``), with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.exceptions import TooManyRequests

from app.config import Settings
from app.web import current_agent

SITE_LIMITS: dict[str, tuple[str, ...]] = {
    "login": ("eid.start_login",),
    "collect": (
        "eid.login_pending",
        "eid.login_status",
        "registrations.signing_page",
        "registrations.signing_status",
        "signatory.signing_page",
        "signatory.signing_status",
    ),
    "signing": ("registrations.start_signing", "signatory.start_signing"),
    "blank-form": ("registrations.blank_form",),
}
"""Each limit's scope (one count for all its pages) and the endpoints it covers."""


class CountedLimit:
    """A limit counted by hand on the app's limiter, for a key only known once the request
    is under way (the API's client, after authentication): one counter update a call, the
    limit parsed once. Counters unreachable: uncounted, as the site's limits."""

    def __init__(self, limiter: Limiter, limit: str, scope: str) -> None:
        self.limiter = limiter
        self.item = parse(limit)
        self.scope = scope

    def hit(self, key: str) -> None:
        """Count one call against ``key``; 429, with when to try again, when over."""
        strategy = self.limiter.limiter
        try:
            if strategy.hit(self.item, self.scope, key):
                return
            reset_at, _ = strategy.get_window_stats(self.item, self.scope, key)
        except Exception:  # e.g. Redis restarting
            current_app.logger.warning("rate_limit.unavailable", exc_info=True)
            return
        raise TooManyRequests(retry_after=max(1, math.ceil(reset_at - time.time())))


def person_or_address() -> str:
    """What a site request is counted against: the signed-in person (or staff member), or
    the address of a request without a login."""
    agent = current_agent()
    if agent is not None:
        return f"{agent.kind.value}:{agent.id}"
    return "address:" + (request.remote_addr or "-")


def _site_limits(settings: Settings) -> dict[str, str]:
    return {
        "login": settings.login_rate_limit,
        "collect": settings.collect_rate_limit,
        "signing": settings.signing_rate_limit,
        "blank-form": settings.blank_form_rate_limit,
    }


def init_app(app: Flask, settings: Settings) -> Limiter:
    """The app's limiter, with the site's limits on their pages (unless
    ``WEB_RATE_LIMITS`` is off); call it once the site's blueprints are registered."""
    app.config.update(
        RATELIMIT_STORAGE_URI=settings.rate_limit_storage,
        RATELIMIT_KEY_PREFIX="behorighet",
        RATELIMIT_HEADERS_ENABLED=True,
        # Counters unreachable (Redis restarting): the pages go on, uncounted, rather than
        # fail; the limiter logs it.
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter = Limiter(key_func=get_remote_address, app=app)
    if settings.web_rate_limits:
        limits = _site_limits(settings)
        for scope, endpoints in SITE_LIMITS.items():
            limit = limiter.shared_limit(limits[scope], scope=scope, key_func=person_or_address)
            for endpoint in endpoints:
                app.view_functions[endpoint] = cast(Any, limit(app.view_functions[endpoint]))
    return limiter
