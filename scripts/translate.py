"""Fill English translations into the catalogue from a JSON file of {msgid: msgstr}
(for a plural: {singular msgid: [singular, plural]}).

Usage: .venv/bin/python scripts/translate.py translations.json
Run scripts/update-translations.sh first; prints the msgids still untranslated.
"""

from __future__ import annotations

import json
import sys

from babel.messages.pofile import read_po, write_po

CATALOGUE = "app/translations/en/LC_MESSAGES/messages.po"


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        translations = json.load(handle)
    with open(CATALOGUE, "rb") as handle:
        catalog = read_po(handle)
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key in translations:
            value = translations[key]  # a plural's: [singular, plural]
            message.string = tuple(value) if isinstance(value, list) else value
            message.flags.discard("fuzzy")
            message.previous_id = []
        elif not message.string or message.fuzzy:
            missing.append(message.id)
    catalog.obsolete.clear()
    with open(CATALOGUE, "wb") as handle:
        write_po(handle, catalog, width=100)
    for msgid in missing:
        print(f"untranslated: {msgid!r}")


if __name__ == "__main__":
    main(sys.argv[1])
