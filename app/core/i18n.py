"""The translation catalogues outside a request (PDFs, emails), as Flask-Babel loads them."""

from __future__ import annotations

import functools
import io
from gettext import NullTranslations
from pathlib import Path

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
