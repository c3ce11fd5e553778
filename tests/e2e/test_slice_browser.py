"""The vertical slice once, through the real UI in Chromium: register, sign, approve, apply."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.access.models import Employer, Person, Role, RoleGrant
from app.registrations.models import Errand
from devtools.pki import ensure_test_pki
from tests.e2e.browser import (
    RESULTS_DIR,
    bankid_app,
    choose,
    download,
    fill_orderer,
    log_in,
    log_out,
    open_menu_item,
    reload_until,
    status_badge,
)
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e

REFERENCE = re.compile(r"^BB-[0-9A-Z]{4}-[0-9A-Z]{4}$")

CHECKS = (
    "Personnummer och organisationsnummer",
    "Arbetsgivare och arbetsgivarkoder",
    "Firmatecknare enligt registret",
    "Underskrift och försegling",
    "Konflikter med befintliga behörigheter och ärenden",
)
OUTCOMES = ("Utan anmärkning", "Behöver granskas", "Underkänd")


def test_registration_is_approved_and_applied_through_the_browser(
    page: Page, runtime: Runtime, pki_dir: Path
) -> None:
    # The employer's HR signs in and files a registration for a new orderer.
    page.goto("/")
    expect(page.get_by_role("heading", name="Hantering av behörigheter", level=1)).to_be_visible()
    log_in(page, "David Dahl")

    open_menu_item(page, "Anmäl behörig beställare")
    expect(page).to_have_url(re.compile(r"/anmalan-behorig-bestallare$"))
    page.get_by_label("Organisationsnummer").fill("202100-4920")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    expect(page.get_by_role("heading", name="Arbetsgivarkoder för Provverket")).to_be_visible()
    choose(page, "Alla arbetsgivarens koder, även de som tillkommer")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    fill_orderer(page, "fredrik.falk@provverket.example")
    # Save and come back later from "Mina ärenden": the draft is kept.
    page.get_by_role("button", name="Spara och fortsätt senare").click()
    expect(page.get_by_text("Utkastet är sparat.")).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^Fortsätt")).first.click()
    page.get_by_label("Namn").fill("Eva Ek")
    page.get_by_label("Personnummer").fill("195210039847")
    page.get_by_label("Befattning").fill("Myndighetschef")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()

    expect(page.get_by_role("heading", name="Granska uppgifterna")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Fredrik Falk, 19850704-9859")
    reference = page.get_by_role("main").locator("p", has_text="Referens").locator("strong")
    reference_text = reference.inner_text().strip()
    assert REFERENCE.match(reference_text), reference_text

    page.get_by_role("button", name="Skriv under med Mobilt BankID").click()
    expect(page.get_by_role("heading", name="Skriv under med BankID")).to_be_visible()
    bankid_app(page, "Eva Ek", "Skriv under")
    expect(page.get_by_text("Anmälan är underskriven och inskickad till SPV.")).to_be_visible(
        timeout=10_000
    )
    sealed = download(page, "Ladda ner den underskrivna och förseglade blanketten (PDF)")
    sealed_path = str(RESULTS_DIR / "sealed.pdf")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    Path(sealed_path).write_bytes(sealed)
    # The product's own validator, as an operator runs it, on the file the person got.
    verified = subprocess.run(
        [str(Path(sys.executable).with_name("behorighet")), "verify-pdf", sealed_path],
        env={
            **os.environ,
            "SEAL_TRUST_ROOTS_FILE": str(ensure_test_pki(pki_dir).root_cert),
            "SEAL_CERT_FILE": str(ensure_test_pki(pki_dir).seal_cert),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Accepted" in verified.stdout
    expect(page).to_have_url(re.compile(rf"/mina-arenden/{reference_text}$"))
    expect(status_badge(page)).not_to_have_text("Utkast")
    log_out(page)

    # The caseworker finds it in the queue once the verify actor has run its checks.
    log_in(page, "Ingrid Handläggare")
    open_menu_item(page, "Handläggning")
    expect(page.get_by_role("heading", name="Handläggning", level=1)).to_be_visible()
    to_handle = page.get_by_role("table", name=re.compile(r"^Otilldelade"))

    def listed_to_handle() -> bool:
        return to_handle.get_by_role("link", name=reference_text).count() == 1

    reload_until(page, listed_to_handle, f"{reference_text} under 'Att handlägga'")
    to_handle.get_by_role("link", name=reference_text).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(reference_text)
    expect(status_badge(page)).to_have_text("Handläggs")
    checks = page.get_by_role("table", name="Automatiska kontroller")
    rows = checks.locator("tbody tr")
    expect(rows).to_have_count(len(CHECKS))
    for name in CHECKS:
        row = rows.filter(has_text=name)
        expect(row).to_have_count(1)
        expect(row.locator(".badge")).to_have_text(re.compile("|".join(OUTCOMES)))
    expect(checks).not_to_contain_text("Inga kontroller har körts ännu.")

    page.get_by_role("button", name="Ta ärendet").click()
    expect(page.get_by_text("Ärendet är ditt.")).to_be_visible()
    page.get_by_role("button", name="Godkänn", exact=True).click()
    expect(page.get_by_text("Ärendet är godkänt. Behörigheten läggs in.")).to_be_visible()

    # The apply actor puts the grant in the permission store.
    def applied() -> bool:
        status = status_badge(page).inner_text().strip()
        assert status != "Tekniskt fel", f"{reference_text} failed in the pipeline"
        return status == "Avslutad"

    reload_until(page, applied, f"{reference_text} to read 'Avslutad' (applied and archived)")
    expect(status_badge(page)).to_have_text("Avslutad")
    log_out(page)

    # The new orderer sees his role.
    log_in(page, "Fredrik Falk")
    open_menu_item(page, "Hantera behörigheter")
    expect(page.get_by_role("heading", name="Hantera behörigheter", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Dina roller")).to_be_visible()
    expect(
        page.get_by_role("main")
        .get_by_role("listitem")
        .filter(has_text=re.compile(r"^\s*Behörig beställare – Provverket\b"))
    ).to_have_count(1)
    provverket = page.get_by_role("region", name=re.compile(r"^Provverket"))
    expect(provverket.get_by_role("listitem").filter(has_text="Fredrik Falk")).to_contain_text(
        "Behörig beställare"
    )

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=RESULTS_DIR / "slice.png", full_page=True)

    # Exactly one grant came from this errand, for the right person, employer and role.
    with runtime.session_factory() as session:
        errand = session.scalars(select(Errand).where(Errand.reference == reference_text)).one()
        grants = session.scalars(
            select(RoleGrant).where(RoleGrant.source_errand_id == errand.id)
        ).all()
        assert len(grants) == 1
        grant = grants[0]
        person = session.get(Person, grant.person_id)
        employer = session.get(Employer, grant.employer_id)
        assert person is not None
        assert employer is not None
        assert person.personnummer == "198507049859"
        assert employer.orgnr == "2021004920"
        assert grant.role is Role.ORDERER
        assert grant.valid_to_dt is None


def test_handlaggning_needs_a_signed_in_caseworker(page: Page) -> None:
    response = page.goto("/handlaggning")
    assert response is not None
    assert response.status == 200  # after the redirect
    expect(page).to_have_url(re.compile(r"/logga-in\?next=(/|%2F)handlaggning"))
    expect(page.get_by_role("heading", name="Logga in", level=1)).to_be_visible()
    expect(page.get_by_text("Logga in med e-legitimation för att fortsätta.")).to_be_visible()

    # A person at an employer logs in (and is sent back to the page), but is not let in.
    page.get_by_role("button", name="Mobilt BankID på annan enhet").click()
    with page.expect_response(re.compile(r"/handlaggning$"), timeout=15_000) as sent_back:
        bankid_app(page, "David Dahl", "Legitimera")
    assert sent_back.value.status == 403
    page.wait_for_url(re.compile(r"/handlaggning$"))
    page.wait_for_load_state()

    response = page.goto("/handlaggning")
    assert response is not None
    assert response.status == 403


def test_removal_form_is_filled_in_and_printed(page: Page) -> None:
    """Anna removes herself, names a replacement (so the signatory signs), prints the form
    and downloads the PDF."""
    page.goto("/")
    log_in(page, "Anna Andersson")
    open_menu_item(page, "Ta bort behörig beställare")
    page.get_by_label("Organisationsnummer").fill("202100-5489")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    choose(page, "Jag tar bort mig själv som behörig beställare")
    # Removing oneself: the person comes from the login; the fields for someone else hide.
    expect(page.get_by_text("Du tar bort dig själv: Anna Andersson")).to_be_visible()
    expect(page.get_by_label("Personnummer")).to_be_hidden()
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    expect(page.get_by_role("note")).to_contain_text("ingen behörig beställare kvar")
    choose(page, "Ja")
    page.get_by_label("Personnummer").fill("19900101-9810")
    page.get_by_label("Förnamn").fill("Bertil")
    page.get_by_label("Efternamn").fill("Berg")
    page.get_by_label("Titel").fill("Administrativ chef")
    page.get_by_label("E-postadress i arbetet").fill("bertil.berg@testmyndighet.example")
    choose(page, "Behörig beställare")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    # A new orderer is registered only with the signatory's signature, not Anna's own.
    expect(page.get_by_label("Namn")).to_have_value("")
    page.get_by_label("Namn").fill("Gunilla Generaldirektör")
    page.get_by_label("Personnummer").fill("19640823-9868")
    page.get_by_label("Befattning").fill("Generaldirektör")
    page.get_by_role("button", name="Spara och fortsätt", exact=True).click()
    expect(page.get_by_role("main")).to_contain_text("Bertil Berg")

    page.get_by_role("button", name="Skriv ut, skriv under och skicka in").click()
    expect(status_badge(page)).to_have_text("Väntar på post")
    assert download(page, "Ladda ner blanketten (PDF)").startswith(b"%PDF")
