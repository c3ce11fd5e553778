"""The check's hot path (issue 12): on PostgreSQL a check and its access-log row are one
statement on connections of their own; it answers as the store does, logs every check,
sees a removed permission on the next call and survives a dropped connection. The
authenticated client is remembered for a short time, and a revoked one refused after it."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.models import EmployerCode, SelfService
from app.api import clients
from app.api.log_engine import APPLICATION_NAME
from app.api.models import ApiAccessLog, Scope
from tests.conftest import ANNA, PG_ADMIN_URL, PG_TEST_DB, person_id
from tests.integration.test_api import CECILIA, bearer, cecilia_check

pytestmark = pytest.mark.usefixtures("committed_db")


def _register(factory: Callable[[], Session]) -> str:
    with factory() as session:
        _client, token = clients.add_client(session, "hot-path", frozenset({Scope.CHECK}))
        session.commit()
    assert token is not None
    return token


def _logged(factory: Callable[[], Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(ApiAccessLog)) or 0


def _status(client: FlaskClient, token: str) -> int:
    return client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code


def _hot_path_backends() -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (PG_TEST_DB, APPLICATION_NAME),
        ).fetchone()
    return int(row[0]) if row else 0


def test_checks_on_the_hot_path_answer_log_and_follow_changes(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    factory = app.extensions["behorighet"].session_factory
    client = app.test_client()
    token = _register(factory)
    before = _logged(factory)

    answer = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token))
    assert answer.get_json() == {"allowed": True, "reason": "granted", "role": "user"}
    assert _hot_path_backends() >= 1  # answered on the hot path's own connection
    closed = client.post(
        "/api/v1/check",
        json=cecilia_check(employer_code="A1003", access="write"),
        headers=bearer(token),
    ).get_json()
    assert closed == {"allowed": False, "reason": "closed_code", "role": None}
    batch = client.post(
        "/api/v1/check/batch",
        json={"checks": [cecilia_check(), cecilia_check(employer_code="X9999")]},
        headers=bearer(token),
    ).get_json()
    assert [r["reason"] for r in batch["results"]] == ["granted", "unknown_employer_code"]
    # Every check logged: two single checks, a batch about one person (one row).
    assert _logged(factory) == before + 3

    with factory() as session:
        code = session.scalars(select(EmployerCode).where(EmployerCode.code == "A1001")).one()
        actor = m.Actor(
            m.authority_at(session, person_id(session, ANNA), code.employer_id),
            "https://spv.example",
        )
        m.change_permissions(
            session, actor, person_id(session, CECILIA), revoke=[(SelfService.INVOICES, code.id)]
        )
        session.commit()
    after = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).get_json()
    assert after == {"allowed": False, "reason": "no_permission", "role": None}


def test_a_dropped_connection_is_replaced_without_failing_the_call(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    client = app.test_client()
    token = _register(app.extensions["behorighet"].session_factory)
    assert (
        client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 200
    )
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (PG_TEST_DB, APPLICATION_NAME),
        )
    again = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token))
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["allowed"] is True


def test_a_revoked_client_is_refused_once_the_cache_time_has_passed(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(api_client_cache_s=0.5)
    factory = app.extensions["behorighet"].session_factory
    client = app.test_client()
    token = _register(factory)
    assert (
        client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 200
    )
    with factory() as session:
        clients.revoke_client(session, "hot-path")
        session.commit()
    time.sleep(0.6)
    refused = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token))
    assert refused.status_code == 401
