"""``/api/v1/``: the permission API (flask-smorest: the OpenAPI 3.1 document is made from
these views and their schemas). Views are thin: authenticate, check the scope, one
service call, log who was asked about, commit."""

from __future__ import annotations

import http
import re
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import unquote

import flask
from flask import Flask, abort, current_app, g, render_template, request
from flask_limiter import Limiter
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from app import ratelimits
from app.access.authority import Access
from app.access.models import SelfService
from app.api import clients, log_engine, service
from app.api.models import Scope
from app.api.problems import PROBLEM_JSON, from_http_exception, problem
from app.api.schemas import (
    EMPLOYER_KEY,
    PERSONNUMMER,
    BatchIn,
    BatchOut,
    ChangesOut,
    ChangesQuery,
    CheckIn,
    CheckOut,
    ContactsOut,
    PersonPermissionsOut,
    PlainLoad,
    ProblemOut,
)
from app.config import Settings
from app.web import db, runtime

F = TypeVar("F", bound=Callable[..., Any])


class PlainParser(FlaskParser):
    """webargs' parser, with the shortcut of :class:`PlainLoad` schemas for a plainly valid
    JSON body (the checks: the API's hot path)."""

    def parse(
        self, argmap: Any, req: Any = None, *, location: str | None = None, **kwargs: Any
    ) -> Any:
        if isinstance(argmap, PlainLoad) and location in (None, "json") and request.is_json:
            loaded = argmap.plain_load(request.get_json(silent=True))
            if loaded is not None:
                return loaded
        return super().parse(argmap, req, location=location, **kwargs)


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = PlainParser()


bp = ApiBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="May a person use a self-service for an employer code; who may do what; "
    "the change feed.",
)
docs_bp = flask.Blueprint("api_docs", __name__, url_prefix="/api/v1", template_folder="templates")

_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"mutualTLS": []}]


class ProblemApi(Api):
    """flask-smorest's Api with RFC 9457 problems as the documented errors, and no error
    handlers of its own (the web pages keep theirs; ``init_app`` below handles ``/api/``)."""

    ERROR_SCHEMA = ProblemOut

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "A problem (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


# ---- who calls -------------------------------------------------------------------------


def _settings() -> Settings:
    return runtime().settings


def _presented_certificate() -> str | None:
    """The client's certificate (PEM): from the TLS-terminating proxy's header, if the
    request comes from a trusted proxy, or from the WSGI server's ``SSL_CLIENT_CERT``."""
    settings = _settings()
    header = settings.api_client_cert_header
    if header and request.remote_addr in settings.api_trusted_proxies:
        value = request.headers.get(header)
        if value:
            return unquote(value)
    value = request.environ.get("SSL_CLIENT_CERT")
    return value if isinstance(value, str) and value else None


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


_UNKNOWN = object()
_CALLERS = "behorighet_api_callers"
_SUBJECT_KEY = "behorighet_api_subject_key"
_HOT_PATH = "behorighet_api_hot_path"
_RATE_LIMIT = "behorighet_api_rate_limit"


def _identify() -> clients.Caller | None:
    """The registered client this request comes from, by its bearer token or else its
    certificate; None when neither names an active client. Looked up once a request (the
    rate limit asks first), and remembered by the process for ``api_client_cache_s``."""
    found = g.get("api_caller", _UNKNOWN)
    if found is not _UNKNOWN:
        return cast(clients.Caller | None, found)
    known: clients.CallerCache = current_app.extensions[_CALLERS]
    token = _bearer()
    caller: clients.Caller | None = None
    if token is not None:
        caller = known.get(
            "token:" + clients.token_hash(token), lambda: clients.by_token(db(), token)
        )
    else:
        pem = _presented_certificate()
        fingerprint = clients.certificate_fingerprint(pem) if pem else None
        if fingerprint:
            caller = known.get(
                "cert:" + fingerprint, lambda: clients.by_certificate(db(), fingerprint)
            )
    g.api_caller = caller
    return caller


def _rate_key() -> str:
    """What a request is counted against: its client; or, for a request no client is
    recognised in, its address (so guessing secrets is limited too)."""
    found = _identify()
    if found is not None:
        return f"client:{found.id}"
    return "address:" + (request.remote_addr or "-")


