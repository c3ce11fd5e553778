"""What the browser tests do as people do: log in with the BankID simulator's app page,
use the menu, wait for the pipeline's actors by reloading."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from playwright.sync_api import Locator, Page, expect

from tests.support import wait_for
from workflows.runtime import Runtime

RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results"
PIPELINE_TIMEOUT_S = 20.0

T = TypeVar("T")

PEOPLE = {
    "David Dahl": "200001029834",
    "Ingrid Handläggare": "196211289894",
    "Fredrik Falk": "198507049859",
    "Anna Andersson": "198112189876",
    "Bertil Berg": "199001019810",
    "Cecilia Carlsson": "197205119824",
    "Greta Grön": "198703159817",
    "Eva Ek": "195210039847",
    "Karin Registrator": "199104239919",
    "Johan Handläggare": "197010639909",
}


def bankid_app(page: Page, name: str, button: str) -> None:
    """The person's BankID app (the simulator's page, in another tab): open the order, pick
    the BankID and press ``button`` ("Legitimera" or "Skriv under")."""
    app = page.context.new_page()
    app.goto("/bankid-simulator/app")
    app.get_by_role("button", name="Öppna i BankID").first.click()
    expect(app.get_by_text("Beställningen är öppnad")).to_be_visible()
    app.get_by_label("Legitimation").first.select_option(PEOPLE[name])
    app.get_by_role("button", name=button, exact=True).first.click()
    # Close the tab only once its form post has landed (closing mid-navigation can hang).
    expect(app.get_by_text("Klart: beställningen är slutförd.")).to_be_visible()
    app.wait_for_load_state()
    app.close()


def download(page: Page, link_name: str) -> bytes:
    """What the link gives the signed-in person (the browser's own cookies)."""
    href = page.get_by_role("link", name=link_name).get_attribute("href")
    assert href
    response = page.request.get(href)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    return response.body()


def log_in(page: Page, name: str) -> None:
    """From any page: "Logga in", Mobilt BankID, and the person approves in the BankID app."""
    page.get_by_role("link", name="Logga in", exact=True).click()
    expect(page.get_by_role("heading", name="Logga in", level=1)).to_be_visible()
    page.get_by_role("button", name="Mobilt BankID på annan enhet").click()
    expect(page.get_by_role("img", name="QR-kod för BankID")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Starta BankID-appen")
    bankid_app(page, name, "Legitimera")
    expect(page.get_by_text(f"Inloggad som {name}")).to_be_visible(timeout=10_000)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Logga ut", exact=True).click()
    expect(page.get_by_text("Du är utloggad.")).to_be_visible()
    expect(page.get_by_role("link", name="Logga in", exact=True)).to_be_visible()


def choose(page: Page, label: str) -> None:
    """Pick a radio button or checkbox by clicking its label, as a person does."""
    page.locator("label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).click()


def fill_orderer(page: Page, email: str) -> None:
    """The registration's person step: Fredrik Falk, to be an orderer."""
    page.get_by_label("Personnummer").fill("19850704-9859")
    page.get_by_label("Förnamn").fill("Fredrik")
    page.get_by_label("Efternamn").fill("Falk")
    page.get_by_label("Titel").fill("Personalchef")
    page.get_by_label("E-postadress i arbetet").fill(email)
    choose(page, "Behörig beställare")


def open_menu_item(page: Page, name: str) -> None:
    """A link in the main menu (the start page links to some of the same pages)."""
    menu = page.get_by_role("navigation", name="Huvudmeny")
    menu.get_by_role("link", name=name, exact=True).click()


def reload_until(page: Page, done: Callable[[], bool], message: str) -> None:
    """Reload the page until ``done()`` holds: the pipeline's actors run in the background."""

    def check() -> bool:
        if done():
            return True
        page.reload()
        return done()

    wait_for(check, timeout=PIPELINE_TIMEOUT_S, interval=0.2, message=message)


def status_badge(page: Page) -> Locator:
    return page.get_by_role("main").locator("p", has_text="Status").locator(".badge")


def off_the_loop(work: Callable[[], T]) -> T:
    """Run ``work`` in another thread: Playwright keeps an asyncio loop running in this
    one, and pyHanko (sealing, in the factories) runs its own with ``asyncio.run``."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(work())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def signed_registration(runtime: Runtime) -> str:
    """David's registration, signed with BankID and received (sealed off the loop, see
    :func:`off_the_loop`). Returns its reference."""
    from tests.factories import received_by_esignature, registration_draft

    def sign() -> str:
        with runtime.unit_of_work() as session:
            return received_by_esignature(session, registration_draft(session)).reference

    return off_the_loop(sign)
