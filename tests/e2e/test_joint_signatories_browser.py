"""Joint signatories in Chromium: Exempelhögskolan signs two jointly, so David's
registration names Hans and Ingela; each gets a link, logs in with their own BankID in
their own browser and signs; the errand waits after Hans and goes on to SPV after Ingela."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    choose,
    fill_orderer,
    log_in,
    open_menu_item,
    reload_until,
    status_badge,
)
from tests.e2e.test_invitation_browser import _mail_to, app_settings, smtp_server
from tests.integration.test_notifications import SmtpRecorder

pytestmark = pytest.mark.e2e
__all__ = ["app_settings", "smtp_server"]  # the fixtures: the SMTP server the app mails to

HANS, INGELA = "197802029889", "196903119854"
HANS_EMAIL, INGELA_EMAIL = "hans@hogskolan.example", "ingela@hogskolan.example"


def _bankid(page: Page, personnummer: str, button: str, *, typed: bool) -> None:
    """The BankID simulator's app in another tab: the person (typed in, when not listed)
    approves the order."""
    app = page.context.new_page()
    app.goto("/bankid-simulator/app")
    app.get_by_role("button", name="Öppna i BankID").first.click()
    expect(app.get_by_text("Beställningen är öppnad")).to_be_visible()
    if typed:
        app.get_by_label("Eller annat personnummer").first.fill(personnummer)
    else:
        app.get_by_label("Legitimation").first.select_option(personnummer)
    app.get_by_role("button", name=button, exact=True).first.click()
    expect(app.get_by_text("Klart: beställningen är slutförd.")).to_be_visible()
    app.wait_for_load_state()
    app.close()


def _signs(browser: Browser, live_server: str, link: str, personnummer: str) -> None:
    """In their own browser: open the link, log in with BankID, sign."""
    context = browser.new_context(base_url=live_server, locale="sv-SE")
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(link)
        page.get_by_role("button", name="Mobilt BankID på annan enhet").click()
        _bankid(page, personnummer, "Legitimera", typed=True)
        expect(page.get_by_text("Inloggad som")).to_be_visible(timeout=10_000)
        page.goto(link)
        assert urlsplit(page.url).path.startswith("/underskrift/arende/"), page.url
        page.get_by_role("button", name="Skriv under med Mobilt BankID").click()
        expect(page.get_by_role("heading", name="Skriv under med BankID")).to_be_visible()
        _bankid(page, personnummer, "Skriv under", typed=False)
        expect(page.get_by_role("heading", name="Tack", level=1)).to_be_visible(timeout=15_000)
        assert page.goto(link).status == 404  # type: ignore[union-attr]
    finally:
        context.close()


def _link(smtp: SmtpRecorder, address: str) -> str:
    found = re.search(r"(/underskrift/[A-Za-z0-9_-]+)", _mail_to(smtp, address, "underskrift"))
    assert found
    return found.group(1)


def test_hans_and_ingela_each_sign_in_their_own_session(
    page: Page, browser: Browser, live_server: str, smtp_server: SmtpRecorder
) -> None:
    smtp_server.received.clear()
    page.goto("/")
    log_in(page, "David Dahl")
    open_menu_item(page, "Anmäl behörig beställare")
    page.get_by_label("Organisationsnummer").fill("212000-0142")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    choose(page, "Alla arbetsgivarens koder, även de som tillkommer")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    fill_orderer(page, "fredrik.falk@hogskolan.example")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    # The register says two jointly: the step asks for the second signatory too.
    expect(page.get_by_role("group", name="Den andra firmatecknaren")).to_be_visible()
    typed = {
        "signatory_name": "Hans Rektorsson",
        "signatory_personnummer": HANS,
        "signatory_title": "Rektor",
        "signatory_email": HANS_EMAIL,
        "co_signatory_name": "Ingela Förvaltningschef",
        "co_signatory_personnummer": INGELA,
        "co_signatory_title": "Förvaltningschef",
        "co_signatory_email": INGELA_EMAIL,
    }
    for field, value in typed.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()

    expect(page.locator("#joint-signatories")).to_contain_text("Ingela Förvaltningschef")
    expect(page.get_by_role("heading", name="Signera nu")).to_have_count(0)
    expect(page.locator("#co_email")).to_have_value(INGELA_EMAIL)
    page.get_by_role("button", name="Skicka till firmatecknaren").click()
    expect(status_badge(page)).to_have_text("Väntar på firmatecknarens underskrift")
    errand_url = page.url

    _signs(browser, live_server, _link(smtp_server, HANS_EMAIL), HANS)
    page.goto(errand_url)
    expect(page.locator("#joint-signatories")).to_contain_text("Hans Rektorsson har skrivit under.")
    expect(page.locator("#joint-signatories")).to_contain_text("Väntar på Ingela Förvaltningschef.")

    _signs(browser, live_server, _link(smtp_server, INGELA_EMAIL), INGELA)
    page.goto(errand_url)
    reload_until(
        page,
        lambda: status_badge(page).inner_text() != "Väntar på firmatecknarens underskrift",
        "the errand to go on to SPV once both have signed",
    )
    expect(page.get_by_role("link", name=re.compile("underskrivna och förseglade"))).to_be_visible()