@bp.before_request
def authenticate() -> None:
    """Count the call (by client, or by address when no client is recognised, so that
    guessing secrets is limited too), then refuse it unless a registered client makes it."""
    cast(ratelimits.CountedLimit, current_app.extensions[_RATE_LIMIT]).hit(_rate_key())
    if _identify() is None:
        abort(401)


def caller() -> clients.Caller:
    return cast(clients.Caller, g.api_caller)


def requires(scope: Scope) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if scope not in caller().scopes:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def _subject_key() -> bytes:
    return cast(bytes, current_app.extensions[_SUBJECT_KEY])


def _log(endpoint: str, personnummers: Iterable[str]) -> None:
    clients.log_access(db(), _subject_key(), caller(), endpoint, personnummers)


def _checked(endpoint: str, asked: list[service.CheckRequest]) -> list[service.CheckResult]:
    """The answers, logged as read by the caller: on PostgreSQL one statement on a
    connection of its own (the hot path: no transaction round trips), else in the request's
    transaction."""
    log = clients.access_rows(_subject_key(), caller(), endpoint, [a.subject for a in asked])
    hot_path: log_engine.HotPath = current_app.extensions[_HOT_PATH]
    engine = hot_path.engine_for(runtime().session_factory)
    if engine is None:
        results = service.check(db().connection(), asked, log)
        db().commit()
        return results
    if len(asked) == 1:
        [one], [row] = asked, log
        return [
            log_engine.run_raw(engine, lambda cursor: service.check_one_logged(cursor, one, row))
        ]
    return log_engine.run(engine, lambda connection: service.check(connection, asked, log))


def _problems(*statuses: int) -> Callable[[F], F]:
    """Document the problems an endpoint answers with (the rest fall under ``default``)."""

    def decorate(view: F) -> F:
        for status in statuses:
            view = bp.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return cast(F, bp.doc(security=_SECURITY)(view))

    return decorate


# ---- the endpoints -------------------------------------------------------------------------


def _request(body: dict[str, Any]) -> service.CheckRequest:
    return service.CheckRequest(
        subject=body["subject"],
        service=SelfService(body["service"]),
        access=Access(body["access"]),
        employer_code=body["employer_code"],
    )


@bp.route("/check", methods=["POST"])
@requires(Scope.CHECK)
@bp.arguments(CheckIn())
@bp.response(200, CheckOut())
@_problems(401, 403, 422, 429)
def check(body: dict[str, Any]) -> flask.Response:
    """May the person use the self-service, reading or writing, for the employer code?

    Answered from the permission store as last committed. A closed employer code allows
    only reading invoice specifications."""
    [result] = _checked("check", [_request(body)])
    # CheckOut documents it; made directly, as the hot path's answer (plain values only).
    return flask.jsonify(allowed=result.allowed, reason=result.reason, role=result.role)


@bp.route("/check/batch", methods=["POST"])
@requires(Scope.CHECK)
@bp.arguments(BatchIn())
@bp.response(200, BatchOut())
@_problems(401, 403, 422, 429)
def check_batch(body: dict[str, Any]) -> dict[str, Any]:
    """Up to 100 checks in one call; the results in the order asked."""
    return {"results": _checked("check_batch", [_request(b) for b in body["checks"]])}


@bp.route(
    "/persons/<personnummer>/permissions",
    parameters=[
        {
            "in": "path",
            "name": "personnummer",
            "required": True,
            "schema": {"type": "string", "pattern": PERSONNUMMER},
            "description": "Personnummer or samordningsnummer, 12 digits",
        }
    ],
)
@requires(Scope.PERSONS)
@bp.response(200, PersonPermissionsOut)
@_problems(400, 401, 403, 429)
def person_permissions(personnummer: str) -> dict[str, Any]:
    """Everything the person may do: roles and service permissions, per employer and code
    (an empty list for a person with none)."""
    if not (len(personnummer) == 12 and personnummer.isascii() and personnummer.isdigit()):
        abort(400)
    employers = service.person_permissions(db(), personnummer)
    _log("person_permissions", [personnummer])
    db().commit()
    return {"subject": personnummer, "employers": employers}


