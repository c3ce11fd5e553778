"""The translation catalogues outside a request (PDFs, emails), as Flask-Babel loads them,
and Swedish local time for what people read (times are stored in UTC)."""

from __future__ import annotations

import functools
import io
from datetime import date, datetime
from gettext import NullTranslations
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
SOURCE_LANG = "sv"
"""The UI's msgids are Swedish."""
SUPPORTED_LANGS = frozenset({"sv", "en"})


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The catalogue for ``lang`` (Swedish is the source language: no catalogue).

    Reads the compiled ``.mo`` as Flask-Babel does; when it is missing or older than the
    ``.po`` (``make`` compiles catalogues), the ``.po`` is compiled in memory instead.
    """
    if lang not in SUPPORTED_LANGS:
        raise ValueError(f"unsupported language {lang!r}")
    if lang == SOURCE_LANG:
        return NullTranslations()
    po = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
    mo = po.with_suffix(".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        return Translations.load(str(TRANSLATIONS_DIR), [lang])
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


SWEDISH_TIME = ZoneInfo("Europe/Stockholm")


def swedish_time(dt: datetime) -> datetime:
    """A stored UTC time in Swedish local time."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    return dt.astimezone(SWEDISH_TIME)


def local_time(dt: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """``dt`` in Swedish local time as ``pattern`` says (empty for None)."""
    return swedish_time(dt).strftime(pattern) if dt else ""


def long_day(day: date | None, lang: str) -> str:
    """A calendar day in words, e.g. "2 mars 2026" (empty for None)."""
    return format_date(day, format="long", locale=lang) if day else ""


def long_date(dt: datetime | None, lang: str) -> str:
    """The local date in words, e.g. "2 mars 2026" (empty for None)."""
    return format_date(swedish_time(dt).date(), format="long", locale=lang) if dt else ""
