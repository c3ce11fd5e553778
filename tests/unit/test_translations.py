"""The English catalogues: every message in the sources is translated, placeholders intact.

The msgids are Swedish (the source language). The product's messages are in
``app/translations``, the stand-ins' (``devtools/``) in their own ``devtools/translations``.
When a test here fails, run ``scripts/update-translations.sh``, translate the listed
messages in the catalogue it names and remove any ``fuzzy`` flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Catalogue:
    config: str
    """The pybabel extraction configuration, relative to the repository."""
    english: Path
    """The English catalogue of what it extracts."""


CATALOGUES = {
    "product": Catalogue("babel.cfg", ROOT / "app/translations/en/LC_MESSAGES/messages.po"),
    "devtools": Catalogue(
        "devtools/babel.cfg", ROOT / "devtools/translations/en/LC_MESSAGES/messages.po"
    ),
}

# Python's %-formatting with a mapping, as Flask-Babel applies it: %(name)s, %(n)d, ...
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    """A message's id or string as a list (plural messages have several)."""
    if value is None:
        return [""]
    return [value] if isinstance(value, str) else list(value)


def _key(message: Message) -> str:
    ids = " | ".join(_texts(message.id))
    return f"{ids} (msgctxt {message.context!r})" if message.context else ids


def _listing(messages: list[Message]) -> str:
    """One line a message, with where it is used (when the message knows)."""
    lines = []
    for message in messages:
        where = ", ".join(f"{path}:{line}" for path, line in message.locations)
        lines.append(f"  msgid {_key(message)!r}" + (f"  [{where}]" if where else ""))
    return "\n".join(lines)


@pytest.fixture(scope="module", params=list(CATALOGUES), ids=list(CATALOGUES))
def catalogue(request: pytest.FixtureRequest) -> Catalogue:
    return CATALOGUES[request.param]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Catalog:
    """The messages the sources hold now, extracted as scripts/update-translations.sh does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)  # so that the messages' locations are relative, as in the catalogue
        status = CommandLineInterface().run(
            ["pybabel", "-q", "extract", "-F", catalogue.config, "-k", "_l", "-o", str(pot), "."]
        )
    assert not status, f"pybabel extract failed with status {status}"
    with pot.open("rb") as f:
        catalog = read_po(f)
    assert len(catalog) > 0, "pybabel extract found no messages: is babel.cfg right?"
    return catalog


@pytest.fixture(scope="module")
def english(catalogue: Catalogue) -> Catalog:
    assert catalogue.english.is_file(), f"{catalogue.english.relative_to(ROOT)} is missing"
    with catalogue.english.open("rb") as f:
        return read_po(f)


def test_english_catalogue_header(english: Catalog) -> None:
    assert str(english.locale) == "en"
    assert english.project == "behorighet"
    assert english.charset.lower() == "utf-8"
    assert not english.fuzzy, "the catalogue's header is marked fuzzy"


def test_english_catalogue_translates_every_extracted_message(
    extracted: Catalog, english: Catalog, catalogue: Catalogue
) -> None:
    missing: list[Message] = []
    untranslated: list[Message] = []
    fuzzy: list[Message] = []
    for message in extracted:
        if not message.id:
            continue  # the header
        entry = english.get(message.id, message.context)
        if entry is None:
            missing.append(message)
        elif not all(_texts(entry.string)):
            untranslated.append(message)
        elif entry.fuzzy:
            fuzzy.append(message)

    problems = []
    if missing:
        problems.append(
            f"{len(missing)} message(s) not in {catalogue.english.relative_to(ROOT)} "
            f"(run scripts/update-translations.sh, then translate them):\n{_listing(missing)}"
        )
    if untranslated:
        problems.append(
            f"{len(untranslated)} message(s) with an empty msgstr:\n{_listing(untranslated)}"
        )
    if fuzzy:
        problems.append(
            f"{len(fuzzy)} message(s) marked fuzzy (check the translation, then remove "
            f"the flag):\n{_listing(fuzzy)}"
        )
    assert not problems, "The English catalogue is incomplete.\n" + "\n".join(problems)


def test_english_catalogue_has_no_empty_or_fuzzy_entries(english: Catalog) -> None:
    """Also the entries no longer extracted (they are harmless, but must not hide in a build)."""
    bad = [m for m in english if m.id and (m.fuzzy or not all(_texts(m.string)))]
    assert not bad, "Untranslated or fuzzy entries:\n" + _listing(bad)


def test_translations_keep_every_placeholder(english: Catalog) -> None:
    problems = []
    for message in english:
        if not message.id:
            continue
        wanted = {p for text in _texts(message.id) for p in PLACEHOLDER.findall(text)}
        for text in _texts(message.string):
            found = set(PLACEHOLDER.findall(text))
            if wanted - found:
                problems.append(
                    f"  msgid {_key(message)!r}: msgstr {text!r} lacks "
                    f"{', '.join(sorted(wanted - found))}"
                )
            if found - wanted:
                problems.append(
                    f"  msgid {_key(message)!r}: msgstr {text!r} has unknown "
                    f"{', '.join(sorted(found - wanted))} (formatting would fail)"
                )
    assert not problems, "Placeholders differ between msgid and msgstr:\n" + "\n".join(problems)


def test_babel_finds_no_format_errors(english: Catalog) -> None:
    errors = [
        f"  msgid {_key(message)!r}: {'; '.join(str(e) for e in errs)}"
        for message, errs in english.check()
    ]
    assert not errors, "Babel's catalogue checks failed:\n" + "\n".join(errors)
