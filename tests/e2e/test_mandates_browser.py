"""Mandates that end (issue 18 item 3) in the browser: the orderer appoints a consultant
administrator until a day, sees the day in the roles table and extends it with one press
("Förläng"); on the new day the scheduled end ends the role and the person is emailed at a
real SMTP server. The administrator's page with "Förläng" passes axe-core."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from app.access import mandates
from tests import smtp as mail
from tests.e2e.browser import PEOPLE, choose, log_in, off_the_loop
from tests.e2e.test_accessibility import check
from tests.smtp import SmtpRecorder, plain_text
from tests.support import wait_for
from workflows.runtime import Runtime

pytestmark = pytest.mark.e2e
# The real SMTP server's fixtures (app_settings, smtp, smtp_server), used by name.
app_settings_fixture = mail.app_settings_fixture
smtp_fixture, smtp_server_fixture = mail.smtp_fixture, mail.smtp_server_fixture

FREDRIK_EMAIL = "fredrik.falk@testmyndighet.example"
MANAGEMENT = "/hantera-behorigheter"


def _mail_to(smtp: SmtpRecorder, address: str, text: str) -> str:
    def found() -> list[str]:
        bodies = [plain_text(m) for to, m in list(smtp.received) if address in to]
        return [b for b in bodies if text in b]

    wait_for(lambda: bool(found()), timeout=20, message=f"an email to {address}: {text}")
    return found()[0]


def test_an_administrator_until_a_day_is_extended_and_then_ends(
    page: Page, runtime: Runtime, smtp: SmtpRecorder
) -> None:
    today = mandates.today_in_sweden()
    ends, later = today + timedelta(days=10), today + timedelta(days=40)
    page.goto("/")
    log_in(page, "Anna Andersson")
    page.goto(f"{MANAGEMENT}/administratorer/ny")
    page.get_by_label("Personnummer").fill(PEOPLE["Fredrik Falk"])
    page.get_by_label("Förnamn").fill("Fredrik")
    page.get_by_label("Efternamn").fill("Falk")
    page.get_by_label("E-postadress i arbetet").fill(FREDRIK_EMAIL)
    choose(page, "Alla arbetsgivarkoder")
    page.get_by_label("Rollen upphör den (frivilligt)").fill(ends.isoformat())
    page.get_by_role("button", name="Utse administratör").click()
    expect(page.get_by_text("Administratören är utsedd.")).to_be_visible()
    roles = page.get_by_role("table", name="Roller hos arbetsgivaren och vem som utsåg dem")
    expect(roles.get_by_role("row", name="Fredrik Falk")).to_contain_text(ends.isoformat())
    assert "upphör den" in _mail_to(smtp, FREDRIK_EMAIL, "har fått rollen")

    roles.get_by_role("link", name="Fredrik Falk").click()
    expect(page.get_by_text(f"upphör den {ends.isoformat()}")).to_be_visible()
    check(page, [urlparse(page.url).path])
    page.get_by_label("Ny dag då det upphör").fill(later.isoformat())
    page.get_by_role("button", name="Förläng").click()
    expect(page.get_by_text("Administratörens roll är förlängd.")).to_be_visible()
    expect(page.get_by_text(f"upphör den {later.isoformat()}")).to_be_visible()
    assert "Anna Andersson" in _mail_to(smtp, FREDRIK_EMAIL, "först den")

    # The old day passes with nothing ended; the new one ends the role, as the worker would.
    for day in (ends, later):
        off_the_loop(
            lambda day=day: mandates.end_due(
                runtime.unit_of_work, base_url=runtime.settings.public_base_url, today=day
            )
        )
    assert "tidsbegränsad och upphörde" in _mail_to(smtp, FREDRIK_EMAIL, "har upphört")
    page.goto(MANAGEMENT)
    expect(roles.get_by_role("row", name="Fredrik Falk")).to_have_count(0)
