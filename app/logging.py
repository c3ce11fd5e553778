"""Logging: one JSON object per line in production, readable lines in the demo; personnummer
always masked; the request id of the web request (or of the request that queued an actor's
message) on every record.

structlog's loggers and the standard library's (dramatiq, gunicorn, pyHanko…) go through
the same processors and one handler on the root logger, so every line has the same keys:
``time``, ``level``, ``logger``, ``message``, ``request_id`` (when there is one) and the
event's own (a request's line: ``route``, ``method``, ``status``, ``duration``,
``client_ip``)."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import structlog

from app.core.ids import mask_personnummer_in_text

REQUEST_ID = "request_id"
"""The key of the request id: in the log records, in a message's options, on an outbox row."""

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,63}")


def valid_request_id(value: str | None) -> str | None:
    """``value`` when it may serve as a request id (what a proxy sends: a UUID, a hex or
    base64 token; at most 64 characters, nothing that could forge a log line, nothing that
    reads as a personnummer: the id is logged unmasked, to be found again), else None."""
    if value and _VALID_REQUEST_ID.fullmatch(value) and mask_personnummer_in_text(value) == value:
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The request id bound in this thread (a web request, or an actor running its message)."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return str(value) if value else None


def bind_request_id(request_id: str | None) -> None:
    """Bind (or, with None, unbind) the request id of what this thread is doing now."""
    if request_id:
        structlog.contextvars.bind_contextvars(**{REQUEST_ID: request_id})
    else:
        structlog.contextvars.unbind_contextvars(REQUEST_ID)


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    previous = current_request_id()
    bind_request_id(request_id)
    try:
        yield
    finally:
        bind_request_id(previous)


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {
        k: mask_personnummer_in_text(v) if isinstance(v, str) and k != REQUEST_ID else v
        for k, v in event.items()
    }


def _level_name(_logger: Any, name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    level = event.get("level") or name
    event["level"] = "warning" if level == "warn" else str(level).lower()
    return event


_HANDLER_NAME = "behorighet"


def configure_logging(json_logs: bool, stream: IO[str] | None = None) -> None:
    """Send structlog's and the standard library's records at INFO and above to ``stream``
    (standard error): JSON lines when ``json_logs``, else readable ones."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    last: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        _level_name,
        structlog.processors.format_exc_info,
        _mask,
    ]
    if json_logs:
        last.append(structlog.processors.EventRenamer("message"))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[*last, renderer]
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for chatty in ("httpx", "httpcore", "pika", "weasyprint.progress", "fontTools"):
        # a line per request, frame or rendering step: warnings only
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
