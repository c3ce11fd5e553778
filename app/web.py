"""What views share: the request's database session, the signed-in agent, access checks."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from functools import wraps
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import unquote, urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from app import labels, observability
from app.access.changelog import last_change_dt
from app.access.models import Person
from app.api.clients import subject_key
from app.audit.service import record_event
from app.core.agents import Agent, AgentKind
from app.core.i18n import local_time
from app.core.ids import format_orgnr, format_personnummer, mask_personnummer
from app.core.text import has_unsafe_characters, isolate
from app.db import utcnow
from app.eid import sessions
from app.eid.service import BankIdClient
from app.privacy import access_log
from app.privacy.models import ViewKind
from app.staff.models import StaffMember
from workflows.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def runtime() -> Runtime:
    return cast(Runtime, current_app.extensions["behorighet"])


def db() -> Session:
    """The request's session. Views commit it once, through ``commit()``."""
    if "db" not in g:
        g.db = runtime().session_factory()
    return cast(Session, g.db)


def commit() -> None:
    db().commit()


def carry_out(
    act: Callable[[], T], refusals: Mapping[type[Exception], Callable[[Any], str]]
) -> tuple[bool, T | None]:
    """Run a view's one service call and commit it; or, when it raises one of the
    ``refusals``, flash that refusal's message (made from the exception) and change
    nothing. Returns whether it was done, and what the call returned."""
    try:
        result = act()
    except tuple(refusals) as refusal:
        db().rollback()  # whatever the call did before it refused
        message = next(m for kind, m in refusals.items() if isinstance(refusal, kind))
        flash(message(refusal), "error")
        return False, None
    commit()
    return True, result


def person_key() -> bytes:
    """The key of the access logs' stand-in for a personnummer (the API's log's too)."""
    return subject_key(runtime().settings.secret_key)


def record_view(
    personnummers: Iterable[str], what: ViewKind, object_ref: str = "", reason: str | None = None
) -> None:
    """A staff page shows these people's data: record it in the access log and commit
    (the page's one commit: a GET changes nothing else)."""
    access_log.record_view(db(), person_key(), signed_in(), personnummers, what, object_ref, reason)
    commit()


def confirmed() -> bool:
    """The POST comes from the confirmation step (``confirmation``)."""
    return request.form.get("confirmed") == "1"


def confirmation(
    heading: str,
    warning: str,
    *,
    confirm_label: str,
    cancel_url: str,
    details: list[tuple[str, str]] | None = None,
    carried: Mapping[str, str] | None = None,
) -> str:
    """The page that asks before an action that cannot be undone: the same POST again,
    with ``confirmed=1`` and the ``carried`` values (no script dialog)."""
    return render_template(
        "confirm.html",
        heading=heading,
        warning=warning,
        confirm_label=confirm_label,
        cancel_url=cancel_url,
        details=details or [],
        carried=list((carried or {}).items()),
        action=request.path,
    )


def bankid_client() -> BankIdClient:
    """pybankid's client, pointed at BANKID_URL; one per app (a plugin may have put one in
    ``app.extensions["bankid_client"]``, say for a simulator in the process).

    Views ask for it just before calling BankID, so the request's open transaction ends
    here (committing what it holds): no database lock is held across the network call.
    On SQLite (the demo) a transaction locks the whole file, and a simulator answering
    the call writes to the same file; it would wait for the lock until it timed out.
    """
    if "db" in g:
        g.db.commit()
    client = current_app.extensions.get("bankid_client")
    if client is None:
        from app.eid.bankid import make_bankid_client

        client = make_bankid_client(runtime().settings)
        current_app.extensions["bankid_client"] = client
    return cast(BankIdClient, client)


def collect_interval() -> timedelta:
    return timedelta(seconds=runtime().settings.bankid_collect_interval_s)


def sign_in(kind: AgentKind, agent_id: int) -> None:
    """A new session for the signed-in agent (the old one, and its CSRF token, are dropped;
    the browser gets a new session id and the old one ends on the server)."""
    lang = session.get("lang")
    sessions.renew(current_app, session)
    session.clear()
    session.permanent = True
    now = utcnow().timestamp()
    session["agent"] = {"kind": kind.value, "id": agent_id}
    session["login_ts"] = now
    session["seen_ts"] = now
    if lang:
        session["lang"] = lang


def _enforce_session_timeouts() -> None:
    """End a session unused for the idle time, or older than the absolute limit."""
    if "agent" not in session:
        return
    settings = runtime().settings
    now = utcnow().timestamp()
    idle = now - float(session.get("seen_ts", 0))
    age = now - float(session.get("login_ts", 0))
    if idle > settings.session_idle_minutes * 60 or age > settings.session_absolute_hours * 3600:
        sign_out()
        flash(_("Du har loggats ut eftersom sessionen tog slut. Logga in igen."), "info")
        return
    if now - float(session.get("seen_ts", 0)) > 30:  # don't rewrite the cookie every request
        session["seen_ts"] = now


def _refuse_unsafe_paths() -> None:
    """A URL whose path holds characters no id or reference has (NUL, which PostgreSQL
    cannot compare, among them) names nothing: 404, before any query."""
    if has_unsafe_characters(request.path):
        abort(404)


