"""The permission API (issue 12): clients and their credentials, scopes, checks, a person's
permissions, an employer's contacts, problems in two languages, the access log."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.access import management as m
from app.access.authority import Access
from app.access.models import EmployerCode, SelfService
from app.api import clients, service
from app.api.models import ApiAccessLog, ApiClient, Scope
from app.cli import main
from app.privacy import access_log
from tests.conftest import ANNA, REDIS_URL, person_id

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


def _certificate() -> tuple[str, str]:
    """A self-signed client certificate (PEM) and its SHA-256 fingerprint."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakturatjansten.spv.example")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return pem, certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def test_a_client_certificate_from_a_trusted_proxy_or_the_server(
    make_app: Callable[..., Flask], session: Session
) -> None:
    pem, fingerprint = _certificate()
    clients.add_client(
        session, "pensionstjansten", ALL_SCOPES, cert_fingerprint=fingerprint, with_token=False
    )
    session.commit()
    app = make_app(
        api_client_cert_header="X-SSL-Client-Cert", api_trusted_proxies=frozenset({"10.0.0.5"})
    )
    client = app.test_client()
    header = {"X-SSL-Client-Cert": quote(pem)}
    proxied = client.post(
        "/api/v1/check",
        json=cecilia_check(),
        headers=header,
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert proxied.status_code == 200 and proxied.get_json()["allowed"] is True
    # The same header from anyone but the proxy is not believed.
    forged = client.post(
        "/api/v1/check",
        json=cecilia_check(),
        headers=header,
        environ_base={"REMOTE_ADDR": "1.2.3.4"},
    )
    assert forged.status_code == 401
    # A server terminating TLS itself passes the certificate in the WSGI environ.
    direct = client.post(
        "/api/v1/check", json=cecilia_check(), environ_base={"SSL_CLIENT_CERT": pem}
    )
    assert direct.status_code == 200
    other, _ = _certificate()
    unknown = client.post(
        "/api/v1/check", json=cecilia_check(), environ_base={"SSL_CLIENT_CERT": other}
    )
    assert unknown.status_code == 401


def test_a_revoked_client_is_refused(client: FlaskClient, session: Session) -> None:
    token = register(session)
    assert ask(client, token, **cecilia_check())["allowed"] is True
    clients.revoke_client(session, "fakturatjansten")
    session.commit()
    response = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token))
    assert response.status_code == 401


def test_each_endpoint_needs_its_scope(client: FlaskClient, session: Session) -> None:
    calls = {
        Scope.CHECK: lambda h: client.post("/api/v1/check", json=cecilia_check(), headers=h),
        Scope.PERSONS: lambda h: client.get(f"/api/v1/persons/{CECILIA}/permissions", headers=h),
        Scope.CONTACTS: lambda h: client.get("/api/v1/employers/A1001/contacts", headers=h),
        Scope.CHANGES: lambda h: client.get("/api/v1/changes", headers=h),
    }
    for scope in Scope:
        token = register(session, f"only-{scope.value}", scopes=frozenset({scope}))
        for other, call in calls.items():
            assert call(bearer(token)).status_code == (200 if other is scope else 403), (
                scope,
                other,
            )


def test_a_persons_permissions_per_employer_and_code(client: FlaskClient, session: Session) -> None:
    token = register(session)
    response = client.get(f"/api/v1/persons/{CECILIA}/permissions", headers=bearer(token))
    assert response.status_code == 200
    [employer] = response.get_json()["employers"]
    assert employer["orgnr"] == "2021005489" and employer["roles"] == []
    by_code = {(p["employer_code"], p["service"]): p["access"] for p in employer["permissions"]}
    assert by_code == {
        ("A1001", "employment_reporting"): ["read", "write"],
        ("A1001", "invoices"): ["read", "write"],
        ("A1002", "invoices"): ["read", "write"],
        ("A1003", "invoices"): ["read"],
    }
    anna = client.get(f"/api/v1/persons/{ANNA}/permissions", headers=bearer(token)).get_json()
    assert anna["employers"][0]["roles"] == [{"role": "orderer", "codes": None}]
    nobody = client.get("/api/v1/persons/190001019999/permissions", headers=bearer(token))
    assert nobody.get_json() == {"subject": "190001019999", "employers": []}
    assert client.get("/api/v1/persons/1234/permissions", headers=bearer(token)).status_code == 400


