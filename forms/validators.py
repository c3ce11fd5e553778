"""Field validators for Swedish id numbers (they also normalise the field's data), and the
base of every form: no field takes text the database cannot store or that disguises
itself (``app.core.text``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Field, TextAreaField
from wtforms.validators import ValidationError

from app.core.i18n import swedish_time
from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer
from app.core.text import has_unsafe_characters

UNSAFE_TEXT = _l(
    "Texten innehåller tecken som inte är tillåtna (till exempel styrtecken eller osynliga "
    "tecken). Skriv den igen utan dem."
)


class Personnummer:
    """Personnummer or samordningsnummer, 10 or 12 digits; stored as 12 digits."""

    def __call__(self, form: Any, field: Field) -> None:
        try:
            field.data = normalise_personnummer(field.data or "")
        except InvalidIdNumber:
            raise ValidationError(
                _l("Ange ett giltigt personnummer eller samordningsnummer, t.ex. 19121212-1212.")
            ) from None


class Orgnr:
    """Organisationsnummer of a legal person; stored as 10 digits."""

    def __call__(self, form: Any, field: Field) -> None:
        try:
            field.data = normalise_orgnr(field.data or "")
        except InvalidIdNumber:
            raise ValidationError(
                _l("Ange ett giltigt organisationsnummer, t.ex. 202100-5489.")
            ) from None


class FutureDay:
    """A day after today (Swedish time): a planned end (``ends_on``)."""

    def __call__(self, form: Any, field: Field) -> None:
        if field.data is not None and field.data <= swedish_time(datetime.now(UTC)).date():
            raise ValidationError(_l("Ange en dag efter i dag."))


def strip_whitespace(value: object) -> object:
    """A field filter: text without leading and trailing whitespace (blank becomes empty)."""
    return value.strip() if isinstance(value, str) else value


def _texts(field: Field) -> list[str]:
    """What the person sent in the field, as typed (before filters and coercion)."""
    return [value for value in (field.raw_data or []) if isinstance(value, str)]


class SafeForm(FlaskForm):
    """The base of every form: a field whose text holds control (NUL, C0, C1), invisible
    or bidirectional-override characters gets a clear error and the form is invalid, so
    such text never reaches the database (line breaks and tabs are allowed in text areas).
    """

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            multiline = isinstance(field, TextAreaField)
            if any(has_unsafe_characters(t, multiline=multiline) for t in _texts(field)):
                field.errors = [str(UNSAFE_TEXT)]
                valid = False
        return valid
