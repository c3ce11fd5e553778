"""The caseworker's questions about one person: who has looked at their data, and the
register extract (GDPR art. 15)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from forms.validators import Personnummer, SafeForm, strip_whitespace

PERSONNUMMER_HINT = _l("Personnummer eller samordningsnummer, 12 siffror.")


class AccessLogSearchForm(SafeForm):
    """Vem har tittat på personens uppgifter? The search is itself a view, with its reason."""

    personnummer = StringField(
        _l("Personnummer"),
        description=PERSONNUMMER_HINT,
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    reason = StringField(
        _l("Skäl till sökningen"),
        description=_l("Till exempel diarienumret för begäran. Sparas i loggen."),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv varför du söker.")), Length(max=200)],
    )


class AccessLogExportForm(SafeForm):
    """The same search again, as CSV: the values carried from the answer's page."""

    personnummer = HiddenField(validators=[InputRequired(), Personnummer()])
    reason = HiddenField(filters=[strip_whitespace], validators=[DataRequired(), Length(max=200)])


class ExtractRequestForm(SafeForm):
    """Make a register extract for a person who asked for one."""

    personnummer = StringField(
        _l("Personnummer"),
        description=PERSONNUMMER_HINT,
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    request_note = StringField(
        _l("Begäran"),
        description=_l("Hur och när personen begärde utdraget, och diarienumret."),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Beskriv begäran.")), Length(max=200)],
    )
    language = RadioField(
        _l("Utdragets språk"),
        choices=[SelectChoice("sv", _l("Svenska")), SelectChoice("en", _l("Engelska"))],
        default="sv",
        validators=[InputRequired(_l("Välj språk."))],
    )


class DeliveryForm(SafeForm):
    """The extract has reached the person: how."""

    delivery_note = StringField(
        _l("Hur utdraget lämnades"),
        description=_l("Till exempel: skickat med post till folkbokföringsadressen."),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv hur utdraget lämnades.")), Length(max=500)],
    )
