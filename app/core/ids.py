"""Swedish id numbers: personnummer (incl. samordningsnummer) and organisationsnummer."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from organisationsnummer import organisationsnummer as orgnr_lib
from personnummer import personnummer as pnr_lib


class InvalidIdNumber(ValueError):
    pass


_ID_CHARACTERS = re.compile(r"[0-9+\- ]+")
"""What an identity number may hold once NFKC-normalised: ASCII digits, '-', '+', spaces."""


def _id_text(value: str) -> str:
    """``value`` NFKC-normalised (full-width digits become ASCII ones); refused unless it
    then holds only ASCII digits and separators (no Arabic-Indic or other digits, which the
    libraries' ``\\d`` and ``int`` would accept, and no control characters)."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not _ID_CHARACTERS.fullmatch(text):
        raise InvalidIdNumber(value)
    return text


def normalise_personnummer(value: str) -> str:
    """Twelve digits with century. Accepts 10 or 12 digits, '-' or '+' (over 100)."""
    text = _id_text(value)
    try:
        number = pnr_lib.parse(text)
    except (pnr_lib.PersonnummerException, ValueError, TypeError) as exc:
        raise InvalidIdNumber(value) from exc
    return str(number.format(True))


def age_on(personnummer: str, day: date) -> int:
    """The person's age in whole years on ``day``, from their (normalised) personnummer; a
    samordningsnummer's day of birth is its day minus 60."""
    born = date(int(personnummer[:4]), int(personnummer[4:6]), int(personnummer[6:8]) % 60)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def is_coordination_number(personnummer: str) -> bool:
    return bool(pnr_lib.parse(personnummer).is_coordination_number())


def normalise_orgnr(value: str) -> str:
    """Ten digits. Accepts a separator and the 12-digit form with the '16' prefix.

    Only legal persons: digits 3–4 must be at least 20 (a personnummer is not an orgnr here).
    """
    text = _id_text(value)
    try:
        number = orgnr_lib.parse(text)
    except (orgnr_lib.OrganisationsnummerException, ValueError, TypeError) as exc:
        raise InvalidIdNumber(value) from exc
    if number.is_personnummer():
        raise InvalidIdNumber(value)
    return str(number.format(False))


_PNR_IN_TEXT = re.compile(r"(?<!\d)(\d{2})?(\d{6})[-+]?(\d{4})(?!\d)")


def mask_personnummer(personnummer: str) -> str:
    """``19121212-****``: enough to tell people apart in a list, not the whole number."""
    digits = re.sub(r"\D", "", personnummer)
    return f"{digits[:8]}-****" if len(digits) == 12 else "****"


def mask_personnummer_in_text(text: str) -> str:
    """Replace anything shaped like a personnummer in free text (used for logs)."""
    return _PNR_IN_TEXT.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}-****", text)


def format_personnummer(personnummer: str) -> str:
    return f"{personnummer[:8]}-{personnummer[8:]}"


def format_orgnr(orgnr: str) -> str:
    return f"{orgnr[:6]}-{orgnr[6:]}"
