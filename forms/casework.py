"""Caseworker decisions and notes."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from app.registrations.models import REJECTION_REASON_NAMES
from forms.validators import SafeForm, strip_whitespace

REJECTION_REASON_NAMES_L = {
    reason: _l(name)  # the names are marked for extraction with N_
    for reason, name in REJECTION_REASON_NAMES.items()
}
REJECTION_CHOICES = [SelectChoice(r.value, name) for r, name in REJECTION_REASON_NAMES_L.items()]


class DecisionForm(SafeForm):
    """Claim, release and retry carry only the CSRF token."""


NOTE_PREFIX = "note_"


class ApprovalForm(SafeForm):
    """Approve: a note on each finding that needs review (built by ``approval_form``)."""

    def notes(self) -> dict[str, str]:
        """The notes by finding code."""
        return {
            name.removeprefix(NOTE_PREFIX): field.data or ""
            for name, field in self._fields.items()
            if name.startswith(NOTE_PREFIX)
        }


def approval_form(findings: Mapping[str, str]) -> ApprovalForm:
    """The approval form for an errand whose findings that need review are ``findings``
    (finding code → its words, the field's label)."""

    class Approval(ApprovalForm):
        pass

    for code, label in findings.items():
        setattr(
            Approval,
            NOTE_PREFIX + code,
            TextAreaField(
                label,
                description=_l(
                    "Skriv hur du har granskat det här. Anteckningen sparas i historiken."
                ),
                filters=[strip_whitespace],
                validators=[
                    DataRequired(_l("Skriv hur du har granskat det här innan du godkänner.")),
                    Length(max=1000),
                ],
            ),
        )
    return Approval()


class RejectionForm(SafeForm):
    reason_code = RadioField(
        _l("Skäl"), choices=REJECTION_CHOICES, validators=[InputRequired(_l("Välj ett skäl."))]
    )
    confirmed = HiddenField(default="")
    """Set on the confirmation step: rejecting cannot be undone."""
    reason = TextAreaField(
        _l("Förklaring till den som skickade in ärendet"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv en förklaring.")), Length(max=2000)],
    )


class CommentForm(SafeForm):
    body = TextAreaField(
        _l("Intern anteckning"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv en anteckning.")), Length(max=4000)],
    )


class CompletionRequestForm(SafeForm):
    message = TextAreaField(
        _l("Vad behöver den som skickade in ärendet komplettera med?"),
        filters=[strip_whitespace],
        validators=[DataRequired(_l("Skriv vad som behöver kompletteras.")), Length(max=2000)],
    )


class ReassignForm(SafeForm):
    staff_id = SelectField(
        _l("Ge ärendet till"), coerce=int, choices=[], validators=[InputRequired()]
    )