@bp.route(
    "/employers/<employer>/contacts",
    parameters=[
        {
            "in": "path",
            "name": "employer",
            "required": True,
            "schema": {"type": "string", "pattern": EMPLOYER_KEY},
            "description": "Organisation number (10 digits, or 12 with 16) or employer code",
        }
    ],
)
@requires(Scope.CONTACTS)
@bp.response(200, ContactsOut)
@_problems(400, 401, 403, 404, 429)
def employer_contacts(employer: str) -> Any:
    """The employer's orderers and administrators, and how to reach them (rule 10)."""
    if not re.match(EMPLOYER_KEY, employer):
        abort(400)
    found = service.employer_contacts(db(), employer)
    if found is None:
        return problem(404, "employer_not_found")
    _log("employer_contacts", found.personnummers)  # each contact's data was read
    db().commit()
    return {"employer": found.employer, "contacts": found.contacts}


@bp.route("/changes")
@requires(Scope.CHANGES)
@bp.arguments(ChangesQuery, location="query")
@bp.response(200, ChangesOut)
@_problems(400, 401, 403, 422, 429)
def changes(query: dict[str, Any]) -> Any:
    """Permission changes in commit order: service permissions granted and revoked, roles
    granted, changed and ended. Keep `next` and pass it as `after` to read on."""
    try:
        page = service.changes_after(db(), query["after"], query["limit"])
    except service.BadCursor:
        return problem(400, "invalid_cursor")
    if page.changes:
        _log("changes", [c.subject for c in page.changes])
        db().commit()
    return {"changes": page.changes, "next": page.next_cursor}


# ---- the document's browsable form ---------------------------------------------------------


@docs_bp.route("/docs")
def docs() -> flask.Response:
    """Swagger UI from the app's own static files (no CDN); it sets inline styles."""
    response = flask.make_response(render_template("api/docs.html"))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


# ---- plugged into the app --------------------------------------------------------------------


def _problem_first(page: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``page`` for the site's pages, a problem for the API's paths."""

    def handle(error: Any) -> Any:
        if request.path.startswith("/api/") and isinstance(error, HTTPException):
            return from_http_exception(error)
        return page(error)

    return handle


def _problem_for(error: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        return from_http_exception(error)
    return error


@bp.errorhandler(Exception)
def _server_error(error: Exception) -> Any:
    if isinstance(error, HTTPException):
        return from_http_exception(error)
    current_app.logger.exception("API error")
    return problem(500)


def close(app: Flask) -> None:
    """Close the hot path's connections (the app's own engine is the runtime's)."""
    cast(log_engine.HotPath, app.extensions[_HOT_PATH]).dispose()


def init_app(app: Flask, settings: Settings, limiter: Limiter) -> None:
    """The API, its document, its rate limit (on the app's ``limiter``, ``app.ratelimits``)
    and its problems, on ``app``."""
    app.config.update(
        API_TITLE="Behörighet API",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = ProblemApi(
        app,
        spec_kwargs={
            "info": {
                "description": "The permission store of Behörighet for SPV's other services.",
            }
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "The client's secret"}
    )
    api.spec.components.security_scheme(
        "mutualTLS", {"type": "mutualTLS", "description": "A registered client certificate"}
    )
    app.extensions[_CALLERS] = clients.CallerCache(settings.api_client_cache_s)
    app.extensions[_SUBJECT_KEY] = clients.subject_key(settings.secret_key)
    app.extensions[_HOT_PATH] = log_engine.HotPath(pool_size=settings.web_threads + 2)
    app.extensions[_RATE_LIMIT] = ratelimits.CountedLimit(limiter, settings.api_rate_limit, "api")
    api.register_blueprint(bp)
    app.register_blueprint(docs_bp)
    app.register_error_handler(HTTPException, _problem_for)
    # The site's own error pages (app.web) are registered per status code, which Flask
    # prefers to any handler by class: under /api/ each answers with a problem instead.
    for code, handlers in app.error_handler_spec[None].items():
        if code is not None:
            for exception_class, handler in list(handlers.items()):
                handlers[exception_class] = _problem_first(handler)
