"""The forms of Hantera behörigheter: the employer chosen, a person, permissions, scopes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    EmailField,
    Field,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from forms.validators import FutureDay, Personnummer, SafeForm, strip_whitespace

REASON_HINT = _l("Skälet sparas i loggen över ändringar.")


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def reason_field() -> TextAreaField:
    return TextAreaField(
        _l("Skäl (frivilligt)"),
        description=REASON_HINT,
        filters=[strip_whitespace],
        validators=[Optional(), Length(max=500)],
    )


class EmployerChoiceForm(SafeForm):
    employer_id = SelectField(_l("Arbetsgivare"), coerce=int)


class PersonForm(SafeForm):
    """A person to add: an existing one is found by personnummer."""

    personnummer = StringField(
        _l("Personnummer"),
        description=_l("Personnummer eller samordningsnummer, 12 siffror."),
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    given_name = StringField(
        _l("Förnamn"),
        filters=[strip_whitespace],
        validators=[InputRequired(_l("Ange förnamn.")), Length(max=100)],
    )
    family_name = StringField(
        _l("Efternamn"),
        filters=[strip_whitespace],
        validators=[InputRequired(_l("Ange efternamn.")), Length(max=100)],
    )
    email = EmailField(
        _l("E-postadress i arbetet"),
        description=_l("Hit skickar vi besked om behörigheter."),
        filters=[strip_whitespace],
        validators=[
            InputRequired(_l("Ange e-postadress.")),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )


def ends_on_field(label: str, description: str | None = None) -> DateField:
    """The planned end of a time-limited role or permission (``app.access.mandates``)."""
    return DateField(
        label,
        description=description
        or _l("För en konsult eller ett vikariat. Lämna tomt om det gäller tills vidare."),
        validators=[Optional(), FutureDay()],
    )


class PermissionsForm(SafeForm):
    """A user's permissions, as the set of ``service:code_id`` boxes ticked."""

    permissions = MultiCheckboxField(_l("Behörigheter"), choices=[], validate_choice=True)
    ends_on = ends_on_field(_l("Nya behörigheter upphör den (frivilligt)"))
    reason = reason_field()


class NewUserForm(PersonForm):
    permissions = MultiCheckboxField(
        _l("Behörigheter"),
        choices=[],
        validators=[InputRequired(_l("Välj minst en behörighet."))],
    )
    ends_on = ends_on_field(_l("Behörigheterna upphör den (frivilligt)"))
    reason = reason_field()


class ExtendForm(SafeForm):
    """A new planned end for a time-limited role or permissions, in one action ("Förläng")."""

    ends_on = ends_on_field(
        _l("Ny dag då det upphör"), _l("Lämna tomt om det ska gälla tills vidare.")
    )
    reason = reason_field()


def scope_choices() -> list[SelectChoice]:
    return [
        SelectChoice("all", _l("Alla arbetsgivarkoder")),
        SelectChoice("chosen", _l("Valda arbetsgivarkoder")),
    ]


class ScopeForm(SafeForm):
    scope = RadioField(
        _l("Arbetsgivarkoder"),
        choices=scope_choices(),
        default="all",
        validators=[InputRequired(_l("Välj vilka arbetsgivarkoder rollen gäller."))],
    )
    codes = MultiCheckboxField(_l("Valda arbetsgivarkoder"), choices=[], coerce=int)
    reason = reason_field()

    def validate_codes(self, field: Field) -> None:
        if self.scope.data == "chosen" and not field.data:
            raise ValidationError(_l("Välj minst en arbetsgivarkod."))


class AdministratorForm(PersonForm, ScopeForm):
    ends_on = ends_on_field(_l("Rollen upphör den (frivilligt)"))


class ReasonForm(SafeForm):
    reason = reason_field()


class DecisionForm(SafeForm):
    decision = HiddenField(validators=[InputRequired()])
    reason = reason_field()


class RequestForm(SafeForm):
    service = SelectField(_l("Tjänst"), validators=[InputRequired(_l("Välj tjänst."))])
    code_id = SelectField(
        _l("Arbetsgivarkod"), coerce=int, validators=[InputRequired(_l("Välj arbetsgivarkod."))]
    )
    message = TextAreaField(
        _l("Meddelande till administratörerna (frivilligt)"),
        filters=[strip_whitespace],
        validators=[Optional(), Length(max=500)],
    )
