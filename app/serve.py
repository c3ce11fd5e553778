"""``behorighet serve``: the production web entry, gunicorn running the app.

Workers, threads and the address come from ``Settings`` (WEB_WORKERS, WEB_THREADS,
WEB_BIND); SIGHUP reloads the workers gracefully (gunicorn's own), SIGTERM stops after the
requests in flight. The app is made once per worker process, after the fork (database
pools and broker connections are not shared across processes)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from app.config import Settings


class WebServer(BaseApplication):
    """gunicorn, configured from ``Settings`` rather than from a file or its own CLI."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.settings = settings
        self.options = {
            "bind": settings.web_bind,
            "workers": settings.web_workers,
            "threads": settings.web_threads,
            "worker_class": "gthread",
            "graceful_timeout": 30,
            "timeout": 60,
            "accesslog": "-",
            **options,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        from app import create_app

        return create_app(self.settings)
