"""Scanned intake: the clerk's upload, manual matching and signature check."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, EmailField, IntegerField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from app.access.models import Role
from app.intake.reading import BLANK_SHEET_REASON
from app.registrations.data import EmployerDetails, PersonDetails, RegistrationData, RemovalData
from forms.common import NAME, EmployerForm, PersonFields, SignatoryForm, role_choices
from forms.removal import OrdererToRemoveForm, orderer_to_remove
from forms.validators import FutureDay, Personnummer, SafeForm, strip_whitespace

YES_NO = [SelectChoice("yes", _l("Ja")), SelectChoice("no", _l("Nej"))]


class UploadForm(SafeForm):
    file = FileField(
        _l("Skannad fil"),
        description=_l("PDF, TIFF, PNG eller JPEG. Flera blanketter i samma fil går bra."),
        validators=[FileRequired(_l("Välj en fil att läsa in."))],
    )


class MatchForm(SafeForm):
    reference = StringField(
        _l("Ärendets referens"),
        description=_l("Som på blanketten, till exempel BB-7K3M-Q9XT."),
        filters=[strip_whitespace],
        validators=[
            DataRequired(_l("Skriv ärendets referens.")),
            Regexp(
                r"(?i)^BB-[0-9A-Z]{4}-[0-9A-Z]{4}$",
                message=_l("En referens ser ut så här: BB-7K3M-Q9XT."),
            ),
        ],
    )
    form_page = IntegerField(
        _l("Sida nummer"),
        default=1,
        validators=[
            InputRequired(_l("Skriv vilken sida i blanketten det är.")),
            NumberRange(1, 9, _l("Skriv vilken sida i blanketten det är.")),
        ],
    )


class DiscardForm(SafeForm):
    """Why pages that were put together do not belong together."""

    reason = StringField(
        _l("Varför läggs sidan åt sidan?"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv varför.")), Length(max=200)],
    )


OTHER_REASON = "other"
SET_ASIDE_REASONS = {
    BLANK_SHEET_REASON: _l("Tom sida"),
    "copy": _l("Kopia av en sida som redan kommit in"),
    "cover_letter": _l("Följebrev eller annan handling"),
    "not_spv": _l("Inte en blankett från SPV"),
    OTHER_REASON: _l("Annat skäl"),
}
"""The reasons a clerk picks from to set a page aside (stored by key; "other" stores the
clerk's own words)."""


class SetAsideForm(SafeForm):
    preset = RadioField(
        _l("Varför läggs sidan åt sidan?"),
        choices=[SelectChoice(key, label) for key, label in SET_ASIDE_REASONS.items()],
        validators=[InputRequired(_l("Välj varför sidan läggs åt sidan."))],
    )
    reason = StringField(
        _l("Annat skäl"),
        filters=[strip_whitespace],
        validators=[Optional(), Length(max=200)],
    )

    def validate_reason(self, field: StringField) -> None:
        if self.preset.data == OTHER_REASON and not field.data:
            raise ValidationError(_l("Skriv varför sidan läggs åt sidan."))

    def chosen_reason(self) -> str:
        """The preset's key, or the clerk's own words for "other"."""
        return str(self.reason.data) if self.preset.data == OTHER_REASON else str(self.preset.data)


class ConfirmForm(SafeForm):
    signature_present = RadioField(
        _l("Är blanketten underskriven för hand?"),
        choices=YES_NO,
        validators=[InputRequired(_l("Svara på om blanketten är underskriven."))],
    )
    signer_is_named = RadioField(
        _l("Är det firmatecknaren som anges i blanketten som har skrivit under?"),
        choices=YES_NO,
        validators=[InputRequired(_l("Svara på om rätt person har skrivit under."))],
    )
    co_signature_present = RadioField(
        _l("Har också den andra firmatecknaren som anges i blanketten skrivit under?"),
        description=_l("Arbetsgivaren tecknas av två i förening: båda ska ha skrivit under."),
        choices=YES_NO,
        validators=[Optional()],
    )
    """Asked only where two sign jointly (the view requires it then)."""
    note = TextAreaField(
        _l("Anteckning till handläggaren (frivillig)"),
        filters=[strip_whitespace],
        validators=[Length(max=1000)],
    )


class PaperRegistrationForm(EmployerForm, PersonFields, SignatoryForm):
    """A blank registration form filled in by hand, typed in by the clerk."""

    employer_codes = StringField(
        _l("Arbetsgivarkoder"),
        description=_l("Som på blanketten, åtskilda med kommatecken. Tomt betyder alla koder."),
        filters=[strip_whitespace],
        validators=[Length(max=500)],
    )

    form_page = IntegerField(
        _l("Vilken sida i blanketten är den skannade sidan?"),
        default=1,
        validators=[
            InputRequired(_l("Skriv vilken sida i blanketten det är.")),
            NumberRange(1, 9, _l("Skriv vilken sida i blanketten det är.")),
        ],
    )

    def codes(self) -> tuple[str, ...]:
        text = self.employer_codes.data or ""
        return tuple(code.strip().upper() for code in text.split(",") if code.strip())

    def registration(self) -> RegistrationData:
        """The registration the clerk typed in."""
        return RegistrationData(
            EmployerDetails(self.orgnr.data),
            self.person_details(),
            self.signatory_details(),
            self.codes(),
            self.co_signatory_details(),
        )


class PaperRemovalForm(EmployerForm, SignatoryForm):
    """A blank removal form filled in by hand, typed in by the clerk; the replacement's
    fields count only when its personnummer is filled in."""

    form_page = PaperRegistrationForm.form_page
    reason = OrdererToRemoveForm.reason
    personnummer = OrdererToRemoveForm.personnummer
    given_name = OrdererToRemoveForm.given_name
    family_name = OrdererToRemoveForm.family_name
    replacement_personnummer = StringField(
        _l("Ny behörig beställare: personnummer"),
        description=_l("Lämna tomt om blanketten inte anmäler någon ny."),
        filters=[strip_whitespace],
        validators=[Optional(), Personnummer()],
    )
    replacement_given_name = StringField(_l("Ny behörig beställare: förnamn"), validators=[*NAME])
    replacement_family_name = StringField(
        _l("Ny behörig beställare: efternamn"), validators=[*NAME]
    )
    replacement_title = StringField(_l("Ny behörig beställare: titel"), validators=[*NAME])
    replacement_email = EmailField(
        _l("Ny behörig beställare: e-postadress i arbetet"),
        filters=[strip_whitespace],
        validators=[Optional(), Email(_l("Ange en giltig e-postadress.")), Length(max=254)],
    )
    replacement_role = RadioField(
        _l("Ny behörig beställare: roll"), choices=role_choices(), default="orderer"
    )
    replacement_ends_on = DateField(
        _l("Ny behörig beställare: rollen upphör den (frivilligt)"),
        validators=[Optional(), FutureDay()],
    )

    def validate(self, extra_validators: dict[str, Any] | None = None) -> bool:
        valid = super().validate(extra_validators)
        if self.replacement_personnummer.data:
            for field in (
                self.replacement_given_name,
                self.replacement_family_name,
                self.replacement_title,
                self.replacement_email,
            ):
                if not (field.data or "").strip():
                    field.errors = [*field.errors, _l("Fyll i den nya behöriga beställaren.")]
                    valid = False
        return valid

    def replacement(self) -> PersonDetails | None:
        if not self.replacement_personnummer.data:
            return None
        return PersonDetails(
            personnummer=self.replacement_personnummer.data,
            given_name=self.replacement_given_name.data or "",
            family_name=self.replacement_family_name.data or "",
            email=self.replacement_email.data or "",
            role=Role(self.replacement_role.data or Role.ORDERER),
            title=self.replacement_title.data or "",
            ends_on=(
                self.replacement_ends_on.data.isoformat() if self.replacement_ends_on.data else ""
            ),
        )

    def removal(self) -> RemovalData:
        """The removal the clerk typed in."""
        return RemovalData(
            EmployerDetails(self.orgnr.data),
            orderer_to_remove(self),
            self.signatory_details(),
            self.replacement(),
            self.co_signatory_details(),
        )
