"""Caseworker decisions and notes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from app.registrations.models import REJECTION_REASON_NAMES
from forms.validators import strip_whitespace

REJECTION_CHOICES = [
    SelectChoice(reason.value, _l(name))  # the names are marked for extraction with N_
    for reason, name in REJECTION_REASON_NAMES.items()
]


class DecisionForm(FlaskForm):
    """Approve, claim, release and retry carry only the CSRF token."""


class RejectionForm(FlaskForm):
    reason_code = SelectField(
        _l("Skäl"), choices=REJECTION_CHOICES, validators=[InputRequired(_l("Välj ett skäl."))]
    )
    reason = TextAreaField(
        _l("Förklaring till den som skickade in ärendet"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv en förklaring.")), Length(max=2000)],
    )


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("Intern anteckning"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv en anteckning.")), Length(max=4000)],
    )


class CompletionRequestForm(FlaskForm):
    message = TextAreaField(
        _l("Vad behöver den som skickade in ärendet komplettera med?"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv vad som behöver kompletteras.")), Length(max=2000)],
    )


class ReassignForm(FlaskForm):
    staff_id = SelectField(
        _l("Ge ärendet till"), coerce=int, choices=[], validators=[InputRequired()]
    )
