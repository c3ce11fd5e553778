"""Text the database and other people's pages can hold: no control characters (NUL and
the rest of C0 and C1, which PostgreSQL refuses or which break emails and exports) and no
invisible or bidirectional-override characters (which disguise names and addresses).

The one home of that rule: every form refuses such text (``forms.validators``) and the
services that take text from elsewhere ask ``has_unsafe_characters`` too."""

from __future__ import annotations

import re

from markupsafe import Markup

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_LINE_BREAKS = re.compile("[\t\n\r]")


def has_unsafe_characters(text: str, *, multiline: bool = False) -> bool:
    """Control, invisible or bidirectional-override characters; with ``multiline`` the
    tab and line breaks of a text area are allowed."""
    if multiline:
        text = _LINE_BREAKS.sub(" ", text)
    return _UNSAFE.search(text) is not None


def without_unsafe_characters(text: str) -> str:
    """``text`` with every such character replaced by a space (for text we did not take
    from a person but must still store, e.g. an error message)."""
    return _UNSAFE.sub(" ", text)


_PERSONNUMMER = re.compile(r"(?<!\d)((?:19|20)?\d{6})[-+]?\d{4}(?!\d)")


def mask_numbers(text: str) -> str:
    """Personnummer-like digits in free text, masked (``19121212-XXXX``)."""
    return _PERSONNUMMER.sub(r"\1-XXXX", text)


def isolate(value: object) -> Markup:
    """``value`` (escaped) in ``<bdi>``: typed text shown beside an id or a number keeps to
    itself, so a name in a right-to-left script cannot move or turn around the personnummer
    next to it (browsers and WeasyPrint alike); the ``bdi`` filter of pages and PDFs."""
    if value is None or value == "":
        return Markup("")
    return Markup("<bdi>%s</bdi>") % (value,)


LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A LIKE pattern for values containing ``text`` as typed (its ``%`` and ``_`` taken
    literally; use with ``escape=LIKE_ESCAPE``)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
