"""Caseworker decisions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length


class DecisionForm(FlaskForm):
    """Approve carries only the CSRF token; reject needs a reason."""


class RejectionForm(FlaskForm):
    reason = TextAreaField(
        _l("Skäl till avslag"),
        validators=[InputRequired(_l("Ange skälet till avslaget.")), Length(max=2000)],
    )
