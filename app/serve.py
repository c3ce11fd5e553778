"""``behorighet serve``: the production web entry, gunicorn running the app.

Workers, threads and the address come from ``Settings`` (WEB_WORKERS, WEB_THREADS,
WEB_BIND); SIGHUP reloads the workers gracefully (gunicorn's own), SIGTERM stops after the
requests in flight. The app is made once per worker process, after the fork (database
pools and broker connections are not shared across processes).

Logs: gunicorn's own go through the app's handler (``app.logging``: one JSON object a
line); the app logs each request itself (with its request id), so gunicorn's access log
is off. Metrics: the workers write theirs to ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder
of its own when it is not set) and ``/metrics`` adds them up, with those of the
``behorighet worker`` processes given the same folder."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from app.config import Settings
from app.core.process import freeze_what_is_loaded
from app.logging import configure_logging

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_ROUTED_TO_ROOT = {"handlers": [], "propagate": True}


def metrics_folder() -> str:
    """The folder where every process writes its metrics; made and set in the environment
    (before prometheus_client is imported, in the workers too) when not given."""
    folder = os.environ.get(MULTIPROC_DIR) or tempfile.mkdtemp(prefix="behorighet-metrics-")
    os.makedirs(folder, exist_ok=True)
    os.environ[MULTIPROC_DIR] = folder
    return folder


def _worker_exited(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _worker_started(_worker: Any) -> None:
    """A worker process is ready (the app loaded): what loading made is kept out of the
    garbage collector's full collections (``freeze_what_is_loaded``: else the slowest
    requests of a busy worker), and its intake decoder starts in the background, so that
    the first scanned file uploaded to it does not wait for that (``/skanning``)."""
    from app.intake.decoder import warm_decoder

    freeze_what_is_loaded()
    warm_decoder()


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
            "accesslog": None,  # the app logs each request (``app.observability``)
            "logconfig_dict": {
                "root": {"level": settings.log_level, "handlers": []},
                "loggers": {
                    "gunicorn.error": {**_ROUTED_TO_ROOT, "level": settings.log_level},
                    "gunicorn.access": {**_ROUTED_TO_ROOT, "level": "WARNING"},  # ours instead
                },
            },
            # after gunicorn's logging set-up (which leaves the root logger bare):
            "on_starting": lambda _server: configure_logging(
                json_logs=not (settings.stand_ins or settings.testing), level=settings.log_level
            ),
            "child_exit": _worker_exited,
            "post_worker_init": _worker_started,
            # one control socket per user ($HOME/.gunicorn): two serve processes on a host
            # would take it from each other; nothing here uses it
            "control_socket_disable": True,
            **options,
        }
        metrics_folder()
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        from app import create_app

        return create_app(self.settings)
