"""Schemathesis against the API's own OpenAPI document: every operation, examples made
from the document (a fixed number, derandomised), sent with a registered client's key,
checked against the document (status codes, content types, bodies) and for server errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from sqlalchemy.orm import Session

from app.api import clients
from app.api.models import Scope


@pytest.fixture
def api_token(session: Session) -> Iterator[str]:
    _client, token = clients.add_client(session, "schemathesis", frozenset(Scope))
    session.commit()
    assert token is not None
    yield token


OPERATIONS = [
    "POST /api/v1/check",
    "POST /api/v1/check/batch",
    "GET /api/v1/persons/{personnummer}/permissions",
    "GET /api/v1/employers/{employer}/contacts",
    "GET /api/v1/changes",
]


def test_the_document_has_every_operation(app: Flask) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    assert sorted(r.ok().label for r in schema.get_all_operations()) == sorted(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_api_keeps_to_its_document(
    app: Flask, api_token: str, label: str, mode: GenerationMode
) -> None:
    """Valid requests are answered as documented; invalid ones are refused with a 4xx
    problem, never a server error."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    [operation] = [r.ok() for r in schema.get_all_operations() if r.ok().label == label]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def keeps_to_it(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {api_token}"})

    keeps_to_it()
