"""Errors of the API as RFC 9457 problem details (``application/problem+json``), titled in
Swedish or English by the request's ``Accept-Language`` (Swedish by default)."""

from __future__ import annotations

from typing import Any

from flask import Response, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://spv.se/behorighet/problem/"
"""Problem types are named under this URI (RFC 9457 ``type``)."""

TITLES: dict[str, tuple[str, str]] = {
    "bad_request": ("Felaktig begäran", "Bad request"),
    "invalid_input": ("Ogiltiga uppgifter", "Invalid input"),
    "invalid_cursor": ("Ogiltig markör i ändringsflödet", "Invalid change feed cursor"),
    "unauthorized": (
        "Inloggning krävs: ange klientens nyckel eller certifikat",
        "Authentication required: present the client's key or certificate",
    ),
    "forbidden": (
        "Klienten saknar behörighet till den här tjänsten",
        "The client lacks the scope this endpoint needs",
    ),
    "not_found": ("Hittades inte", "Not found"),
    "employer_not_found": ("Arbetsgivaren hittades inte", "Employer not found"),
    "method_not_allowed": ("Metoden är inte tillåten", "Method not allowed"),
    "not_acceptable": ("Svarsformatet kan inte levereras", "Not acceptable"),
    "too_large": ("Begäran är för stor", "Request too large"),
    "unsupported_media_type": ("Formatet stöds inte", "Unsupported media type"),
    "rate_limited": ("För många anrop: försök igen senare", "Too many requests: try again later"),
    "server_error": ("Ett fel uppstod hos oss", "An error occurred on our side"),
}

_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def language() -> str:
    return request.accept_languages.best_match(("sv", "en"), default="sv") or "sv"


def problem(
    status: int,
    kind: str | None = None,
    *,
    detail: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    kind = kind or _BY_STATUS.get(status, "server_error" if status >= 500 else "bad_request")
    lang = language()
    swedish, english = TITLES[kind]
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": swedish if lang == "sv" else english,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_http_exception(error: HTTPException) -> Response:
    """An HTTP error raised anywhere under ``/api/`` (webargs' validation errors carry the
    messages per field)."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("messages") if isinstance(data, dict) else None
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="behorighet"'
    if status == 405 and error.get_response().headers.get("Allow"):
        headers["Allow"] = error.get_response().headers["Allow"]
    if status == 429:
        headers.update(
            {k: v for k, v in error.get_response().headers.items() if k.lower() == "retry-after"}
        )
    return problem(status, errors=_plain(errors), headers=headers)


def _plain(errors: Any) -> Any:
    """webargs nests messages by location (``json``, ``query``); keep them as they are, but
    with string keys (marshmallow uses integer keys for list items)."""
    if isinstance(errors, dict):
        return {str(k): _plain(v) for k, v in errors.items()}
    if isinstance(errors, list):
        return [_plain(v) for v in errors]
    return errors
