"""Fields both form families share: the employer, a person with a role, the signatory."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, EmailField, RadioField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, Regexp

from app.access.models import Role
from app.registrations.data import CoSignatoryDetails, PersonDetails, SignatoryDetails
from forms.validators import FutureDay, Orgnr, Personnummer, SafeForm, strip_whitespace

NAME = [Length(max=100)]


def role_choices() -> list[SelectChoice]:
    return [
        SelectChoice("orderer", _l("Behörig beställare")),
        SelectChoice("delegated_orderer", _l("Delegerad behörig beställare")),
    ]


class EmployerForm(SafeForm):
    orgnr = StringField(
        _l("Organisationsnummer"),
        description=_l("Arbetsgivarens organisationsnummer, till exempel 202100-5489."),
        validators=[InputRequired(_l("Ange organisationsnummer.")), Orgnr()],
    )


class PersonFields(SafeForm):
    """The person registered as (delegated) orderer."""

    personnummer = StringField(
        _l("Personnummer"),
        description=_l("Personnummer eller samordningsnummer, 12 siffror."),
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    given_name = StringField(_l("Förnamn"), validators=[InputRequired(_l("Ange förnamn.")), *NAME])
    family_name = StringField(
        _l("Efternamn"), validators=[InputRequired(_l("Ange efternamn.")), *NAME]
    )
    title = StringField(
        _l("Titel"),
        description=_l("Till exempel personalchef eller ekonomichef."),
        validators=[InputRequired(_l("Ange titel.")), *NAME],
    )
    email = EmailField(
        _l("E-postadress i arbetet"),
        description=_l("Hit skickar vi besked om behörigheter."),
        validators=[
            InputRequired(_l("Ange e-postadress.")),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )
    phone = TelField(
        _l("Telefonnummer i arbetet"),
        validators=[
            Optional(),
            Regexp(r"^\+?[0-9 ()-]{6,20}$", message=_l("Ange ett telefonnummer med siffror.")),
        ],
    )
    ends_on = DateField(
        _l("Rollen upphör den (frivilligt)"),
        description=_l(
            "För en tidsbegränsad roll, till exempel en konsult eller ett vikariat. Lämna "
            "tomt om rollen gäller tills vidare."
        ),
        validators=[Optional(), FutureDay()],
    )
    role = RadioField(
        _l("Roll"),
        choices=role_choices(),
        default="orderer",
        description=_l(
            "En delegerad behörig beställare sköter handhavandet i självbetjäningstjänsterna "
            "åt den behöriga beställaren. Rollen som företrädare för arbetsgivaren går inte "
            "att delegera."
        ),
        validators=[InputRequired(_l("Välj roll."))],
    )

    def person_details(self) -> PersonDetails:
        return PersonDetails(
            personnummer=self.personnummer.data,
            given_name=self.given_name.data or "",
            family_name=self.family_name.data or "",
            email=self.email.data or "",
            role=Role(self.role.data),
            title=self.title.data or "",
            phone=self.phone.data or "",
            ends_on=self.ends_on.data.isoformat() if self.ends_on.data else "",
        )


class SignatoryForm(SafeForm):
    signatory_name = StringField(
        _l("Namn"),
        validators=[InputRequired(_l("Ange namnet på den som skriver under.")), Length(max=200)],
    )
    signatory_personnummer = StringField(
        _l("Personnummer"),
        validators=[InputRequired(_l("Ange personnummer.")), Personnummer()],
    )
    signatory_title = StringField(
        _l("Befattning"),
        description=_l("Till exempel generaldirektör, rektor eller styrelseledamot."),
        validators=[InputRequired(_l("Ange befattning.")), *NAME],
    )
    signatory_email = EmailField(
        _l("E-postadress (frivilligt)"),
        description=_l(
            "Behövs om firmatecknaren ska skriva under senare: vi skickar då en länk hit."
        ),
        validators=[
            Optional(),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )

    def signatory_details(self) -> SignatoryDetails:
        return SignatoryDetails(
            self.signatory_name.data or "",
            self.signatory_personnummer.data,
            self.signatory_title.data or "",
            (self.signatory_email.data or "").strip(),
        )

    # Where the employer signs two jointly: the second signatory (the server asks for it
    # only then, ``app.registrations.joint.co_signatory_for``).
    co_signatory_name = StringField(_l("Den andra firmatecknarens namn"), validators=[*NAME])
    co_signatory_personnummer = StringField(
        _l("Den andra firmatecknarens personnummer"), validators=[Optional(), Personnummer()]
    )
    co_signatory_title = StringField(_l("Den andra firmatecknarens befattning"), validators=NAME)
    co_signatory_email = EmailField(
        _l("Den andra firmatecknarens e-postadress (frivilligt)"),
        validators=[
            Optional(),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )

    def co_signatory_details(self) -> CoSignatoryDetails | None:
        """The second signatory typed in, if any."""
        if not self.co_signatory_personnummer.data:
            return None
        return CoSignatoryDetails(
            self.co_signatory_name.data or "",
            self.co_signatory_personnummer.data,
            self.co_signatory_title.data or "",
            (self.co_signatory_email.data or "").strip(),
        )


class InvitationForm(SafeForm):
    """Send the form to the signatory named in it, to sign later with their own e-ID."""

    email = EmailField(
        _l("Firmatecknarens e-postadress"),
        description=_l("Firmatecknaren får en länk, loggar in med BankID och skriver under."),
        validators=[
            InputRequired(_l("Ange firmatecknarens e-postadress.")),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )
    co_email = EmailField(
        _l("Den andra firmatecknarens e-postadress"),
        description=_l("Arbetsgivaren tecknas av två i förening: båda får en egen länk."),
        validators=[
            Optional(),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
            Length(max=254),
        ],
    )


class DeclineForm(SafeForm):
    """The invited signatory declines to sign, and says why."""

    reason = TextAreaField(
        _l("Varför skriver du inte under?"),
        description=_l("Den som skickade blanketten får se ditt svar."),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv varför du inte skriver under.")), Length(max=2000)],
    )


class CompletionAnswerForm(SafeForm):
    """The submitter's answer to SPV's request for more (komplettering)."""

    answer = TextAreaField(
        _l("Ditt svar till SPV"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv ditt svar.")), Length(max=4000)],
    )
