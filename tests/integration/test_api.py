"""The permission API (issue 12): clients and their credentials, scopes, checks, a person's
permissions, an employer's contacts, problems in two languages, the access log."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.models import EmployerCode, SelfService
from app.api import clients
from app.api.models import ApiAccessLog, Scope
from tests.conftest import ANNA, person_id

BERTIL = "199001019810"
CECILIA = "197205119824"
ALL_SCOPES = frozenset(Scope)


def register(session: Session, name: str = "fakturatjansten", **kwargs: Any) -> str:
    scopes = kwargs.pop("scopes", ALL_SCOPES)
    _client, token = clients.add_client(session, name, scopes, **kwargs)
    session.commit()
    assert token is not None
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(client: FlaskClient, token: str, **check: str) -> dict[str, Any]:
    response = client.post("/api/v1/check", json=check, headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def cecilia_check(**overrides: str) -> dict[str, str]:
    return {
        "subject": CECILIA,
        "service": "invoices",
        "access": "read",
        "employer_code": "A1001",
    } | overrides


def test_a_check_answers_from_the_store(client: FlaskClient, session: Session) -> None:
    token = register(session)
    assert ask(client, token, **cecilia_check()) == {
        "allowed": True,
        "reason": "granted",
        "role": "user",
    }
    assert ask(client, token, **cecilia_check(access="write"))["allowed"] is True
    assert ask(client, token, **cecilia_check(service="statistics")) == {
        "allowed": False,
        "reason": "no_permission",
        "role": None,
    }
    assert ask(client, token, **cecilia_check(subject=ANNA))["reason"] == "no_permission"
    assert ask(client, token, **cecilia_check(employer_code="X9999"))["reason"] == (
        "unknown_employer_code"
    )


def test_a_closed_code_allows_only_reading_invoices(client: FlaskClient, session: Session) -> None:
    token = register(session)
    assert ask(client, token, **cecilia_check(employer_code="A1003"))["allowed"] is True
    writing = ask(client, token, **cecilia_check(employer_code="A1003", access="write"))
    assert writing == {"allowed": False, "reason": "closed_code", "role": None}
    other = ask(client, token, **cecilia_check(employer_code="A1003", service="statistics"))
    assert other["reason"] == "closed_code"


def test_a_removed_permission_is_denied_on_the_next_call(
    client: FlaskClient, session: Session
) -> None:
    token = register(session)
    assert ask(client, token, **cecilia_check())["allowed"] is True
    code_id = session.scalars(select(EmployerCode.id).where(EmployerCode.code == "A1001")).one()
    anna_id = person_id(session, ANNA)
    employer_id = session.get_one(EmployerCode, code_id).employer_id
    actor = m.Actor(m.authority_at(session, anna_id, employer_id), "https://spv.example")
    m.change_permissions(
        session, actor, person_id(session, CECILIA), revoke=[(SelfService.INVOICES, code_id)]
    )
    session.commit()
    assert ask(client, token, **cecilia_check()) == {
        "allowed": False,
        "reason": "no_permission",
        "role": None,
    }


def test_a_batch_answers_in_order(client: FlaskClient, session: Session) -> None:
    token = register(session)
    checks = [
        cecilia_check(),
        cecilia_check(service="statistics"),
        cecilia_check(employer_code="A1003", access="write"),
        cecilia_check(subject=BERTIL),
        cecilia_check(service="employment_reporting"),
    ]
    response = client.post("/api/v1/check/batch", json={"checks": checks}, headers=bearer(token))
    assert response.status_code == 200
    assert [r["reason"] for r in response.get_json()["results"]] == [
        "granted",
        "no_permission",
        "closed_code",
        "no_permission",
        "granted",
    ]
    too_many = client.post(
        "/api/v1/check/batch", json={"checks": [cecilia_check()] * 101}, headers=bearer(token)
    )
    assert too_many.status_code == 422
    assert too_many.content_type == "application/problem+json"


def test_credentials_are_needed(client: FlaskClient, session: Session) -> None:
    register(session)
    for headers in ({}, bearer("bh_not-a-registered-secret"), {"Authorization": "Basic eDp5"}):
        response = client.post("/api/v1/check", json=cecilia_check(), headers=headers)
        assert response.status_code == 401
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_check_is_logged_without_the_personnummer(
    client: FlaskClient, session: Session
) -> None:
    token = register(session)
    before = session.scalar(select(func.count()).select_from(ApiAccessLog))
    ask(client, token, **cecilia_check())
    rows = list(session.scalars(select(ApiAccessLog).order_by(ApiAccessLog.id.desc()).limit(1)))
    assert session.scalar(select(func.count()).select_from(ApiAccessLog)) == (before or 0) + 1
    [row] = rows
    assert row.endpoint == "check" and row.created_dt is not None
    assert row.subject_hash and CECILIA not in row.subject_hash
    assert row.subject_hash == clients.subject_hash(clients.subject_key("test-secret"), CECILIA)


@pytest.mark.parametrize("scope", [Scope.PERSONS])
def test_a_missing_scope_is_forbidden(client: FlaskClient, session: Session, scope: Scope) -> None:
    token = register(session, scopes=frozenset({scope}))
    response = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token))
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
