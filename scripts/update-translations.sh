#!/usr/bin/env bash
# Re-extract the UI's messages (Swedish msgids) and merge them into every catalogue
# under app/translations, e.g. app/translations/en/LC_MESSAGES/messages.po; and the same for
# the stand-ins' own pages (devtools/babel.cfg) into devtools/translations.
#
# Then translate the new (empty) and fuzzy entries, remove the fuzzy flags and check with
#   .venv/bin/pytest tests/unit/test_translations.py
# The .mo files are built by make (they are not committed); to try the result by hand:
#   .venv/bin/pybabel compile -d app/translations
set -euo pipefail

cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
if [[ ! -x $PYBABEL ]]; then
    echo "No $PYBABEL: run 'make install' first." >&2
    exit 1
fi

pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT

update() {  # update CONFIG CATALOGUES
    "$PYBABEL" -q extract -F "$1" -k _l \
        --project behorighet --version 0.1.0 \
        --copyright-holder "Statens tjänstepensionsverk" \
        -o "$pot" .
    "$PYBABEL" update -i "$pot" -d "$2" --previous --ignore-pot-creation-date
}
update babel.cfg app/translations
update devtools/babel.cfg devtools/translations

echo "Updated:" app/translations/*/LC_MESSAGES/messages.po devtools/translations/*/LC_MESSAGES/messages.po
