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
    """A random id (a UUID's hex) that no log reader could take for a personnummer: a run of
    its digits can read as one (say ``…2401890369…``), and the id is logged unmasked."""
    while True:
        request_id = uuid.uuid4().hex
        if mask_personnummer_in_text(request_id) == request_id:
            return request_id


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


def _masked(value: Any) -> Any:
    """``value`` with every personnummer in it masked: in text, in a number written out,
    inside lists, tuples, sets and mappings, and in any other object's ``repr``."""
    if isinstance(value, str):
        return mask_personnummer_in_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        masked = mask_personnummer_in_text(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    if value is None or isinstance(value, bool | float):
        return value
    text = repr(value)  # what the JSON renderer would write for any other object
    masked = mask_personnummer_in_text(text)
    return value if masked == text else masked


def _mask(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: v if k == REQUEST_ID else _masked(v) for k, v in event.items()}


def _level_name(_logger: Any, name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    level = event.get("level") or name
    event["level"] = "warning" if level == "warn" else str(level).lower()
    return event


_HANDLER_NAME = "behorighet"


_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def log_formatter(json_logs: bool) -> logging.Formatter:
    """How a record is written: its keys masked (:func:`_mask`), as one JSON object or a
    readable line."""
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
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED_PROCESSORS, processors=[*last, renderer]
    )


def configure_logging(json_logs: bool, stream: IO[str] | None = None, level: str = "INFO") -> None:
    """Send structlog's and the standard library's records at ``level`` and above to
    ``stream`` (standard error): JSON lines when ``json_logs``, else readable ones."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(log_formatter(json_logs))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in ("httpx", "httpcore", "pika", "weasyprint.progress", "fontTools"):
        # a line per request, frame or rendering step: warnings only
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