def test_an_employers_contacts_by_orgnr_or_code(client: FlaskClient, session: Session) -> None:
    token = register(session)
    for key in ("2021005489", "202100-5489", "A1003"):
        response = client.get(f"/api/v1/employers/{key}/contacts", headers=bearer(token))
        assert response.status_code == 200
        body = response.get_json()
        assert body["employer"]["name"] == "Statens testmyndighet"
        assert {(c["name"], c["role"]) for c in body["contacts"]} == {
            ("Anna Andersson", "orderer"),
            ("Bertil Berg", "administrator"),
        }
    # Each contact whose data the answer held is logged as read, by the hash of their
    # personnummer: "who has looked at Anna's data" answers API reads too.
    key = clients.subject_key("test-secret")
    logged = session.scalars(select(ApiAccessLog).order_by(ApiAccessLog.id.desc()).limit(2)).all()
    assert {row.endpoint for row in logged} == {"employer_contacts"}
    assert {row.subject_hash for row in logged} == {
        clients.subject_hash(key, ANNA),
        clients.subject_hash(key, BERTIL),
    }
    assert (
        session.scalar(
            select(func.count())
            .select_from(ApiAccessLog)
            .where(ApiAccessLog.endpoint == "employer_contacts")
        )
        == 6  # three calls, two people each
    )
    looks = access_log.who_looked(session, key, BERTIL)
    assert [look.what for look in looks] == ["employer_contacts"] * 3
    missing = client.get("/api/v1/employers/X999/contacts", headers=bearer(token))
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"


def test_problems_are_titled_in_swedish_or_english(client: FlaskClient, session: Session) -> None:
    swedish = client.post("/api/v1/check", json=cecilia_check())
    assert swedish.get_json()["title"].startswith("Inloggning krävs")
    assert swedish.headers["Content-Language"] == "sv"
    english = client.post(
        "/api/v1/check", json=cecilia_check(), headers={"Accept-Language": "en-GB,en;q=0.8"}
    )
    assert english.get_json()["title"].startswith("Authentication required")
    assert english.headers["Content-Language"] == "en"
    token = register(session)
    bad = client.post(
        "/api/v1/check",
        json=cecilia_check(access="delete"),
        headers={**bearer(token), "Accept-Language": "en"},
    )
    assert bad.status_code == 422
    body = bad.get_json()
    assert body["title"] == "Invalid input" and "access" in str(body["errors"])
    nul = cecilia_check(employer_code="A1\u0000")  # PostgreSQL refuses NUL in text
    assert client.post("/api/v1/check", json=nul, headers=bearer(token)).status_code == 422
    nul_path = client.get("/api/v1/employers/A%00/contacts", headers=bearer(token))
    assert nul_path.status_code == 404  # no path holds a NUL (app.web), not a 500
    assert nul_path.content_type == "application/problem+json"
    for raw in (b"{", b"[]", b"null", b'{"subject": 1}'):
        response = client.post(
            "/api/v1/check", data=raw, content_type="application/json", headers=bearer(token)
        )
        assert response.status_code in (400, 422)
        assert response.content_type == "application/problem+json"
    assert client.get("/api/v1/no-such-thing").content_type == "application/problem+json"


