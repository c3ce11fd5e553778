"""Signatory register changes in the browser (issue 18 item 5): the caseworker imports the
demo's extract of the company register (the demo's stand-in for its delivery); the orderer
whose registration the departed signatory signed sees her role flagged for review, not
revoked; the caseworker finds the opened errand in the queue and approves it, and the flag
goes. The pages pass axe-core at 1280 and 390 px, in Swedish and English."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.access.models import RoleReviewFlag
from app.registrations.models import Errand, ErrandKind
from tests.e2e.browser import log_in, log_out, reload_until, status_badge
from tests.e2e.test_accessibility import check
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e


def test_a_departed_signatory_flags_the_role_and_the_caseworker_reviews_it(
    page: Page, runtime: Runtime
) -> None:
    page.goto("/")
    log_in(page, "Ingrid Handläggare")
    page.get_by_role(
        "button", name="Demo: importera Bolagsverkets utdrag över firmatecknare"
    ).click()
    expect(page.get_by_text("Bolagsverkets utdrag importerat: 4 ändringar")).to_be_visible()
    with runtime.session_factory() as session:
        reference = session.scalars(
            select(Errand.reference).where(Errand.kind == ErrandKind.SIGNATORY_CHANGE)
        ).one()
    log_out(page)

    log_in(page, "Anna Andersson")
    page.goto("/hantera-behorigheter")
    roles = page.get_by_role("table", name="Roller hos arbetsgivaren och vem som utsåg dem")
    row = roles.get_by_role("row", name=re.compile(r"^Anna Andersson"))
    expect(row).to_contain_text("Granskas av SPV")
    expect(row).to_contain_text("Gunilla Generaldirektör")
    check(page, ["/hantera-behorigheter"])
    log_out(page)

    log_in(page, "Ingrid Handläggare")
    page.goto("/handlaggning")
    queue = page.get_by_role("main")
    queue.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ändrad firmatecknare")
    expect(page.locator("#review-flag")).to_contain_text("Anna Andersson")
    check(page, [f"/handlaggning/{reference}"])
    page.get_by_role("button", name="Ta ärendet").click()
    expect(page.get_by_role("button", name="Avslå")).to_have_count(0)
    approval = page.locator("form", has=page.get_by_role("button", name="Godkänn", exact=True))
    approval.locator("textarea").first.fill("Den nya generaldirektören bekräftar Anna.")
    page.get_by_role("button", name="Godkänn", exact=True).click()
    expect(page.get_by_text("Ärendet är godkänt.")).to_be_visible()

    def closed() -> bool:
        return status_badge(page).inner_text().strip() == "Avslutad"

    reload_until(page, closed, f"{reference} to be closed")
    with runtime.session_factory() as session:
        flag = session.scalars(select(RoleReviewFlag)).one()
        assert flag.resolved_dt is not None
