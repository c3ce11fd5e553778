"""The caseworker's queue and the clerk's scanning, in Chromium: an e-signed registration
worked through a completion round trip, and a posted removal scanned in, matched by hand
where its code was torn off, confirmed by the clerk and approved by the caseworker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.access.models import Person, RoleGrant
from app.documents.qr import QR_PLACEMENT
from app.registrations.models import Errand
from tests import scan_corpus as corpus
from tests.e2e.browser import (
    RESULTS_DIR,
    log_in,
    log_out,
    off_the_loop,
    open_menu_item,
    reload_until,
    signed_registration,
    status_badge,
)
from tests.factories import (
    in_review,
    printed,
    printed_for_post,
    removal_draft,
    stranger_registers_anna,
)
from workflows.runtime import Runtime
from workflows.states import ErrandState

pytestmark = pytest.mark.e2e


def _open_from_queue(page: Page, list_name: str, reference: str) -> None:
    open_menu_item(page, "Handläggning")
    page.get_by_role("navigation", name="Listor").get_by_role(
        "link", name=re.compile(rf"^{list_name}")
    ).click()
    table = page.get_by_role("main").get_by_role("table")

    def listed() -> bool:
        return table.get_by_role("link", name=reference).count() == 1

    reload_until(page, listed, f"{reference} in the list {list_name}")
    table.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)


def test_a_registration_goes_through_a_completion_round_trip(page: Page, runtime: Runtime) -> None:
    reference = signed_registration(runtime)

    page.goto("/")
    log_in(page, "Ingrid Handläggare")
    _open_from_queue(page, "Otilldelade", reference)
    page.get_by_role("button", name="Ta ärendet").click()
    expect(page.get_by_text("Ärendet är ditt.")).to_be_visible()
    page.get_by_label("Vad behöver den som skickade in ärendet komplettera med?").fill(
        "Skicka firmatecknarens titel."
    )
    page.get_by_role("button", name="Begär komplettering").click()
    expect(page.get_by_text("Kompletteringen är begärd")).to_be_visible()
    expect(status_badge(page)).to_have_text(re.compile("komplettering", re.I))
    log_out(page)

    log_in(page, "David Dahl")
    open_menu_item(page, "Mina ärenden")
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name="SPV behöver en komplettering")).to_be_visible()
    expect(page.get_by_text("Skicka firmatecknarens titel.")).to_be_visible()
    page.get_by_role("button", name="Skicka kompletteringen").click()
    expect(page.get_by_text("Skriv ditt svar.").first).to_be_visible()
    page.get_by_label("Ditt svar till SPV").fill("Eva Ek är generaldirektör.")
    page.get_by_role("button", name="Skicka kompletteringen").click()
    expect(page.get_by_text("Tack! Din komplettering är skickad")).to_be_visible()
    log_out(page)

    log_in(page, "Ingrid Handläggare")
    _open_from_queue(page, "Mina ärenden", reference)
    expect(page.get_by_text("Eva Ek är generaldirektör.")).to_be_visible()
    page.get_by_role("button", name="Godkänn", exact=True).click()
    expect(page.get_by_text("Ärendet är godkänt.")).to_be_visible()

    def closed() -> bool:
        return status_badge(page).inner_text().strip() == "Avslutad"

    reload_until(page, closed, f"{reference} to be applied and archived")
    documents = page.get_by_role("heading", name="Handlingar").locator(
        "xpath=following-sibling::ul[1]"
    )
    expect(documents.get_by_role("link", name=re.compile(r"^beslut-"))).to_have_count(1)


def test_a_posted_removal_is_scanned_matched_confirmed_and_approved(
    page: Page, runtime: Runtime
) -> None:
    with runtime.unit_of_work() as session:
        errand = printed_for_post(session, removal_draft(session))
        reference = errand.reference
        first, second = corpus.scan_pdf(printed(errand), ["clean-200", "upside-down"])
    # Page 1's code was torn off before it was scanned askew; page 2 came upside down.
    first.paste(255, QR_PLACEMENT.crop_box(first.width, first.height, 3.0))
    torn = corpus.degrade(first, corpus.DEGRADATIONS["rotated-2"])
    batch = RESULTS_DIR / "skannad-bunt.pdf"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    batch.write_bytes(corpus.as_pdf([second, torn, corpus.blank_page().image]))

    page.goto("/")
    log_in(page, "Karin Registrator")
    open_menu_item(page, "Skanning")
    page.get_by_label("Skannad fil").set_input_files(str(batch))
    page.get_by_role("button", name="Läs in").click()
    expect(page.get_by_text("Filen är mottagen och läses in sida för sida.")).to_be_visible()
    progress = page.locator(".batch-progress").get_by_role("status")
    expect(progress).to_contain_text("3 av 3 sidor lästa", timeout=30_000)
    expect(progress).to_contain_text("Inläst – väntar på kontroll")
    rows = page.get_by_role("table", name="Sidor i bunten").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(reference)

    page.get_by_role("link", name="Till den manuella kön").click()
    sheets = page.locator("section.scan-page")
    expect(sheets).to_have_count(1)  # the blank sheet is set aside
    torn_sheet = sheets.filter(has_text="Bunt skannad-bunt.pdf, sida 2")
    torn_sheet.get_by_label("Ärendets referens").fill(reference)
    torn_sheet.get_by_label("Sida nummer").fill("1")
    torn_sheet.get_by_role("button", name="Koppla till ärendet").click()
    expect(page.get_by_text("Blanketten är komplett. Kontrollera underskriften.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.get_by_text("Eva Ek").first).to_be_visible()
    # The signature page, large enough to read, and larger still.
    signature = page.get_by_role("img", name="Sida 2 av 2 med underskriften")
    expect(signature).to_be_visible()
    width = signature.bounding_box()["width"]  # type: ignore[index]
    page.get_by_role("navigation", name="Förstoring").get_by_role("link", name="200 %").click()
    # The page comes again with the larger image: wait until it is laid out at its size.
    page.wait_for_function(
        """([name, width]) => [...document.querySelectorAll("img")].some((img) =>
            img.alt === name && img.complete && img.getBoundingClientRect().width > width)""",
        arg=["Sida 2 av 2 med underskriften", 1.9 * width],
        timeout=10_000,
    )
    for question in (
        "Är blanketten underskriven för hand?",
        "Är det firmatecknaren som anges i blanketten som har skrivit under?",
    ):
        page.get_by_role("group", name=question).get_by_text("Ja", exact=True).click()
    page.get_by_role("button", name="Bekräfta och skicka till handläggning").click()
    expect(page.get_by_text(f"Ärende {reference} är mottaget")).to_be_visible()

    open_menu_item(page, "Skanning")
    page.get_by_role("link", name=re.compile(r"^Manuell kö")).click()
    # The blank sheet was set aside by the reader; the clerk can put it back ...
    expect(page.get_by_text("Den manuella kön är tom.")).to_be_visible()
    set_aside = page.locator(".set-aside-list li", has_text="Bunt skannad-bunt.pdf, sida 3")
    expect(set_aside).to_contain_text("Tom sida (automatiskt)")
    set_aside.get_by_role("button", name="Lägg tillbaka i kön").click()
    expect(page.get_by_text("Sidan är tillbaka i den manuella kön.")).to_be_visible()
    # ... and set it aside again with a reason from the list.
    blank = page.locator("section.scan-page")
    expect(blank).to_have_count(1)
    blank.get_by_role("group", name="Varför läggs sidan åt sidan?").get_by_text(
        "Tom sida", exact=True
    ).click()
    blank.get_by_role("button", name="Lägg åt sidan").click()
    expect(page.get_by_text("Den manuella kön är tom.")).to_be_visible()
    expect(set_aside).to_contain_text("Tom sida")
    expect(set_aside).not_to_contain_text("automatiskt")
    page.screenshot(path=RESULTS_DIR / "skanning.png", full_page=True)
    log_out(page)

    log_in(page, "Ingrid Handläggare")
    _open_from_queue(page, "Otilldelade", reference)
    checks = page.get_by_role("table", name="Automatiska kontroller")
    expect(checks.locator("tr", has_text="Underskrift och försegling")).to_contain_text(
        "kopplades till ärendet av en registrator"
    )
    page.get_by_role("button", name="Ta ärendet").click()
    approval = page.locator("form", has=page.get_by_role("button", name="Godkänn", exact=True))
    notes = approval.locator("textarea")
    expect(notes.first).to_be_visible()  # the pages matched by hand need review
    for n in range(notes.count()):
        notes.nth(n).fill("Jämfört sidan med den skannade bilden: samma blankett.")
    page.get_by_role("button", name="Godkänn", exact=True).click()
    expect(page.get_by_text("Ärendet är godkänt.")).to_be_visible()

    def closed() -> bool:
        return status_badge(page).inner_text().strip() == "Avslutad"

    reload_until(page, closed, f"{reference} to be applied and archived")
    with runtime.session_factory() as session:
        done = session.scalars(select(Errand).where(Errand.reference == reference)).one()
        assert done.state is ErrandState.CLOSED
        active = session.scalars(
            select(Person.personnummer)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.employer_id == done.employer_id, RoleGrant.valid_to_dt.is_(None))
        ).all()
        assert "198507049859" in active and "200001029834" not in active


def test_no_approval_over_a_blocking_finding_and_a_note_on_each_other(
    page: Page, runtime: Runtime
) -> None:
    def make() -> tuple[str, str]:
        with runtime.unit_of_work() as session:
            blocked = stranger_registers_anna(session).reference
            flagged = in_review(session, signatory_personnummer="198112189876").reference
            return blocked, flagged

    blocked, flagged = off_the_loop(make)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    log_in(page, "Ingrid Handläggare")
    _open_from_queue(page, "Otilldelade", blocked)
    page.get_by_role("button", name="Ta ärendet").click()
    panel = page.get_by_role("complementary", name="Beslut och åtgärder")
    expect(panel.get_by_text("Ärendet kan inte godkännas.")).to_be_visible()
    expect(panel.get_by_text("Personen är redan behörig beställare")).to_be_visible()
    expect(panel.get_by_role("button", name="Godkänn", exact=True)).to_have_count(0)
    # The decision panel stands beside the errand, the form shown inline.
    main_box = page.locator(".errand-layout__main").bounding_box()
    panel_box = panel.bounding_box()
    assert main_box and panel_box and panel_box["x"] > main_box["x"] + main_box["width"] - 1
    expect(page.locator("iframe.errand-pdf")).to_have_count(1)

    _open_from_queue(page, "Otilldelade", flagged)
    page.get_by_role("button", name="Ta ärendet").click()
    panel.get_by_role("button", name="Godkänn", exact=True).click()
    summary = page.get_by_role("alert").filter(has_text="Formuläret innehåller fel")
    expect(summary).to_be_focused()
    summary.get_by_role("link").first.click()
    note = page.get_by_label("Firmatecknaren finns inte i registret för arbetsgivaren.")
    expect(note).to_be_focused()
    error = panel.get_by_text("Skriv hur du har granskat det här innan du godkänner.")
    expect(error).to_be_visible()
    note.fill("Bolagsverket: Eva Ek tecknar firma sedan maj.")
    panel.get_by_role("button", name="Godkänn", exact=True).click()
    expect(page.get_by_text("Ärendet är godkänt.")).to_be_visible()
    expect(page.get_by_role("table", name="Historik")).to_contain_text("Eva Ek tecknar firma")
