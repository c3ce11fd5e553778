"""Hostile input, generated (hypothesis), over every form and every API body (issue 14,
item 2): no form's validation fails on anything typed into any field, and accepts only
text it may store; the texts people type on the registration, on the caseworker's errand
and on the clerk's paper form come back on the page (and in the PDF) exactly as typed or
are refused with a message; no page that changes anything (every POST route) does so
without its CSRF token; the permission API answers every body with a result or a problem,
never a 500."""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from wtforms import Field, TextAreaField

from app.access.models import EmployerCode, PermissionRequest
from app.api import clients
from app.api.models import Scope
from app.audit.models import AuditEvent
from app.core.text import has_unsafe_characters
from app.documents.render import render_receipt
from app.registrations.data import RemovalData
from app.registrations.models import Errand, ErrandComment
from tests.conftest import ANNA, DAVID, INGRID, login
from tests.factories import in_review
from tests.integration.test_input_characters import FORMS
from tests.sample_forms import CREATED, REMOVAL, REMOVAL_DATA
from tests.support import csrf_token, pdf_page_texts, post_step, walk_registration

NASTY = [
    "\x00",
    "\r\n# Rubrik",
    "\u202eevil",
    "a\u200bb",
    "٢٠٠٠",
    "１９８５０７０４９８５９",
    "<script>alert(1)</script>",
    "'; DROP TABLE person; --",
    "{{ 7*7 }}",
    "x" * 300,
    "محمد علي",
    "Ünïcødé ✓",
]
NAMES = st.text(alphabet=st.characters(categories=("L", "M", "Zs", "Pd")), min_size=1, max_size=40)
"""Names in any script, with marks, spaces and dashes."""
TYPED = st.one_of(NAMES, st.text(max_size=80), st.sampled_from(NASTY))
FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Few examples each (the whole suite stays within minutes), the same ones every run."""


def _shown(page: str, typed: str) -> bool:
    """``typed`` on ``page`` as typed (escaped as the templates do, ends trimmed as the
    forms store it)."""
    return str(escape(typed.strip())) in page


# --- every form ------------------------------------------------------------------------


def _inputs(form: FlaskForm) -> list[Field]:
    return [field for field in form if field.type != "CSRFTokenField"]


@pytest.mark.parametrize("form_class", FORMS, ids=[f.__name__ for f in FORMS])
@FAST
@given(data=st.data())
def test_no_form_fails_on_anything_typed_and_accepts_only_storable_text(
    app: Flask, form_class: type[FlaskForm], data: st.DataObject
) -> None:
    with app.test_request_context(method="POST"):
        names = [field.name for field in _inputs(form_class(meta={"csrf": False}))]
        typed = MultiDict(
            [(name, data.draw(TYPED, label=name)) for name in names if data.draw(st.booleans())]
        )
        form = form_class(formdata=typed, meta={"csrf": False})
        for field in form:
            if getattr(field, "choices", ()) is None:
                field.choices = []  # type: ignore[attr-defined]
        if form.validate():
            for field in _inputs(form):
                multiline = isinstance(field, TextAreaField)
                for text in field.raw_data or []:
                    assert not has_unsafe_characters(text, multiline=multiline), field.name
        else:
            assert all(str(message) for message in _messages(form.errors)), form.errors


def _messages(errors: Any) -> list[Any]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list | tuple):
        return [m for value in errors for m in _messages(value)]
    return [errors]


# --- what a page stores, it shows as typed ---------------------------------------------


@FAST
@given(
    given_name=st.one_of(NAMES, NAMES, NAMES, TYPED),
    family_name=st.one_of(NAMES, NAMES, NAMES, TYPED),
    title=st.one_of(NAMES, NAMES, NAMES, TYPED),
    phone=st.one_of(st.just("070-123 45 67"), st.just(""), st.just(""), TYPED),
)
def test_the_registration_shows_the_person_as_typed_or_refuses_it(
    client: FlaskClient,
    session: Session,
    given_name: str,
    family_name: str,
    title: str,
    phone: str,
) -> None:
    with client.session_transaction() as browser:
        signed_in = "agent" in browser
    if not signed_in:
        login(client, session, DAVID)
        client.reference = walk_registration(client)  # type: ignore[attr-defined]
    step = f"/anmalan-behorig-bestallare/{client.reference}/person"  # type: ignore[attr-defined]
    person = {
        "personnummer": "198507049859",
        "given_name": given_name,
        "family_name": family_name,
        "email": "fredrik.falk@provverket.se",
        "role": "orderer",
        "title": title,
        "phone": phone,
    }
    response = post_step(client, step, person)
    assert response.status_code in (200, 302, 400), response.status_code
    event(f"status {response.status_code}")
    if response.status_code == 302:
        summary = client.get(
            f"/anmalan-behorig-bestallare/{client.reference}/granska"  # type: ignore[attr-defined]
        ).get_data(as_text=True)
        assert _shown(summary, f"{given_name.strip()} {family_name.strip()}"), summary
        assert _shown(summary, title)
    else:
        assert 'id="error-summary"' in response.get_data(as_text=True)


@FAST
@given(body=st.one_of(TYPED, st.text(alphabet=st.sampled_from("ab \r\n\t#*<>&"), max_size=60)))
def test_a_caseworkers_note_is_shown_as_typed_or_refused(
    client: FlaskClient, session: Session, body: str
) -> None:
    with client.session_transaction() as browser:
        signed_in = "agent" in browser
    if not signed_in:
        errand = in_review(session)
        session.commit()
        client.reference = errand.reference  # type: ignore[attr-defined]
        login(client, session, INGRID, staff=True)
    reference = client.reference  # type: ignore[attr-defined]
    page = client.get(f"/handlaggning/{reference}").get_data(as_text=True)
    before = _comments(session, reference)
    response = client.post(
        f"/handlaggning/{reference}/anteckning", data={"csrf_token": csrf_token(page), "body": body}
    )
    assert response.status_code in (200, 302, 400), response.status_code
    event(f"status {response.status_code}")
    after = _comments(session, reference)
    if response.status_code == 302 and after != before:
        assert after[-1] == body.strip()
        page = client.get(f"/handlaggning/{reference}").get_data(as_text=True)
        assert _shown(page, body), body
    else:
        assert after == before


PRINTABLE = st.text(
    alphabet=st.sampled_from([*"AaÅåÄäÖöÉéÜüßØøÆæŁłŠšZz -'<>&\"#*+|\\"]), min_size=1, max_size=30
).filter(str.strip)
"""Names in Latin letters with the characters HTML and Markdown give a meaning."""


@settings(FAST, max_examples=10)
@given(given_name=PRINTABLE, family_name=PRINTABLE, employer=PRINTABLE)
def test_the_receipt_prints_the_names_as_typed(
    given_name: str, family_name: str, employer: str
) -> None:
    removal = RemovalData.from_json(
        {**REMOVAL, "given_name": given_name, "family_name": family_name, "employer_name": employer}
    )
    pdf = render_receipt(
        dataclasses.replace(REMOVAL_DATA, form=removal), lang="sv", received_dt=CREATED
    )
    text = " ".join(pdf_page_texts(pdf))
    folded = " ".join(text.split())
    assert f"{' '.join(f'{given_name} {family_name}'.split())}, 19850704-9859" in folded
    assert f"{' '.join(employer.split())}, 202100-4920" in folded


CECILIA, BERTIL = "197205119824", "199001019810"  # a user; an administrator
ACCESS = "/hantera-behorigheter"


@FAST
@given(
    message=st.one_of(TYPED, st.text(alphabet=st.sampled_from("ab \r\n\t#*<>&'\""), max_size=60))
)
def test_a_permission_request_reaches_the_administrator_as_typed_or_is_refused(
    client: FlaskClient, session: Session, message: str
) -> None:
    administrator = getattr(client, "administrator", None)
    if administrator is None:
        login(client, session, CECILIA)
        administrator = client.administrator = client.application.test_client()  # type: ignore[attr-defined]
        login(administrator, session, BERTIL)
    session.execute(delete(PermissionRequest))  # each example asks afresh
    session.commit()
    code_id = session.scalars(select(EmployerCode.id).where(EmployerCode.code == "A1002")).one()
    page = client.get(ACCESS).get_data(as_text=True)
    response = client.post(
        f"{ACCESS}/be-om-behorighet",
        data={
            "csrf_token": csrf_token(page),
            "service": "statistics",
            "code_id": str(code_id),
            "message": message,
        },
    )
    assert response.status_code in (200, 302, 400), response.status_code
    session.expire_all()
    stored = session.scalars(select(PermissionRequest.message)).one_or_none()
    event("stored" if stored is not None else "refused")
    if stored is not None:
        assert stored == message.strip()
        requests = administrator.get(f"{ACCESS}/forfragningar").get_data(as_text=True)
        assert _shown(requests, message)
    else:
        assert has_unsafe_characters(message, multiline=True) or len(message.strip()) > 500


def _comments(session: Session, reference: str) -> list[str]:
    session.expire_all()
    return list(
        session.scalars(
            select(ErrandComment.body)
            .join(Errand, Errand.id == ErrandComment.errand_id)
            .where(Errand.reference == reference)
            .order_by(ErrandComment.id)
        )
    )


# --- no change without the CSRF token, on every page that changes anything ---------------


API_PATHS = ("/api/", "/bankid-simulator/rp/")


def _post_paths(app: Flask) -> list[str]:
    """Every POST route of the site, its ids filled in (not the APIs, which take tokens, not
    cookies: the permission API and the BankID simulator's stand-in for BankID's)."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()) or rule.rule.startswith(API_PATHS):
            continue
        path = re.sub(r"<int:[^>]+>", "1", rule.rule)
        paths.append(re.sub(r"<(?:[^:>]+:)?[^>]+>", "BB-7K3M-Q9XT", path))
    return sorted(set(paths))


