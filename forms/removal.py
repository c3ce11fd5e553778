"""Ta bort behörig beställare: who is removed, why, and an optional replacement."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from app.registrations.data import OrdererToRemove, RemovalReason
from forms.common import NAME, PersonFields
from forms.validators import Personnummer, SafeForm


class OrdererToRemoveForm(SafeForm):
    reason = RadioField(
        _l("Varför ska den behöriga beställaren tas bort?"),
        choices=[
            SelectChoice("self", _l("Jag tar bort mig själv som behörig beställare")),
            SelectChoice("left", _l("Personen har slutat eller ska inte längre ha rollen")),
        ],
        validators=[InputRequired(_l("Välj varför."))],
    )
    personnummer = StringField(
        _l("Personnummer"),
        description=_l("Den behöriga beställare som ska tas bort."),
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    given_name = StringField(_l("Förnamn"), validators=[InputRequired(_l("Ange förnamn.")), *NAME])
    family_name = StringField(
        _l("Efternamn"), validators=[InputRequired(_l("Ange efternamn.")), *NAME]
    )

    def validate(self, extra_validators: dict | None = None) -> bool:
        """Removing oneself: the person comes from the e-ID login, not from the fields."""
        if self.reason.data == "self":
            return bool(self.reason.validate(self)) and bool(
                self.csrf_token.validate(self) if hasattr(self, "csrf_token") else True
            )
        return bool(super().validate(extra_validators))


def orderer_to_remove(form: Any) -> OrdererToRemove:
    """The orderer a form with ``OrdererToRemoveForm``'s fields names."""
    return OrdererToRemove(
        RemovalReason(form.reason.data),
        form.personnummer.data,
        form.given_name.data or "",
        form.family_name.data or "",
    )


class ReplacementChoiceForm(SafeForm):
    wants_replacement = RadioField(
        _l("Vill du anmäla en ny behörig beställare i samma ärende?"),
        description=_l("Det bör alltid finnas en behörig beställare hos arbetsgivaren."),
        choices=[SelectChoice("yes", _l("Ja")), SelectChoice("no", _l("Nej"))],
        validators=[InputRequired(_l("Välj ja eller nej."))],
    )


class ReplacementForm(ReplacementChoiceForm, PersonFields):
    """The replacement's fields count only when the answer is yes."""

    def validate(self, extra_validators: dict | None = None) -> bool:
        if self.wants_replacement.data == "no":
            return bool(self.wants_replacement.validate(self)) and bool(
                self.csrf_token.validate(self) if hasattr(self, "csrf_token") else True
            )
        return bool(super().validate(extra_validators))
