"""Caseworker decisions and notes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

REJECTION_CHOICES = [
    SelectChoice("signatory_not_entitled", _l("Den som skrivit under får inte teckna firma")),
    SelectChoice("signature_missing", _l("Underskrift saknas")),
    SelectChoice("not_an_orderer", _l("Personen är inte behörig beställare")),
    SelectChoice("duplicate", _l("Ärendet är redan hanterat i ett annat ärende")),
    SelectChoice("incomplete", _l("Uppgifter saknas och kompletteringen kom inte in")),
    SelectChoice("other", _l("Annat skäl")),
]


class DecisionForm(FlaskForm):
    """Approve, claim, release and retry carry only the CSRF token."""


class RejectionForm(FlaskForm):
    reason_code = SelectField(
        _l("Skäl"), choices=REJECTION_CHOICES, validators=[InputRequired(_l("Välj ett skäl."))]
    )
    reason = TextAreaField(
        _l("Förklaring till den som skickade in ärendet"),
        validators=[InputRequired(_l("Skriv en förklaring.")), Length(max=2000)],
    )


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("Intern anteckning"),
        validators=[InputRequired(_l("Skriv en anteckning.")), Length(max=4000)],
    )


class ReassignForm(FlaskForm):
    staff_id = SelectField(
        _l("Ge ärendet till"), coerce=int, choices=[], validators=[InputRequired()]
    )
