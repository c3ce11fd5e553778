"""WCAG 2.1 AA (DESIGN §7): axe-core finds no serious or critical violation on the pages
each kind of user works in, filled with real data, in Swedish and in English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from app.intake import queries, reading
from app.intake.models import BatchSource, BatchState, ScanBatch
from tests import scan_corpus as corpus
from tests.e2e.browser import log_in, signed_registration
from tests.factories import clerk, printed, printed_for_post, registration_draft
from tests.support import wait_for
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Page, path: str) -> list[str]:
    """What axe-core finds on ``path`` that blocks someone: rule, impact and where."""
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    return violations_here(page, path)


def violations_here(page: Page, path: str) -> list[str]:
    """What axe-core finds on the page shown now (e.g. the answer to a POST)."""
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA
    )
    return [
        f"{path}: {v['id']} ({v['impact']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
WIDEST = """[...document.querySelectorAll('main *, header *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 3)
  .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)
  .join(', ')"""
"""The first elements that stick out to the right: what makes a page scroll sideways."""
WIDTHS = (1280, 390)
"""A desktop and a phone (DESIGN §7)."""


def check(page: Page, paths: list[str]) -> None:
    """axe-core on each page in Swedish and English, at 1280 px and at 390 px wide; at 390 px
    no page scrolls sideways. The session is left in Swedish, at 1280 px."""
    page.add_init_script(path=str(AXE))  # by the browser itself, past the pages' CSP
    found: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            for lang in ("sv", "en"):
                url = f"{path}{'&' if '?' in path else '?'}lang={lang}"
                found += [f"{width} px {problem}" for problem in violations(page, url)]
                if width < 1000 and page.evaluate(OVERFLOW) > 0:
                    found.append(f"{width} px {url}: scrolls sideways ({page.evaluate(WIDEST)})")
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    page.goto(f"{paths[0]}{'&' if '?' in paths[0] else '?'}lang=sv")
    assert found == [], "\n".join(found)


def test_public_pages(page: Page) -> None:
    assert AXE.exists(), "run make install (npm) for axe-core"
    check(page, ["/", "/logga-in", "/anmalan-behorig-bestallare"])


def test_the_submitters_pages(page: Page, runtime: Runtime) -> None:
    reference = signed_registration(runtime)
    page.goto("/")
    log_in(page, "David Dahl")
    check(
        page,
        [
            "/mina-arenden",
            f"/mina-arenden/{reference}",
            "/anmalan-behorig-bestallare",
            "/ta-bort-behorig-bestallare",
            "/hantera-behorigheter",
            "/sparr",
        ],
    )


def test_the_caseworkers_pages(page: Page, runtime: Runtime) -> None:
    reference = signed_registration(runtime)
    page.goto("/")
    log_in(page, "Ingrid Handläggare")
    page.goto(f"/handlaggning/{reference}")
    page.get_by_role("button", name="Ta ärendet").click()
    check(
        page,
        [
            "/handlaggning?lista=mina",
            f"/handlaggning/{reference}",
            "/handlaggning?lista=otilldelade",
            "/handlaggning/arbetsgivare?q=2021004920",
            "/handlaggning/arbetsgivare?q=verk",
            "/handlaggning/oversikt",
            "/handlaggning/oversikt?lista=inaktiva&minst=1",
            "/handlaggning/oversikt?lista=handlaggningstider&dagar=365",
            "/handlaggning/atkomstlogg",
            "/handlaggning/registerutdrag",
        ],
    )
    # Who has looked at a person's data, answered; a register extract made, and its page.
    page.goto("/handlaggning/atkomstlogg?lang=sv")
    page.get_by_label("Personnummer").fill("19811218-9876")
    page.get_by_label("Skäl till sökningen").fill("Dnr 2026/17")
    page.get_by_role("main").get_by_role("button", name="Sök", exact=True).click()
    page.get_by_role("button", name="Ladda ner som CSV").wait_for()
    extract_found = violations_here(page, "who has looked, answered")
    page.goto("/handlaggning/registerutdrag?lang=sv")
    page.get_by_label("Personnummer").fill("19811218-9876")
    page.get_by_label("Begäran").fill("Brev 1 december, dnr 2026/18")
    page.get_by_role("button", name="Gör registerutdraget").click()
    page.get_by_role("button", name="Registrera att utdraget är lämnat").wait_for()
    extract_found += violations_here(page, "a register extract")
    assert extract_found == [], "\n".join(extract_found)
    # The errors of the decision panel, and the confirmation before a rejection.
    page.goto(f"/handlaggning/{reference}?lang=sv")
    panel = page.get_by_role("complementary")
    panel.get_by_role("button", name="Avslå", exact=True).click()
    found = violations_here(page, "rejection without a reason")
    page.get_by_text("Annat skäl").click()
    page.get_by_label("Förklaring till den som skickade in ärendet").fill("Fel blankett.")
    page.get_by_role("complementary").get_by_role("button", name="Avslå", exact=True).click()
    page.get_by_role("button", name="Ja, avslå ärendet").wait_for()
    found += violations_here(page, "the confirmation of a rejection")
    assert found == [], "\n".join(found)


def _batch_read(runtime: Runtime, batch_id: int) -> bool:
    with runtime.session_factory() as session:
        batch = session.get(ScanBatch, batch_id)
        return batch is not None and batch.state is BatchState.DONE


def test_the_intake_clerks_pages(page: Page, runtime: Runtime) -> None:
    with runtime.unit_of_work() as session:
        errand = printed_for_post(session, registration_draft(session))
        sheets = corpus.scan_pdf(printed(errand), ["clean-200", "rotated+1"])
        # A blank sheet (set aside) and a page without its code (for the manual queue).
        extra = [corpus.blank_page().image, corpus.page_without_qr("reg", 0).image]
        data = corpus.as_pdf([*sheets, *extra])
        batch_id = reading.receive_file(
            session, clerk(session), data, "bunt.pdf", BatchSource.UPLOAD
        ).batch.id
    reading.read_batch(runtime.session_factory, batch_id, runtime.settings.qr_key)
    # ... unless the live server's worker took the batch first: then it reads it.
    wait_for(lambda: _batch_read(runtime, batch_id), message="the batch to be read")
    with runtime.session_factory() as session:
        (form,) = queries.forms_to_confirm(session)
        (without_code,) = queries.manual_queue(session)
        form_id, page_id = form.id, without_code.id
    page.goto("/")
    log_in(page, "Karin Registrator")
    check(
        page,
        [
            "/skanning",
            "/skanning/manuell",
            f"/skanning/bunt/{batch_id}",
            f"/skanning/blankett/{form_id}",
            f"/skanning/sida/{page_id}/registrera",
            f"/skanning/blankett/{form_id}?zoom=2",
        ],
    )


def _access_ids(runtime: Runtime) -> tuple[int, int]:
    """Cecilia's person id and Bertil's administrator grant at Statens testmyndighet."""
    from sqlalchemy import select

    from app.access.models import Person, Role, RoleGrant

    with runtime.session_factory() as session:
        cecilia = session.scalars(
            select(Person.id).where(Person.personnummer == "197205119824")
        ).one()
        grant = session.scalars(
            select(RoleGrant.id).where(RoleGrant.role == Role.ADMINISTRATOR)
        ).one()
    return cecilia, grant


def test_the_orderers_pages(page: Page, runtime: Runtime) -> None:
    cecilia, grant = _access_ids(runtime)
    page.goto("/")
    log_in(page, "Anna Andersson")
    check(
        page,
        [
            "/hantera-behorigheter",
            "/hantera-behorigheter/administratorer/ny",
            f"/hantera-behorigheter/administratorer/{grant}",
            f"/hantera-behorigheter/anvandare/{cecilia}",
        ],
    )


def test_the_administrators_pages(page: Page, runtime: Runtime) -> None:
    cecilia, _grant = _access_ids(runtime)
    page.goto("/")
    log_in(page, "Bertil Berg")
    check(
        page,
        [
            f"/hantera-behorigheter/anvandare/{cecilia}",
            "/hantera-behorigheter/ny-anvandare",
            "/hantera-behorigheter/forfragningar",
        ],
    )


def test_the_users_pages(page: Page, runtime: Runtime) -> None:
    page.goto("/")
    log_in(page, "Cecilia Carlsson")
    check(page, ["/hantera-behorigheter"])
