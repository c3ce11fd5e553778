"""The forms of the paper channel's fraud protection: the employer's lock, and the stop of a
posted registration in its waiting period."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import EmailField, HiddenField
from wtforms.validators import AnyOf, Email, InputRequired, Length, Optional

from forms.validators import SafeForm, strip_whitespace

LOCK_ON = "on"
LOCK_OFF = "off"


class LockForm(SafeForm):
    """Switch the employer's lock against posted forms on (with an address for the stops)
    or off."""

    switch = HiddenField(validators=[InputRequired(), AnyOf([LOCK_ON, LOCK_OFF])])
    contact_email = EmailField(
        _l("E-post för meddelanden om stoppade blanketter (frivilligt)"),
        description=_l("Hit skickar SPV ett meddelande varje gång en blankett stoppas."),
        filters=[strip_whitespace],
        validators=[
            Optional(),
            Length(max=254),
            Email(_l("Ange en giltig e-postadress, till exempel namn@myndighet.se.")),
        ],
    )


class DisputeForm(SafeForm):
    """ "Det här känner vi inte till": only the CSRF token."""
