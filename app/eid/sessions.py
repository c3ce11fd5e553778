"""Web sessions kept on the server (Flask-Session): the cookie holds only a random id, the
values live in the database (``web_session``) or, when ``SESSION_REDIS_URL`` is set, in
Redis. Logging out and the idle and absolute limits (``app.web``) end a session there, so
a copied cookie is worth nothing after; logging in gives the browser a new id. A change of
the person's roles ends every session of theirs begun before it
(``app.access.changelog.last_change_dt``, asked by ``app.web.current_agent``).

Flask-Session's own SQLAlchemy store needs Flask-SQLAlchemy; the product's database is plain
SQLAlchemy, so the store below is Flask-Session's interface on the product's sessions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import redis
from flask import Flask, Request, Response, g
from flask.sessions import SessionMixin
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from flask_session.redis import RedisSessionInterface
from sqlalchemy import CursorResult, delete, select, update

from app.config import Settings
from app.db import utcnow
from app.eid.models import WebSession
from workflows.runtime import Runtime

COOKIE_NAME = "session"
SECURE_COOKIE_NAME = "__Host-session"
"""Over https: a cookie only this host sets and gets, only over https, for every path."""
KEY_PREFIX = "behorighet-session:"
CLEANUP_EVERY = 500
"""Expired sessions are deleted from the database once in about this many requests."""


def _release_request_transaction() -> None:
    """End the request's own transaction before the store writes in one of its own (on
    SQLite every transaction takes the write lock; the request's session is done by now,
    and what it did not commit is rolled back, as at the end of every request)."""
    if "db" in g:
        g.db.close()


class _EndsOnTheServer(ServerSideSessionInterface):
    """A new id (``renew``) ends the old one in the store when the response is saved, not
    at once: the store writes outside the request's transaction.

    A session read from the store is saved only while it is still there: when another
    request of the same browser ended it meanwhile (logging out, or logging in, which gives
    a new id), the save writes nothing and sends no cookie, so the ended session does not
    come back and the browser keeps the id the other request gave it."""

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        session = super().open_session(app, request)
        # The store keeps the cookie's id only when it found the session under it.
        cookie = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        session.stored_sid = session.sid if cookie == session.sid else None
        return session

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if getattr(session, "ended_meanwhile", False):
            return False
        return super().should_set_cookie(app, session)

    @staticmethod
    def _is_stored(session: ServerSideSession) -> bool:
        """Whether ``session`` is saved over its stored row (rather than as a new one)."""
        return session.sid is not None and session.sid == getattr(session, "stored_sid", None)

    def regenerate(self, session: ServerSideSession) -> None:
        ended = getattr(session, "ended_ids", [])
        session.ended_ids = [*ended, session.sid]
        session.sid = self._generate_sid(self.sid_length)
        session.modified = True

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSideSession)
        _release_request_transaction()
        for sid in getattr(session, "ended_ids", []):
            self._delete_session(self._get_store_id(sid))
        session.ended_ids = []
        super().save_session(app, session, response)


class DatabaseSessionInterface(_EndsOnTheServer):
    """Sessions in the product's database, through its own session factory."""

    ttl = False  # expired rows are deleted now and then (every CLEANUP_EVERY requests)

    def __init__(self, app: Flask, runtime: Runtime) -> None:
        self.runtime = runtime
        super().__init__(app, key_prefix=KEY_PREFIX, cleanup_n_requests=CLEANUP_EVERY)

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        with self.runtime.unit_of_work() as db:
            data = db.scalar(
                select(WebSession.data).where(
                    WebSession.id == store_id, WebSession.expires_dt > utcnow()
                )
            )
        return None if data is None else dict(self.serializer.decode(data))

    def _delete_session(self, store_id: str) -> None:
        with self.runtime.unit_of_work() as db:
            db.execute(delete(WebSession).where(WebSession.id == store_id))

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        data = self.serializer.encode(session)
        expires_dt = utcnow() + session_lifetime
        with self.runtime.unit_of_work() as db:
            if not self._is_stored(session):
                db.add(WebSession(id=store_id, data=data, expires_dt=expires_dt))
                return
            saved = db.execute(
                update(WebSession)
                .where(WebSession.id == store_id)
                .values(data=data, expires_dt=expires_dt)
                .execution_options(synchronize_session=False)
            )
        session.ended_meanwhile = cast(CursorResult[Any], saved).rowcount == 0

    def _delete_expired_sessions(self) -> None:
        with self.runtime.unit_of_work() as db:
            db.execute(delete(WebSession).where(WebSession.expires_dt <= utcnow()))


class RedisSessions(_EndsOnTheServer, RedisSessionInterface):
    """Sessions in Redis (each expires there by itself)."""

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        saved = self.client.set(
            name=store_id,
            value=self.serializer.encode(session),
            ex=session_lifetime,
            xx=self._is_stored(session),
        )
        session.ended_meanwhile = not saved


def init_app(app: Flask, settings: Settings, runtime: Runtime) -> None:
    """Server-side sessions for ``app``, with the cookie's attributes from ``settings``."""
    app.config.update(
        SESSION_COOKIE_NAME=SECURE_COOKIE_NAME if settings.https else COOKIE_NAME,
        SESSION_COOKIE_SECURE=settings.https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        # Stored when changed (the idle check notes use every 30 s), not on every request.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    if settings.session_redis_url:
        app.session_interface = RedisSessions(
            app, client=redis.Redis.from_url(settings.session_redis_url), key_prefix=KEY_PREFIX
        )
    else:
        app.session_interface = DatabaseSessionInterface(app, runtime)


def renew(app: Flask, session: SessionMixin) -> None:
    """A new session id for the browser; the old one ends on the server."""
    interface = app.session_interface
    if isinstance(interface, _EndsOnTheServer) and isinstance(session, ServerSideSession):
        interface.regenerate(session)
