"""The recurring review in the browser (issue 18 item 4): a year goes by on the demo's
clock, the orderer finds the campaign in Hantera behörigheter and confirms the
administrator; the deadline, the final warning and the ending go by; the caseworker
follows each employer's progress. The pages pass axe-core at 1280 and 390 px, in Swedish
and English."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.access.models import Employer
from devtools.review_clock import let_time_pass
from tests.e2e.browser import log_in, log_out
from tests.e2e.test_accessibility import check
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e


def _days_go_by(runtime: Runtime, days: int) -> None:
    with runtime.unit_of_work() as session:
        let_time_pass(session, runtime.settings, days)


def test_the_orderer_reviews_and_what_nobody_confirmed_ends(page: Page, runtime: Runtime) -> None:
    with runtime.session_factory() as session:
        employer_id = session.scalars(
            select(Employer.id).where(Employer.orgnr == "2021005489")
        ).one()
    path = f"/hantera-behorigheter/granska/{employer_id}/arlig"
    _days_go_by(runtime, 366)

    page.goto("/")
    log_in(page, "Anna Andersson")
    page.goto("/hantera-behorigheter")
    page.get_by_role("link", name="Årlig granskning av behörigheterna").click()
    expect(page.get_by_role("heading", name="Årlig granskning av behörigheterna")).to_be_visible()
    check(page, [path])
    bertil = page.get_by_role("row", name="Bertil Berg")
    expect(bertil).to_contain_text("Att granska")
    bertil.get_by_role("button", name="Behövs fortfarande").click()
    expect(
        page.get_by_text("Bekräftat: 1 behörigheter och roller behövs fortfarande.")
    ).to_be_visible()
    expect(page.get_by_role("row", name="Bertil Berg")).to_contain_text("Bekräftad")
    expect(page.get_by_role("row", name="Cecilia Carlsson")).to_contain_text("Att granska")

    _days_go_by(runtime, 30)  # the deadline: the signatory is told
    page.reload()
    expect(page.get_by_text("Sista dagen har passerat.")).to_be_visible()
    _days_go_by(runtime, 7)  # the final warning
    page.reload()
    expect(page.get_by_text("Sista varning:")).to_be_visible()
    _days_go_by(runtime, 7)  # the ending
    page.reload()
    expect(page.get_by_text("Granskningen är avslutad.")).to_be_visible()
    expect(page.get_by_role("row", name="Cecilia Carlsson")).to_contain_text(
        "Borttagen: inte bekräftad"
    )
    expect(page.get_by_role("row", name="Bertil Berg")).to_contain_text("Bekräftad")
    log_out(page)

    log_in(page, "Ingrid Handläggare")
    check(page, ["/handlaggning/oversikt?lista=granskning", "/demo/granskning"])
    page.goto("/handlaggning/oversikt?lista=granskning")
    row = page.get_by_role("row", name="Statens testmyndighet")
    expect(row).to_contain_text("Avslutad")
    expect(row).to_contain_text("100 %")
