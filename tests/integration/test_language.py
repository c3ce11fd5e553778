"""The interface in Swedish by default and in English on ?lang=en, remembered in the session."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from app import babel

TRANSLATIONS = Path(__file__).resolve().parents[2] / "app" / "translations"
SWEDISH_HEADING = "Hantering av behörigheter"
ENGLISH_HEADING = "Managing permissions"


def compile_catalogue(po: Path) -> bool:
    """Build ``po``'s .mo (as ``make`` does) when it is missing or older; True if it was built."""
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return False
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    # Written aside and renamed, so that a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=po.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as f:
            write_mo(f, catalog, use_fuzzy=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, mo)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues() -> Iterator[None]:
    """The tests need the .mo files, which only ``make`` builds; build them if need be."""
    catalogues = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
    assert catalogues, f"no catalogue under {TRANSLATIONS}"
    if any([compile_catalogue(po) for po in catalogues]):
        # Flask-Babel caches loaded translations process-wide, in the domain its Babel
        # instance creates on first use; an earlier test may have cached them as missing.
        domain = vars(babel).get("domain_instance")
        if domain is not None:
            domain.cache.clear()
    yield


def heading(page: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match, "the page has no <h1>"
    return match.group(1).strip()


def test_start_page_is_swedish_by_default(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="sv"' in page
    assert heading(page) == SWEDISH_HEADING
    assert "Statens tjänstepensionsverk" in page
    assert 'href="?lang=en"' in page


def test_lang_en_shows_the_english_interface(client: FlaskClient) -> None:
    response = client.get("/?lang=en")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="en"' in page
    assert heading(page) == ENGLISH_HEADING
    assert "Registration – authorised orderer" in page
    assert "My cases" in page
    assert "The National Government Employee Pensions Board (SPV)" in page
    assert SWEDISH_HEADING not in page
    assert 'href="?lang=sv"' in page


def test_english_start_page_has_no_swedish_left(client: FlaskClient) -> None:
    """Every text on the page is translated (the link back, "På svenska", is meant to be)."""
    page = client.get("/?lang=en").get_data(as_text=True)
    text = re.sub(r"<[^>]+>", " ", page).replace("På svenska", "")
    swedish = sorted({line.strip() for line in text.splitlines() if re.search("[åäöÅÄÖ]", line)})
    assert not swedish, f"untranslated text on the English start page: {swedish}"


def test_language_choice_sticks_for_the_session(client: FlaskClient) -> None:
    client.get("/?lang=en")
    with client.session_transaction() as session:
        assert session["lang"] == "en"

    page = client.get("/").get_data(as_text=True)
    assert '<html lang="en"' in page
    assert heading(page) == ENGLISH_HEADING

    page = client.get("/?lang=sv").get_data(as_text=True)
    assert '<html lang="sv"' in page
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="sv"' in page
    assert heading(page) == SWEDISH_HEADING


def test_unsupported_language_keeps_the_current_one(client: FlaskClient) -> None:
    page = client.get("/?lang=de").get_data(as_text=True)
    assert '<html lang="sv"' in page
    client.get("/?lang=en")
    page = client.get("/?lang=de").get_data(as_text=True)
    assert '<html lang="en"' in page
