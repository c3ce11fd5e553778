"""Field validators for Swedish id numbers; they also normalise the field's data."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import Field
from wtforms.validators import ValidationError

from app.core.ids import InvalidIdNumber, normalise_orgnr, normalise_personnummer


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


def strip_whitespace(value: object) -> object:
    """A field filter: text without leading and trailing whitespace (blank becomes empty)."""
    return value.strip() if isinstance(value, str) else value