def test_the_rate_limit_per_client(make_app: Callable[..., Flask], session: Session) -> None:
    token = register(session)
    other = register(session, "another")
    client = make_app(api_rate_limit="3 per minute").test_client()
    statuses = [
        client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = client.post(
        "/api/v1/check",
        json=cecilia_check(),
        headers={**bearer(token), "Accept-Language": "en"},
    )
    assert limited.content_type == "application/problem+json"
    assert limited.get_json()["title"].startswith("Too many requests")
    assert "Retry-After" in limited.headers
    ok = client.post("/api/v1/check", json=cecilia_check(), headers=bearer(other))
    assert ok.status_code == 200  # another client has its own count
    # Guessed secrets are counted by address, whatever the guess.
    guesses = [
        client.post(
            "/api/v1/check", json=cecilia_check(), headers=bearer(f"bh_guess{n}")
        ).status_code
        for n in range(4)
    ]
    assert guesses == [401, 401, 401, 429]


def test_the_rate_limit_counts_in_redis_when_configured(
    make_app: Callable[..., Flask], session: Session
) -> None:
    token = register(session)
    limit = f"2 per {secrets.randbelow(10_000) + 100} seconds"  # a count of its own
    first, second = (
        make_app(api_rate_limit=limit, rate_limit_storage_url=REDIS_URL).test_client()
        for _ in range(2)
    )
    # Two web processes share the count through Redis.
    assert (
        first.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 200
    )
    assert (
        second.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 200
    )
    assert (
        first.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 429
    )


def test_the_forms_keep_csrf_and_the_api_needs_none(client: FlaskClient, session: Session) -> None:
    assert client.post("/logga-in", data={"device": "other"}).status_code == 400
    token = register(session)
    assert (
        client.post("/api/v1/check", json=cecilia_check(), headers=bearer(token)).status_code == 200
    )


def test_the_document_and_its_browsable_docs(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert {"/api/v1/check", "/api/v1/changes"} <= set(document["paths"])
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "swagger-ui" in page.get_data(as_text=True)
    for asset in ("vendor/swagger-ui/swagger-ui-bundle.js", "api-docs.js"):
        assert client.get(f"/static/{asset}").status_code == 200  # served here, no CDN


def test_api_client_commands(app: Flask, session: Session) -> None:
    runner = CliRunner()
    info = ScriptInfo(create_app=lambda: app)
    added = runner.invoke(
        main, ["api-client", "add", "kundtjanst", "--scopes", "contacts,check"], obj=info
    )
    assert added.exit_code == 0, added.output
    secret = added.output.strip().splitlines()[-1]
    assert secret.startswith("bh_")
    listed = runner.invoke(main, ["api-client", "list"], obj=info)
    assert "kundtjanst\tcheck,contacts\ttoken" in listed.output and secret not in listed.output
    stored = session.scalars(select(ApiClient).where(ApiClient.name == "kundtjanst")).one()
    assert stored.token_sha256 == clients.token_hash(secret)
    assert runner.invoke(main, ["api-client", "revoke", "kundtjanst"], obj=info).exit_code == 0
    assert "revoked" in runner.invoke(main, ["api-client", "list"], obj=info).output
    bad = runner.invoke(main, ["api-client", "add", "x", "--scopes", "everything"], obj=info)
    assert bad.exit_code != 0 and "unknown scope" in bad.output


def test_a_batch_is_one_query(session: Session) -> None:
    asked = [
        service.CheckRequest(CECILIA, SelfService.INVOICES, Access.READ, code)
        for code in ("A1001", "A1002", "A1003", "B2001", "X9999")
    ] + [service.CheckRequest(ANNA, SelfService.STATISTICS, Access.WRITE, "A1001")]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        results = service.check(connection, asked)
        [single] = service.check(connection, asked[:1])
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert len(statements) == 2  # one for the batch, one for the single check
    assert [r.reason for r in results] == [
        "granted",
        "granted",
        "granted",
        "no_permission",
        "unknown_employer_code",
        "no_permission",
    ]
    assert single == results[0]


def test_a_wrong_method_or_path_is_a_problem(client: FlaskClient, session: Session) -> None:
    token = register(session)
    wrong = client.get("/api/v1/check", headers=bearer(token))
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    assert wrong.content_type == "application/problem+json"
    assert client.get("/api/v1/persons/x/y", headers=bearer(token)).status_code == 404