def _changes(session: Session) -> int:
    """Audit events but the recorded refusals (every change writes one)."""
    session.expire_all()
    return (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action != "access.denied")
        )
        or 0
    )


@pytest.mark.parametrize("who", [ANNA, INGRID])
def test_no_page_changes_anything_without_its_csrf_token(
    app: Flask, client: FlaskClient, session: Session, who: str
) -> None:
    errand = in_review(session)
    session.commit()
    login(client, session, who, staff=who == INGRID)
    paths = _post_paths(app)
    assert len(paths) > 40
    before = _changes(session)
    for path in paths:
        path = path.replace("BB-7K3M-Q9XT", errand.reference)
        response = client.post(path, data={"body": "x", "given_name": "Bo", "decision": "grant"})
        assert response.status_code == 400, (path, response.status_code)
        assert _changes(session) == before, path
        with client.session_transaction() as browser:  # still signed in: a refusal, not a logout
            assert "agent" in browser, path


# --- every API body --------------------------------------------------------------------


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TYPED,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TYPED, inner, max_size=3),
    max_leaves=8,
)
CHECK = {
    "subject": "197205119824",
    "service": "invoices",
    "access": "read",
    "employer_code": "A1001",
}


def _a_check() -> st.SearchStrategy[Any]:
    """A valid check with some of its fields replaced or added, or anything."""
    changed = st.fixed_dictionaries(
        {},
        optional={key: st.one_of(JSON, TYPED) for key in [*CHECK, "extra"]},
    ).map(lambda changes: {**CHECK, **changes})
    return st.one_of(changed, changed, JSON)


