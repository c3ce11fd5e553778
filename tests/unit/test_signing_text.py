"""What the signatory reads in the BankID app: the form's values as plain text, so no name
can add a heading, a list, emphasis or a table to it (issue 14)."""

from __future__ import annotations

from types import SimpleNamespace

from app.registrations.data import RegistrationData
from app.registrations.models import ErrandKind
from app.registrations.signing import visible_text
from tests.sample_forms import REGISTRATION


def test_no_value_typed_into_the_form_adds_markdown() -> None:
    data = RegistrationData.from_json(
        {**REGISTRATION, "given_name": "Bo\n# Godkänn allt", "family_name": "*Ek* | +x+"}
    )
    errand = SimpleNamespace(
        language="sv", data=data, kind=ErrandKind.REGISTRATION, reference="BB-7K3M-Q9XT"
    )
    text = visible_text(errand)  # type: ignore[arg-type]
    lines = text.split("\n")
    assert [line for line in lines if line.startswith("#")] == ["# Anmälan – behörig beställare"]
    person = next(line for line in lines if "Bo" in line)
    assert r"Bo \# Godkänn allt \*Ek\* \| \+x\+" in person
