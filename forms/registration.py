"""Anmälan – behörig beställare (registration of an orderer)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length

from forms.validators import Orgnr, Personnummer


class RegistrationForm(FlaskForm):
    orgnr = StringField(
        _l("Organisationsnummer"),
        description=_l("Arbetsgivarens organisationsnummer, tio siffror."),
        validators=[InputRequired(_l("Ange organisationsnummer.")), Orgnr()],
    )
    personnummer = StringField(
        _l("Personnummer"),
        description=_l("Personnummer eller samordningsnummer för den som anmäls."),
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    given_name = StringField(
        _l("Förnamn"), validators=[InputRequired(_l("Ange förnamn.")), Length(max=100)]
    )
    family_name = StringField(
        _l("Efternamn"), validators=[InputRequired(_l("Ange efternamn.")), Length(max=100)]
    )
    email = EmailField(
        _l("E-postadress i tjänsten"),
        validators=[
            InputRequired(_l("Ange e-postadress.")),
            Email(_l("Ange en giltig e-postadress.")),
            Length(max=254),
        ],
    )
    role = RadioField(
        _l("Roll"),
        choices=[
            SelectChoice("orderer", _l("Behörig beställare")),
            SelectChoice("delegated_orderer", _l("Delegerad behörig beställare")),
        ],
        default="orderer",
        description=_l(
            "En delegerad behörig beställare sköter handhavandet i självbetjäningstjänsterna. "
            "Rollen som företrädare för arbetsgivaren går inte att delegera."
        ),
        validators=[InputRequired(_l("Välj roll."))],
    )
    signatory_name = StringField(
        _l("Firmatecknarens namn"),
        validators=[InputRequired(_l("Ange firmatecknarens namn.")), Length(max=200)],
    )
    signatory_personnummer = StringField(
        _l("Firmatecknarens personnummer"),
        description=_l("Den som får skriva under för arbetsgivaren."),
        validators=[InputRequired(_l("Ange firmatecknarens personnummer.")), Personnummer()],
    )
