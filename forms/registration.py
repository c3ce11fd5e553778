"""Anmälan – behörig beställare: the steps after the employer (see ``forms.common``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectMultipleField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, ValidationError

from forms.common import PersonFields
from forms.validators import SafeForm


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class CodesForm(SafeForm):
    """Which of the employer's codes the orderer covers. Choices are set per employer."""

    scope = RadioField(
        _l("Arbetsgivarkoder"),
        choices=[
            SelectChoice("all", _l("Alla arbetsgivarens koder, även de som tillkommer")),
            SelectChoice("chosen", _l("Bara de koder jag väljer")),
        ],
        default="all",
        validators=[InputRequired(_l("Välj vilka arbetsgivarkoder som ska ingå."))],
    )
    codes = CheckboxesField(_l("Välj arbetsgivarkoder"), choices=[], validate_choice=True)

    def validate_codes(self, field: CheckboxesField) -> None:
        if self.scope.data == "chosen" and not field.data:
            raise ValidationError(_l("Välj minst en arbetsgivarkod."))


class PersonForm(PersonFields):
    pass
