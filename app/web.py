"""What views share: the request's database session, the signed-in agent, access checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from flask import (
    Flask,
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
from sqlalchemy.orm import Session

from app import labels
from app.access.models import Person
from app.core.agents import Agent, AgentKind
from app.core.i18n import local_time
from app.core.ids import format_orgnr, format_personnummer, mask_personnummer
from app.core.text import has_unsafe_characters
from app.db import utcnow
from app.eid.service import BankIdClient
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
        message = next(m for kind, m in refusals.items() if isinstance(refusal, kind))
        flash(message(refusal), "error")
        return False, None
    commit()
    return True, result


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
    """A new session for the signed-in agent (the old one, and its CSRF token, are dropped)."""
    lang = session.get("lang")
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
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def current_agent() -> Agent | None:
    if "agent" in g:
        return cast(Agent | None, g.agent)
    stored = session.get("agent")
    agent: Agent | None = None
    if stored:
        if stored["kind"] == AgentKind.PERSON.value:
            person = db().get(Person, stored["id"])
            if person is not None:
                agent = Agent(AgentKind.PERSON, person.id, person.personnummer)
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
    g.agent = agent
    return agent


def signed_in() -> Agent:
    """The agent of a view behind ``login_required``."""
    agent = current_agent()
    if agent is None:
        abort(401)
    return agent


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


def signed_in_name() -> str | None:
    agent = current_agent()
    if agent is None:
        return None
    if agent.kind is AgentKind.PERSON:
        person = db().get(Person, agent.id)
        return person.full_name if person else None
    staff = db().get(StaffMember, agent.id)
    return staff.name if staff else None


def init_app(app: Flask) -> None:
    app.jinja_env.filters["mask_pnr"] = mask_personnummer
    app.jinja_env.filters["pnr"] = format_personnummer
    app.jinja_env.filters["orgnr"] = format_orgnr
    app.jinja_env.filters["local"] = local_time
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
        if "agent" in session:
            response.headers.setdefault("Cache-Control", "no-store")
        return response
