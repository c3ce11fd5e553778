"""Hantera behörigheter in the browser, as the source text's people use it: the orderer
appoints an administrator; the administrator grants a user two permissions and takes one
back; the user, at two employers, chooses one, sees her permissions and asks for another;
the administrator grants it. Each change reaches the person's inbox at a real SMTP server.
The pages pass axe-core at 1280 and 390 px, in Swedish and in English."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.browser import PEOPLE, choose, log_in, log_out
from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.test_accessibility import check
from tests.smtp import (  # noqa: F401 (fixtures: app_settings, smtp, smtp_server)
    SmtpRecorder,
    app_settings_fixture,
    plain_text,
    smtp_fixture,
    smtp_server_fixture,
)
from tests.support import wait_for

pytestmark = pytest.mark.e2e

FREDRIK = "Fredrik Falk"
FREDRIK_EMAIL = "fredrik.falk@testmyndighet.example"
GRETA_EMAIL = "greta.gron@lonecenter.example"
ANNA_EMAIL = "anna.andersson@testmyndighet.example"
MANAGEMENT = "/hantera-behorigheter"


def _inbox(smtp: SmtpRecorder, address: str, count: int) -> list[str]:
    """The plain-text bodies of the first ``count`` messages to ``address``."""

    def arrived() -> list[str]:
        return [plain_text(m) for to, m in list(smtp.received) if address in to]

    wait_for(lambda: len(arrived()) >= count, timeout=20, message=f"{count} emails to {address}")
    return arrived()


@pytest.fixture
def second_person(browser: Browser, live_server: str) -> Iterator[BrowserContext]:
    """Another person's own browser (own cookies, own session)."""
    context = browser.new_context(
        base_url=live_server, locale="sv-SE", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


def test_orderer_administrator_and_user_each_do_their_part(
    page: Page, second_person: BrowserContext, smtp: SmtpRecorder
) -> None:
    # Anna, the orderer, appoints Fredrik administrator for one employer code.
    page.goto("/")
    log_in(page, "Anna Andersson")
    page.get_by_role("navigation", name="Huvudmeny").get_by_role(
        "link", name="Hantera behörigheter"
    ).click()
    expect(page.get_by_text("Du hanterar behörigheter hos Statens testmyndighet")).to_be_visible()
    page.get_by_role("link", name="Utse administratör").click()
    page.get_by_label("Personnummer").fill(PEOPLE[FREDRIK])
    page.get_by_label("Förnamn").fill("Fredrik")
    page.get_by_label("Efternamn").fill("Falk")
    page.get_by_label("E-postadress i arbetet").fill(FREDRIK_EMAIL)
    choose(page, "Valda arbetsgivarkoder")
    choose(page, "A1002 Regionkontor Norr")
    page.get_by_label("Skäl (frivilligt)").fill("Ny lönechef i Norr")
    page.get_by_role("button", name="Utse administratör").click()
    expect(page.get_by_text("Administratören är utsedd.")).to_be_visible()
    roles = page.get_by_role("table", name="Roller hos arbetsgivaren och vem som utsåg dem")
    expect(roles.get_by_role("row", name="Fredrik Falk")).to_contain_text("Anna Andersson")
    check(page, [MANAGEMENT, f"{MANAGEMENT}/administratorer/ny"])
    log_out(page)
    (appointed,) = _inbox(smtp, FREDRIK_EMAIL, 1)
    assert "administratör" in appointed and "Statens testmyndighet" in appointed
    assert any("Fredrik Falk" in body for body in _inbox(smtp, ANNA_EMAIL, 1))

    # Fredrik, the administrator, finds Greta and gives her two permissions on his code.
    log_in(page, FREDRIK)
    page.goto(MANAGEMENT)
    expect(page.get_by_role("link", name="Utse administratör")).to_have_count(0)
    page.get_by_label("Sök på namn eller personnummer").fill("Grön")
    page.get_by_role("button", name="Sök", exact=True).click()
    page.get_by_role("link", name="Grön, Greta").click()
    greta_page = urlparse(page.url).path
    choose(page, "Statistik och rapporter – A1002")
    choose(page, "Anmäla anställning och inkomst – A1002")
    page.get_by_role("button", name="Spara behörigheter").click()
    expect(page.get_by_text("Behörigheterna är sparade.")).to_be_visible()
    # ... and takes one of them back.
    page.goto(greta_page)
    choose(page, "Anmäla anställning och inkomst – A1002")
    page.get_by_label("Skäl (frivilligt)").fill("Fel tjänst")
    page.get_by_role("button", name="Spara behörigheter").click()
    expect(page.get_by_text("Behörigheterna är sparade.")).to_be_visible()
    added, taken_back = _inbox(smtp, GRETA_EMAIL, 2)
    assert "Statistik och rapporter" in added and "Anmäla anställning och inkomst" in added
    assert "Anmäla anställning och inkomst" in taken_back and "Fel tjänst" in taken_back
    check(page, [MANAGEMENT, greta_page])

    # Greta, in her own browser, chooses the employer and sees what she may do there.
    greta = second_person.new_page()
    greta.goto("/")
    log_in(greta, "Greta Grön")
    greta.goto(MANAGEMENT)
    greta.get_by_role("button", name="Statens testmyndighet (202100-5489)").click()
    mine = greta.get_by_role("table", name="Dina behörigheter hos Statens testmyndighet")
    expect(mine).to_contain_text("Statistik och rapporter")
    expect(mine).to_contain_text("Pensionsärenden")
    expect(mine).not_to_contain_text("Anmäla anställning och inkomst")
    contacts = greta.get_by_role("region", name="Statens testmyndighet (202100-5489)")
    expect(contacts).to_contain_text("Fredrik Falk")
    # The site header switches employer from any page.
    header = greta.get_by_role("banner")
    expect(header.get_by_label("Arbetsgivare").locator("option:checked")).to_have_text(
        "Statens testmyndighet (202100-5489)"
    )
    greta.get_by_label("Tjänst").select_option(label="Fakturor och fakturaspecifikationer")
    greta.get_by_label("Arbetsgivarkod").select_option(label="A1002 Regionkontor Norr")
    greta.get_by_label("Meddelande").fill("Jag attesterar fakturor för Norr")
    greta.get_by_role("button", name="Be om behörighet").click()
    expect(greta.get_by_text("Din förfrågan är skickad")).to_be_visible()
    check(greta, [MANAGEMENT])
    asked = _inbox(smtp, FREDRIK_EMAIL, 2)[-1]
    assert "Greta Grön" in asked and "Fakturor och fakturaspecifikationer" in asked

    # Fredrik grants it with one action; Greta is told and sees it.
    page.goto(MANAGEMENT)
    page.get_by_role("link", name="Förfrågningar om behörighet (1)").click()
    request = page.get_by_role("region", name="Greta Grön")
    expect(request).to_contain_text("Jag attesterar fakturor för Norr")
    check(page, [f"{MANAGEMENT}/forfragningar"])
    page.goto(f"{MANAGEMENT}/forfragningar")
    request.get_by_role("button", name="Ge behörigheten").click()
    expect(page.get_by_text("Behörigheten är given.")).to_be_visible()
    expect(page.get_by_text("Det finns inga förfrågningar som väntar.")).to_be_visible()
    granted = _inbox(smtp, GRETA_EMAIL, 3)[-1]
    assert "Fakturor och fakturaspecifikationer" in granted
    # The change ended Greta's session (issue 15): she logs in again and sees it.
    greta.reload()
    expect(greta.get_by_text("Dina behörigheter har ändrats. Logga in igen.")).to_be_visible()
    log_in(greta, "Greta Grön")
    greta.goto(MANAGEMENT)
    greta.get_by_role("button", name="Statens testmyndighet (202100-5489)").click()
    expect(mine).to_contain_text("Fakturor och fakturaspecifikationer")
