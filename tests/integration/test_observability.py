"""What operations see: ``/metrics`` (requests by route and status, behind a bearer token),
one JSON log line per request with its request id, and that id on the log lines of the
actors running what the request queued."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import dramatiq
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from app.config import Settings
from app.logging import configure_logging, request_id_bound
from tests.conftest import DAVID, login, sign_with_bankid
from tests.support import wait_for, walk_registration
from workflows.outbox import add_message
from workflows.runtime import Runtime

ROUTE = "/hantera-behorigheter/anvandare/<int:person_id>"


def _requests_counted(client: FlaskClient, **headers: str) -> dict[tuple[str, str, str], float]:
    page = client.get("/metrics", headers=headers)
    assert page.status_code == 200 and page.mimetype == "text/plain"
    counted: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(page.get_data(as_text=True)):
        for sample in family.samples:
            if sample.name == "behorighet_http_requests_total":
                key = (sample.labels["route"], sample.labels["method"], sample.labels["status"])
                counted[key] = sample.value
    return counted


def test_metrics_count_requests_by_route_and_status_not_by_path(client: FlaskClient) -> None:
    before = _requests_counted(client)
    for person_id in (1, 2, 3):  # not signed in: sent to the login page
        client.get(f"/hantera-behorigheter/anvandare/{person_id}")
    client.get("/no-such-page/191212121212")
    after = _requests_counted(client)

    login_redirect = (ROUTE, "GET", "302")
    assert after[login_redirect] - before.get(login_redirect, 0) == 3
    unmatched = ("<unmatched>", "GET", "404")
    assert after[unmatched] - before.get(unmatched, 0) == 1
    assert not [key for key in after if "/1" in key[0] or "1212" in key[0]]


def test_metrics_show_the_pipeline_measures(client: FlaskClient) -> None:
    names = {
        family.name
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    }
    assert {
        "behorighet_http_request_duration_seconds",
        "behorighet_queue_messages",
        "behorighet_broker_up",
        "behorighet_outbox_oldest_undone_age_seconds",
        "behorighet_errands_overdue",
        "behorighet_errands_retrying",
        "behorighet_step_duration_seconds",
        "behorighet_step_failures",
    } <= names


def test_metrics_need_the_bearer_token_when_one_is_set(make_app: Callable[..., Flask]) -> None:
    client = make_app(metrics_token="metrics-token-for-the-test").test_client()
    without = client.get("/metrics")
    assert without.status_code == 401 and without.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert "behorighet_http_requests_total" not in without.get_data(as_text=True)
    allowed = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-the-test"})
    assert allowed.status_code == 200
    assert "behorighet_http_requests_total" in allowed.get_data(as_text=True)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The log lines as production writes them (JSON), into a buffer for the test."""
    buffer = io.StringIO()
    configure_logging(json_logs=True, stream=buffer)
    yield buffer
    configure_logging(json_logs=False)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_a_requests_log_line_is_json_with_its_request_id(
    client: FlaskClient, json_log: io.StringIO
) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a9c"})
    assert given.headers["X-Request-ID"] == "edge-7f3a9c"
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" level=error'})
    made = forged.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    carrying = client.get("/healthz", headers={"X-Request-ID": "req-19121212-1212"})
    assert "1212" not in carrying.headers["X-Request-ID"]  # a personnummer is no request id

    lines = [line for line in _lines(json_log) if line["message"] == "request"]
    first, second, _third = lines
    assert first["request_id"] == "edge-7f3a9c" and second["request_id"] == made
    assert first["route"] == "/healthz" and first["status"] == 200 and first["method"] == "GET"
    assert first["level"] == "info" and first["logger"] == "app.requests"
    assert first["client_ip"] == "127.0.0.1" and isinstance(first["duration"], float)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", first["time"])


def test_a_log_line_never_holds_a_personnummer_in_full(json_log: io.StringIO) -> None:
    import structlog

    structlog.get_logger("app.test").info("looked up 19121212-1212")
    (line,) = _lines(json_log)
    assert "1212-1212" not in json.dumps(line) and line["logger"] == "app.test"


def test_an_actors_log_line_carries_the_id_of_the_request_that_queued_it(
    client: FlaskClient, session: Session, worker: dramatiq.Worker, json_log: io.StringIO
) -> None:
    client.environ_base["HTTP_X_REQUEST_ID"] = "signing-request-42"
    login(client, session, DAVID)
    reference = walk_registration(client)
    sign_with_bankid(client, reference)  # the signature's collect queues the verification

    def verified() -> list[dict[str, Any]]:
        return [
            line
            for line in _lines(json_log)
            if line["message"] == "actor.done" and line.get("actor") == "verify_errand"
        ]

    (line,) = wait_for(verified, timeout=30, message="the verification to run")
    assert line["request_id"] == "signing-request-42" and line["logger"] == "workflows.metrics"


def test_a_message_sent_again_keeps_the_request_id_of_its_request(runtime: Runtime) -> None:
    with request_id_bound("request-before-a-crash"), runtime.unit_of_work() as s:
        queued = add_message(s, "watch_deadlines")
    assert queued.request_id == "request-before-a-crash"
    runtime.broker.flush_all()  # the first send is lost; the sweeper sends it again, later
    assert runtime.relay.sweep(older_than=timedelta(0)) >= 1
    (sent,) = [
        dramatiq.Message.decode(data)
        for queue in runtime.broker.queues.values()
        for data in list(queue.queue)
    ]
    assert sent.options["request_id"] == "request-before-a-crash"
    assert sent.options["outbox_id"] == queued.id


def test_log_level_is_a_setting_and_a_wrong_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", " warning ")
    settings = Settings.from_env()
    assert settings.log_level == "WARNING"
    buffer = io.StringIO()
    configure_logging(json_logs=True, stream=buffer, level=settings.log_level)
    try:
        logging.getLogger("app.requests").info("request")
        logging.getLogger("app.requests").warning("slow request")
        assert [line["message"] for line in _lines(buffer)] == ["slow request"]
        make_app(log_level="ERROR")  # an app sets the level it is given
        assert logging.getLogger().level == logging.ERROR
    finally:
        configure_logging(json_logs=False)
    assert logging.getLogger().level == logging.INFO
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"):
        Settings.from_env()
