"""Signing by invitation in Chromium: David sends the registration to Eva, who is not at his
desk; the email with her link reaches the SMTP server; she logs in with her own BankID in
her own browser later and signs; David sees the errand go on to SPV, and is told by email."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import (
    bankid_app,
    choose,
    fill_orderer,
    log_in,
    open_menu_item,
    reload_until,
    status_badge,
)
from tests.e2e.test_accessibility import check
from tests.integration.test_notifications import SmtpRecorder
from tests.support import free_port, wait_for

pytestmark = pytest.mark.e2e

EVA_EMAIL = "eva.ek@provverket.example"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpRecorder]:
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    yield recorder
    controller.stop()


@pytest.fixture(scope="module")
def app_settings(smtp_server: SmtpRecorder) -> dict[str, Any]:
    return {"mail_url": smtp_server.url}


def _mail_to(smtp: SmtpRecorder, address: str, subject: str) -> str:
    """The plain text of the first email to ``address`` whose subject has ``subject``."""

    def found() -> str | None:
        with smtp.lock:
            for rcpt, message in smtp.received:
                if address in rcpt and subject in str(message["Subject"]):
                    body = message.get_body(preferencelist=("plain",))
                    return str(body.get_content()) if body else ""
        return None

    wait_for(lambda: found() is not None, timeout=20, message=f"an email to {address}")
    text = found()
    assert text is not None
    return text


def test_the_registration_is_sent_to_eva_who_signs_later_in_her_own_session(
    page: Page, browser: Browser, live_server: str, smtp_server: SmtpRecorder
) -> None:
    smtp_server.received.clear()
    page.goto("/")
    log_in(page, "David Dahl")
    open_menu_item(page, "Anmäl behörig beställare")
    page.get_by_label("Organisationsnummer").fill("202100-4920")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    # The code list shows only when the person chooses codes (conditional.js).
    codes = page.get_by_role("group", name="Välj arbetsgivarkoder")
    choose(page, "Bara de koder jag väljer")
    expect(codes).to_be_visible()
    choose(page, "Alla arbetsgivarens koder, även de som tillkommer")
    expect(codes).to_be_hidden()
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    fill_orderer(page, "fredrik.falk@provverket.example")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    page.get_by_label("Namn").fill("Eva Ek")
    page.get_by_label("Personnummer").fill("195210039847")
    page.get_by_label("Befattning").fill("Myndighetschef")
    page.get_by_label("E-postadress (frivilligt)").fill(EVA_EMAIL)
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()

    # Eva is not here: send it to her.
    expect(page.get_by_role("heading", name="Skicka till firmatecknaren")).to_be_visible()
    review = urlsplit(page.url).path
    check(page, [review])
    page.goto(f"{review}?lang=sv")
    expect(page.get_by_label("Firmatecknarens e-postadress")).to_have_value(EVA_EMAIL)
    page.get_by_role("button", name="Skicka till firmatecknaren").click()
    expect(page.get_by_text("Blanketten är skickad till Eva Ek för underskrift.")).to_be_visible()
    expect(status_badge(page)).to_have_text("Väntar på firmatecknarens underskrift")
    errand_url = page.url
    open_menu_item(page, "Mina ärenden")
    expect(page.get_by_role("table")).to_contain_text("Väntar på firmatecknarens underskrift")
    check(page, [urlsplit(errand_url).path, "/mina-arenden"])
    page.goto("/mina-arenden?lang=sv")

    # The email with Eva's link reaches the mail server.
    invitation = _mail_to(smtp_server, EVA_EMAIL, "väntar på din underskrift")
    found = re.search(r"(/underskrift/[A-Za-z0-9_-]+)", invitation)
    assert found, invitation
    link = found.group(1)

    # Later, in her own browser: log in with her BankID, read, sign.
    eva_context = browser.new_context(base_url=live_server, locale="sv-SE")
    eva_context.set_default_timeout(10_000)
    try:
        eva = eva_context.new_page()
        eva.goto(link)
        expect(eva).to_have_url(re.compile(r"/logga-in"))
        log_in(eva, "Eva Ek")
        eva.goto(link)  # on to the errand's page, for her only
        page_path = urlsplit(eva.url).path
        assert page_path.startswith("/underskrift/arende/"), eva.url
        expect(eva.get_by_role("main")).to_contain_text("Fredrik Falk")
        expect(eva.get_by_role("link", name="Läs hela blanketten som PDF")).to_be_visible()
        check(eva, [page_path])  # both languages: back to Swedish after it
        eva.set_viewport_size({"width": 390, "height": 844})  # and on a phone
        check(eva, [page_path])
        eva.set_viewport_size({"width": 1280, "height": 900})
        eva.goto(f"{page_path}?lang=sv")
        eva.get_by_role("button", name="Skriv under med Mobilt BankID").click()
        expect(eva.get_by_role("heading", name="Skriv under med BankID")).to_be_visible()
        bankid_app(eva, "Eva Ek", "Skriv under")
        expect(eva.get_by_role("heading", name="Tack", level=1)).to_be_visible(timeout=15_000)
        # The link has done its one job.
        assert eva.goto(link).status == 404  # type: ignore[union-attr]
        assert eva.goto(page_path).status == 404  # type: ignore[union-attr]
    finally:
        eva_context.close()

    # David sees the errand go on to SPV, and is told by email.
    page.goto(errand_url)
    reload_until(
        page,
        lambda: status_badge(page).inner_text() != "Väntar på firmatecknarens underskrift",
        "the errand to leave 'awaiting the signatory'",
    )
    expect(page.get_by_role("link", name=re.compile("underskrivna och förseglade"))).to_be_visible()
    told = _mail_to(smtp_server, "david.dahl@provverket.example", "är underskrivet")
    assert "Eva Ek har skrivit under" in told
