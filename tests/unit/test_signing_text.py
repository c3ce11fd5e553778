"""What the signatory reads in the BankID app: the form's values as plain text, so no name
can add a heading, a list, emphasis or a table to it (issue 14)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

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


_MARKUP = set("\\*+#|")


def _unescaped(rendered: str) -> tuple[str, list[str]]:
    """The text a simpleMarkdownV1 reader shows for ``rendered``, and the markup
    characters in it that are not escaped (which would format)."""
    shown, bare, chars = [], [], iter(rendered)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in _MARKUP:  # a lone backslash would escape what follows
                bare.append(char)
            shown.append(escaped)
        else:
            if char in _MARKUP:
                bare.append(char)
            shown.append(char)
    return "".join(shown), bare


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from([*"\\*+#|\n\r\t -_>=`[]()!aöÅ1"]), max_size=30))
def test_every_typed_value_is_one_line_of_plain_text(value: str) -> None:
    """Backslashes, ``#``, ``*``, ``+++``, ``|`` and line breaks in a value are shown as
    typed (spaces folded) and never format: no heading, line, list, emphasis or table."""
    data = RegistrationData.from_json({**REGISTRATION, "family_name": f"Ek{value}"})
    errand = SimpleNamespace(
        language="en", data=data, kind=ErrandKind.REGISTRATION, reference="BB-7K3M-Q9XT"
    )
    lines = visible_text(errand).split("\n")  # type: ignore[arg-type]
    person = next(line for line in lines if line.startswith("Person: "))
    rendered = person.removeprefix("Person: Åsa ").removesuffix(" (19850704-9859)")
    shown, bare = _unescaped(rendered)
    assert bare == []
    assert shown == " ".join(f"Ek{value}".split())
    assert [line for line in lines if line.startswith(("#", "+", "|", "*", "-"))] == [
        "# Registration – authorised orderer"
    ]
