"""Reaching the simulator in the process: the BankID client's transport in the demo and
the tests (whatever the port, and without a single-threaded server waiting on itself)."""

from __future__ import annotations

import contextvars
from typing import Any

import httpx


class _IsolatedWSGI:
    """Calls a WSGI app in an empty ``contextvars`` context.

    Flask reuses the current app context for a request made from inside another request
    of the same app; the simulator would then share the caller's ``g`` and database
    session (and commit it). A fresh context gives the inner request its own.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        def call() -> list[bytes]:
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        return contextvars.Context().run(call)


def in_process_transport(wsgi_app: Any) -> httpx.WSGITransport:
    """An httpx transport that serves BankID calls from this app's own simulator."""
    return httpx.WSGITransport(app=_IsolatedWSGI(wsgi_app))
