"""Rule 11 in the browser: the orderer finds the inactive demo user flagged on
"Gå igenom behörigheterna" and removes her; the page passes axe-core at 1280 and 390 px,
in Swedish and English."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.access.models import Employer
from tests.e2e.browser import log_in
from tests.e2e.test_accessibility import BLOCKING, WCAG_AA, check
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e


def _review_path(runtime: Runtime) -> str:
    with runtime.session_factory() as session:
        employer_id = session.scalars(
            select(Employer.id).where(Employer.orgnr == "2021005489")
        ).one()
    return f"/hantera-behorigheter/granska/{employer_id}"


def test_the_inactive_user_is_flagged_and_removed_in_the_review(
    page: Page, runtime: Runtime
) -> None:
    path = _review_path(runtime)
    page.goto("/")
    log_in(page, "Anna Andersson")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        check(page, [path, "/hantera-behorigheter/granska"])
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{path}?lang=sv")  # the checks left the session in English
    row = page.get_by_role("row", name="Cecilia Carlsson")
    expect(row).to_contain_text("Inaktiv länge (18 månader)")
    row.locator("label.checkbox__label").click()  # FKUI draws the box on the label
    expect(row.get_by_role("checkbox", name="Välj Cecilia Carlsson")).to_be_checked()
    page.get_by_role("button", name="Ta bort alla behörigheter för de valda").click()
    expect(page.get_by_role("heading", name="Ta bort alla behörigheter")).to_be_visible()
    # The check page comes from a form post: axe-core runs where it is.
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA
    )["violations"]
    assert [v["id"] for v in found if v["impact"] in BLOCKING] == []
    page.get_by_label("Anledning").fill("Har slutat")
    page.get_by_role("button", name="Ta bort behörigheterna").click()
    expect(page.get_by_text("Behörigheterna är borttagna för 1 användare.")).to_be_visible()
    expect(page.get_by_text("Ingen användare är markerad som inaktiv.")).to_be_visible()
