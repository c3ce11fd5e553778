"""Text the database cannot store (NUL and the other C0 and C1 control characters) or
that disguises itself (bidirectional overrides, invisible characters) is refused where it
is typed, with a clear error on the field: every form's every text field, one home
(``forms.validators.SafeForm``, asking ``app.core.text``), never a 500 or a failure later
in the pipeline (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from wtforms import StringField, TextAreaField

import forms
from app.casework import service as casework
from app.core.text import has_unsafe_characters
from app.registrations.models import Errand, ErrandComment
from forms.casework import approval_form
from forms.validators import UNSAFE_TEXT, SafeForm
from tests.conftest import DAVID, INGRID, login
from tests.factories import caseworker, in_review
from tests.support import csrf_token, post_step

BAD = ["Anna\x00", "Anna\x07", "Anna\x9b", "Anna\u202eannA", "Anna\u200b"]
"""NUL, another C0 control, a C1 control, a right-to-left override, a zero-width space."""
UNSAFE_SV = "Texten innehåller tecken som inte är tillåtna"


def _form_classes() -> list[type[FlaskForm]]:
    for module in pkgutil.iter_modules(forms.__path__):
        importlib.import_module(f"forms.{module.name}")
    found: list[type[FlaskForm]] = []
    todo: list[type[FlaskForm]] = [FlaskForm]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("forms.") and sub not in found:
                found.append(sub)
            todo.append(sub)
    return found


FORMS = _form_classes()


def test_every_form_is_a_safe_form() -> None:
    assert len(FORMS) > 20
    assert [f.__name__ for f in FORMS if not issubclass(f, SafeForm)] == []


def test_line_breaks_are_allowed_in_text_areas_only() -> None:
    assert not has_unsafe_characters("Rad ett\r\nRad två\tindrag", multiline=True)
    assert has_unsafe_characters("Rad ett\nRad två")


def _text_fields(form: FlaskForm) -> list[str]:
    return [
        f.name
        for f in form
        if isinstance(f, StringField | TextAreaField) and f.type not in ("CSRFTokenField",)
    ]


@pytest.mark.parametrize("form_class", FORMS, ids=[f.__name__ for f in FORMS])
def test_every_text_field_of_every_form_refuses_unsafe_characters(
    app: Flask, form_class: type[FlaskForm]
) -> None:
    with app.test_request_context(method="POST"):
        if form_class.__name__ == "Approval":
            return
        fields = _text_fields(form_class(meta={"csrf": False}))
        for name in fields:
            for bad in BAD:
                form = form_class(formdata=MultiDict({name: bad}), meta={"csrf": False})
                for field in form:
                    if getattr(field, "choices", ()) is None:
                        field.choices = []  # type: ignore[attr-defined]
                assert not form.validate()
                assert form[name].errors == [str(UNSAFE_TEXT)], (name, bad, form.errors)


def test_the_approval_notes_refuse_unsafe_characters(app: Flask) -> None:
    with app.test_request_context(method="POST"):
        form = approval_form({"not_in_signatory_register": "x"})
        form.process(MultiDict({"note_not_in_signatory_register": "OK\x00"}))
        form.meta.csrf = False
        assert not form.validate()
        assert form.errors["note_not_in_signatory_register"] == [str(UNSAFE_TEXT)]


def _refused(response: Any) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code in (200, 400), response.status_code
    assert UNSAFE_SV in text and 'id="error-summary"' in text


PERSON = {
    "personnummer": "198507049859",
    "given_name": "Fredrik",
    "family_name": "Falk",
    "title": "HR-chef",
    "email": "fredrik.falk@provverket.se",
    "phone": "070-123 45 67",
    "role": "orderer",
}
SIGNATORY = {
    "signatory_name": "Eva Ek",
    "signatory_personnummer": "195210039847",
    "signatory_title": "Generaldirektör",
}


def test_nul_in_each_field_of_the_registration_is_refused_on_postgresql(
    client: FlaskClient, session: Session
) -> None:
    login(client, session, DAVID)
    _refused(post_step(client, "/anmalan-behorig-bestallare", {"orgnr": "202100-4920\x00"}))
    started = post_step(client, "/anmalan-behorig-bestallare", {"orgnr": "202100-4920"})
    base = started.headers["Location"].rsplit("/", 1)[0]
    assert post_step(client, f"{base}/arbetsgivarkoder", {"scope": "all"}).status_code == 302
    for step, values in (("person", PERSON), ("underskrift", SIGNATORY)):
        for name in values:
            if name == "role":
                continue
            _refused(post_step(client, f"{base}/{step}", {**values, name: values[name] + "\x00"}))
        assert post_step(client, f"{base}/{step}", values).status_code == 302
    stored = session.scalars(select(Errand.form_data).where(Errand.reference == base[-12:]))
    assert "\x00" not in str(list(stored))


def test_nul_in_the_caseworkers_fields_is_refused_on_postgresql(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session, signatory_personnummer="198112189876")
    assert casework.claim(session, caseworker(session, INGRID), errand)
    session.commit()
    login(client, session, INGRID, staff=True)
    url = f"/handlaggning/{errand.reference}"
    token = csrf_token(client.get(url).get_data(as_text=True))
    posts = {
        "anteckning": {"body": "Ring\x00 bolaget"},
        "komplettering": {"message": "Titel\x00?"},
        "avsla": {"reason_code": "other", "reason": "Fel\x00"},
        "godkann": {"note_not_in_signatory_register": "Kollat\x00"},
    }
    for action, data in posts.items():
        _refused(client.post(f"{url}/{action}", data={**data, "csrf_token": token}))
    session.expire_all()
    assert session.get_one(Errand, errand.id).state.value == "in_review"
    assert (
        session.scalars(select(ErrandComment).where(ErrandComment.errand_id == errand.id)).all()
        == []
    )


def test_nul_in_a_url_or_a_search_is_no_server_error(client: FlaskClient, session: Session) -> None:
    login(client, session, INGRID, staff=True)
    assert client.get("/handlaggning/BB-0000%00-0000").status_code == 404
    assert client.get("/handlaggning?arbetsgivare=Prov%00verket").status_code == 200
    assert client.get("/handlaggning/arbetsgivare?q=Prov%00").status_code == 200
