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
from werkzeug.exceptions import HTTPException

from app.access.authority import Access
from app.access.models import SelfService
from app.api import clients, service
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
    ProblemOut,
)
from app.config import Settings
from app.web import db, runtime

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint(
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


def _identify() -> clients.Caller | None:
    """The registered client this request comes from, by its bearer token or else its
    certificate; None when neither names an active client. Looked up once a request (the
    rate limit asks first)."""
    found = g.get("api_caller", _UNKNOWN)
    if found is not _UNKNOWN:
        return cast(clients.Caller | None, found)
    token = _bearer()
    caller: clients.Caller | None = None
    if token is not None:
        caller = clients.by_token(db(), token)
    else:
        pem = _presented_certificate()
        fingerprint = clients.certificate_fingerprint(pem) if pem else None
        caller = clients.by_certificate(db(), fingerprint) if fingerprint else None
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


def _log(endpoint: str, personnummers: Iterable[str]) -> None:
    key = clients.subject_key(_settings().secret_key)
    clients.log_access(db(), key, caller(), endpoint, personnummers)


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
@bp.arguments(CheckIn)
@bp.response(200, CheckOut)
@_problems(401, 403, 422, 429)
def check(body: dict[str, Any]) -> service.CheckResult:
    """May the person use the self-service, reading or writing, for the employer code?

    Answered from the permission store as last committed. A closed employer code allows
    only reading invoice specifications."""
    asked = _request(body)
    [result] = service.check(db(), [asked])
    _log("check", [asked.subject])
    db().commit()
    return result


@bp.route("/check/batch", methods=["POST"])
@requires(Scope.CHECK)
@bp.arguments(BatchIn)
@bp.response(200, BatchOut)
@_problems(401, 403, 422, 429)
def check_batch(body: dict[str, Any]) -> dict[str, Any]:
    """Up to 100 checks in one call; the results in the order asked."""
    asked = [_request(b) for b in body["checks"]]
    results = service.check(db(), asked)
    _log("check_batch", [a.subject for a in asked])
    db().commit()
    return {"results": results}


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
    employer_row, contacts = found
    _log("employer_contacts", [])
    db().commit()
    return {"employer": employer_row, "contacts": contacts}


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


def init_app(app: Flask, settings: Settings, limiter: Limiter) -> None:
    """The API, its document, its rate limit (on the app's ``limiter``, ``app.ratelimits``)
    and its problems, on ``app``."""
    app.config.update(
        API_TITLE="Behörighet API",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_RATE_LIMIT=settings.api_rate_limit,
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
    limiter.limit(lambda: str(current_app.config["API_RATE_LIMIT"]), key_func=_rate_key)(bp)
    api.register_blueprint(bp)
    app.register_blueprint(docs_bp)
    app.register_error_handler(HTTPException, _problem_for)
    # The site's own error pages (app.web) are registered per status code, which Flask
    # prefers to any handler by class: under /api/ each answers with a problem instead.
    for code, handlers in app.error_handler_spec[None].items():
        if code is not None:
            for exception_class, handler in list(handlers.items()):
                handlers[exception_class] = _problem_first(handler)
