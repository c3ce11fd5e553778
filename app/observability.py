"""What operations see of the web tier: a request id on every request (and its log lines,
and the pipeline messages it queues), one JSON log line per request, and ``/metrics`` in
Prometheus's text format.

The request id is the ``X-Request-ID`` the reverse proxy sent when it is a valid one, else a
new one; the response echoes it. ``/metrics`` counts requests by route (the URL rule, not
the path: ``/errands/<int:errand_id>``) and status, times them, and adds what the pipeline
measures (``workflows.metrics``). It answers only with ``Authorization: Bearer
<METRICS_TOKEN>``; without a token set, only in the demo and the tests, never in
production."""

from __future__ import annotations

import hmac
import os
import time

import structlog
from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from app.logging import bind_request_id, new_request_id, valid_request_id
from workflows.metrics import PipelineCollector
from workflows.runtime import Runtime

log = structlog.get_logger("app.requests")

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED = "<unmatched>"
"""The route of a request that matched none (a 404): never the raw path, which is anyone's."""

REQUESTS = Counter(
    "behorighet_http_requests_total",
    "Requests answered, by route (the URL rule), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "behorighet_http_request_duration_seconds",
    "Time to answer a request, by route (the URL rule) and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _begin() -> None:
    g.request_started = time.perf_counter()
    g.request_id = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    bind_request_id(g.request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id is None:  # a request refused before ours ran: still numbered
        request_id = new_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    duration = time.perf_counter() - g.get("request_started", time.perf_counter())
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    LATENCY.labels(route, request.method).observe(duration)
    log.info(
        "request",
        request_id=request_id,
        method=request.method,
        route=route,
        status=response.status_code,
        duration=round(duration, 4),
        client_ip=request.remote_addr,
    )
    return response


def _end(_exc: BaseException | None) -> None:
    bind_request_id(None)


def _refusal(token: str | None, open_without_token: bool) -> int | None:
    """401 without a bearer token, 403 with a wrong one (or in production with none set)."""
    if not token:
        return None if open_without_token else 403
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return 401
    if not hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode()):
        return 403
    return None


def metrics() -> Response:
    runtime: Runtime = current_app.extensions["behorighet"]
    settings = runtime.settings
    refusal = _refusal(settings.metrics_token, bool(settings.stand_ins or settings.testing))
    if refusal == 401:
        return Response(
            "A bearer token is needed.\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    if refusal is not None:
        abort(refusal)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)  # every process's files: web workers and workers
    else:
        counted = REGISTRY
    body = generate_latest(counted) + generate_latest(current_app.extensions["metrics_live"])
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Register the request id, the request's log line and metrics, and ``/metrics``."""
    live = CollectorRegistry(auto_describe=False)
    live.register(PipelineCollector(app.extensions["behorighet"]))
    app.extensions["metrics_live"] = live
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