@FAST
@given(
    check=_a_check(),
    checks=st.one_of(st.lists(_a_check(), max_size=4), JSON),
    raw=st.one_of(st.none(), st.binary(max_size=60), TYPED.map(str.encode)),
    query=st.dictionaries(
        st.sampled_from(["after", "limit", "x"]), st.one_of(TYPED, st.integers().map(str))
    ),
    person=st.one_of(TYPED, st.just("197205119824")),
)
def test_the_api_answers_every_body_with_a_result_or_a_problem(
    client: FlaskClient,
    session: Session,
    check: Any,
    checks: Any,
    raw: bytes | None,
    query: dict[str, str],
    person: str,
) -> None:
    token = getattr(client, "api_token", None)
    if token is None:
        _client, token = clients.add_client(session, "fakturatjansten", frozenset(Scope))
        session.commit()
        client.api_token = token  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token}"}
    for path, body in (("/api/v1/check", check), ("/api/v1/check/batch", {"checks": checks})):
        if raw is None:
            response = client.post(path, json=body, headers=auth)
        else:
            response = client.post(path, data=raw, headers=auth, content_type="application/json")
        assert response.status_code in (200, 400, 415, 422), (path, response.status_code)
        if response.status_code == 200:
            answer = response.get_json()
            results = answer.get("results", [answer])
            assert all(isinstance(r["allowed"], bool) and r["reason"] for r in results)
        else:
            assert response.content_type == "application/problem+json"
            assert response.get_json()["title"]
    for path in ("/api/v1/changes", f"/api/v1/persons/{quote(person, safe='')}/permissions"):
        response = client.get(path, query_string=query, headers=auth)
        assert response.status_code in (200, 400, 404, 422), (path, response.status_code)
        assert response.content_type in ("application/json", "application/problem+json")


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "197205119824\n"},
        {"subject": "１９７２０５１１９８２４"},
        {"subject": "١٩٧٢٠٥١١٩٨٢٤"},
        {"employer_code": "A1001\n"},
    ],
)
def test_an_id_with_a_line_break_or_other_digits_is_a_problem(
    client: FlaskClient, session: Session, change: dict[str, str]
) -> None:
    _client, token = clients.add_client(session, "fakturatjansten", frozenset(Scope))
    session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/v1/check", json=CHECK | change, headers=auth)
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    if "subject" in change:
        path = f"/api/v1/persons/{quote(change['subject'])}/permissions"
        refused = client.get(path, headers=auth)  # not a person's list: a problem
        assert refused.status_code in (400, 404, 422)
        assert refused.content_type == "application/problem+json"