def sign_out() -> None:
    """End the session on the server (its id is worth nothing after); the language stays."""
    lang = session.get("lang")
    sessions.renew(current_app, session)
    session.clear()
    if lang:
        session["lang"] = lang


def current_agent() -> Agent | None:
    if "agent" in g:
        return cast(Agent | None, g.agent)
    stored = session.get("agent")
    agent: Agent | None = None
    name: str | None = None
    if stored:
        if stored["kind"] == AgentKind.PERSON.value:
            person = db().get(Person, stored["id"])
            if person is not None and _roles_changed_since_login(person):
                sign_out()
                flash(_("Dina behörigheter har ändrats. Logga in igen."), "info")
            elif person is not None:
                agent = Agent(AgentKind.PERSON, person.id, person.personnummer)
                name = person.full_name
        elif stored["kind"] == AgentKind.STAFF.value:
            staff = db().get(StaffMember, stored["id"])
            if staff is not None and staff.is_active:
                agent = Agent(
                    AgentKind.STAFF,
                    staff.id,
                    staff.personnummer,
                    is_caseworker=staff.is_caseworker,
                    is_intake_clerk=staff.is_intake_clerk,
                )
                name = staff.name
    g.agent, g.agent_name = agent, name
    return agent


def _roles_changed_since_login(person: Person) -> bool:
    """Whether the person's roles or permissions changed after this session's login (the
    change ended every session of theirs begun before it: ``app.access.changelog``)."""
    changed = last_change_dt(db(), person.id)
    return changed is not None and float(session.get("login_ts", 0)) < changed.timestamp()


def signed_in() -> Agent:
    """The agent of a view behind ``login_required``."""
    agent = current_agent()
    if agent is None:
        abort(401)
    return agent


def _is_site_path(target: str) -> bool:
    if any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in target) or "\\" in target:
        return False
    parts = urlsplit(target)
    path = target.split("?", 1)[0].split("#", 1)[0]  # as given: urlsplit eats "///"
    return not parts.scheme and not parts.netloc and path.startswith("/") and "//" not in path


_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Control and format characters (C0, C1, NUL, bidirectional and zero-width ones), and
line and paragraph separators: never in a path the login sends a browser to."""
_MAX_NEXT = 2000


def safe_next(target: str | None) -> str:
    """Only a path of this site (no open redirect); "" for none or anything else (the login
    then sends the person to their start page).

    A path: starts with one ``/``, has no ``//`` in it, no backslash, no scheme or host and
    no control characters – checked on the value as given and again after each round of
    percent-decoding (``/%5Cevil.example`` and ``/%2F%2Fevil`` are refused like
    ``/\\evil.example`` and ``//evil``), since browsers and proxies decode and treat ``\\``
    as ``/``."""
    if not target or len(target) > _MAX_NEXT:
        return ""
    candidate = target
    for _round in range(4):
        if not _is_site_path(candidate):
            return ""
        decoded = unquote(candidate)
        if decoded == candidate:
            return target
        candidate = decoded
    return ""  # encoded over and over: no page of this site


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_agent() is None:
            flash(_("Logga in med e-legitimation för att fortsätta."), "info")
            return redirect(url_for("eid.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


class _Problem(Protocol):
    @property
    def field(self) -> str: ...

    @property
    def code(self) -> str: ...


def attach_problem(form: Any, problem: _Problem) -> None:
    """Show a service's ``FormProblem`` next to its field (or as a message)."""
    field = getattr(form, problem.field, None)
    message = labels.problem_message(problem.code)
    if field is not None:
        field.errors = [*field.errors, message]
    else:
        flash(message, "error")


def _agent_required(allowed: Callable[[Agent], bool]) -> Callable[[F], F]:
    """A view only for signed-in agents that ``allowed`` accepts (403 for others)."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            agent = current_agent()
            if agent is None or not allowed(agent):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


person_required = _agent_required(lambda agent: agent.kind is AgentKind.PERSON)
"""For the employers' pages: a signed-in person (not SPV staff)."""
caseworker_required = _agent_required(lambda agent: agent.is_caseworker)
intake_clerk_required = _agent_required(lambda agent: agent.is_intake_clerk)


def csv_download(body: str, filename: str) -> Response:
    """A CSV file to save (``exports.to_csv``'s text), never kept by a cache."""
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in_name() -> str | None:
    """The signed-in person's name, as read with their agent (no query of its own)."""
    current_agent()
    return cast(str | None, g.agent_name)


MAX_ID = 2**31 - 1
"""The largest id a URL may carry: PostgreSQL's ``integer``, every table's primary key."""


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` in every route: a whole number from 0 to :data:`MAX_ID`, so that a
    huge id is a 404 from the routing, never a database error (500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        kwargs["max"] = min(kwargs["max"], MAX_ID)
        super().__init__(map, *args, **kwargs)


def audit_denied(status: int, agent: Agent | None) -> None:
    """Record a refused request (403, or a 404 from a view: another person's or employer's
    object, or one that does not exist) as ``access.denied``: who, which page (endpoint,
    method, path) and which object (the URL's values). In a short transaction of its own,
    after the request's own work is rolled back, so the record is kept whatever the request
    did not."""
    if request.url_rule is None:  # no page at that address: nothing was refused
        return
    values = {key: str(value) for key, value in (request.view_args or {}).items()}
    with runtime().unit_of_work() as audit_session:
        record_event(
            audit_session,
            actor=agent.audit_label if agent else "anonymous",
            action="access.denied",
            object_type=(request.endpoint or "")[:32],
            object_id=",".join(f"{k}={v}" for k, v in sorted(values.items()))[:64],
            data={
                "status": status,
                "endpoint": request.endpoint,
                "method": request.method,
                "path": request.path[:500],  # not the query: it may hold a search
                "values": values,
                "remote_addr": request.remote_addr,
            },
        )


_CSRF_TEXTS = (
    _l("Sidan har varit öppen för länge"),
    _l("Sidan har varit öppen för länge. Ladda om sidan och försök igen."),
)
_ERROR_TEXTS = {
    400: (
        _l("Det gick inte att skicka sidan"),
        _l("Uppgifterna kunde inte tas emot. Ladda om sidan och försök igen."),
    ),
    403: (
        _l("Du har inte behörighet"),
        _l("Du har inte behörighet till den här sidan med din roll."),
    ),
    404: (
        _l("Sidan finns inte"),
        _l("Sidan eller uppgiften finns inte, eller så har du inte tillgång till den."),
    ),
    413: (
        _l("Filen är för stor"),
        _l("Det du skickade är större än tjänsten tar emot (högst %(mb)s MB)."),
    ),
    429: (
        _l("För många försök"),
        _l("Du har gjort det här för många gånger på kort tid. Vänta en stund och försök igen."),
    ),
    500: (_l("Något gick fel"), _l("Ett tekniskt fel uppstod. Försök igen om en stund.")),
}
"""Heading and explanation of each error page; a missing or stale CSRF token (say, a form
left open past the session) has its own."""


def _error_texts(error: HTTPException) -> tuple[str, str]:
    heading, explanation = (
        _CSRF_TEXTS if isinstance(error, CSRFError) else _ERROR_TEXTS.get(error.code or 500)
    ) or _ERROR_TEXTS[500]
    limit_mb = runtime().settings.intake_max_file_bytes // (1024 * 1024)
    return str(heading), str(explanation).replace("%(mb)s", str(limit_mb))


def _rollback_request() -> None:
    """Undo the request's work (its session is closed: used again, it starts afresh)."""
    if "db" in g:
        g.db.close()


def error_page(error: HTTPException) -> Any:
    """Every error page in the site's layout, in the person's language; a refused request
    (403, a view's 404) is audited first."""
    code = error.code or 500
    if code in (403, 404):
        try:
            agent = current_agent()  # who, before the request's work is undone
            _rollback_request()
            audit_denied(code, agent)
        except Exception:  # the refusal is still given; the failure is logged
            current_app.logger.exception("access.denied could not be recorded")
    _rollback_request()
    heading, explanation = _error_texts(error)
    try:
        body = render_template("error.html", heading=heading, explanation=explanation)
    except Exception:  # the layout itself failed (the database is down, say)
        current_app.logger.exception("error page could not be rendered")
        body = f"<!doctype html><title>{code}</title><h1>{heading}</h1><p>{explanation}</p>"
    return body, code


def _private(response: Any) -> bool:
    """Whether a response must never be kept by a browser or proxy: everything shown to a
    signed-in person (but the stylesheets and scripts), and every document download (PDF,
    CSV, scan images and attachments, signed in or not)."""
    if response.headers.get("Content-Disposition") or response.mimetype in (
        "application/pdf",
        "text/csv",
        "image/jpeg",
        "image/png",
        "image/tiff",
    ):
        return request.endpoint != "static"
    return "agent" in session and request.endpoint != "static"


HSTS = "max-age=31536000"
"""Browsers reach the product over https only, for a year after each visit (the header is
sent only when ``PUBLIC_BASE_URL`` is https)."""


def init_app(app: Flask) -> None:
    observability.init_app(app)  # first: its request id is on everything after it
    app.jinja_env.filters["mask_pnr"] = mask_personnummer
    app.jinja_env.filters["pnr"] = format_personnummer
    app.jinja_env.filters["orgnr"] = format_orgnr
    app.jinja_env.filters["local"] = local_time
    app.jinja_env.filters["bdi"] = isolate
    labels.register(app.jinja_env.globals)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {
            "current_agent": current_agent,
            "signed_in_name": signed_in_name,
            "settings": runtime().settings,
            "get_locale": get_locale,
        }

    app.before_request(_refuse_unsafe_paths)
    app.before_request(_enforce_session_timeouts)
    for code in (400, 403, 404, 413, 429, 500):
        app.register_error_handler(code, error_page)

    @app.after_request
    def security_headers(response: Any) -> Any:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if runtime().settings.https:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if _private(response):
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
            response.headers.pop("ETag", None)
        return response
