"""A name in a right-to-left script cannot move or turn around the personnummer shown next
to it: typed text beside an id is isolated (``<bdi>``) on the pages and in the PDFs.

Without the isolation an Arabic name before ``19850704-9859`` makes the number read
``9859-19850704`` (the Unicode bidirectional algorithm takes its digits for Arabic ones).
The PDFs are read back in their visual order (``pdftotext -raw``)."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.documents.render import Decision, render_decision_letter, render_receipt
from app.registrations.data import RegistrationData, RemovalData
from tests.conftest import DAVID, INGRID, login
from tests.factories import in_review
from tests.sample_forms import CREATED, REGISTRATION, REGISTRATION_DATA, REMOVAL, REMOVAL_DATA

GIVEN, FAMILY = "محمد", "علي"
NAME = f"{GIVEN} {FAMILY}"
EMPLOYER = "شركة الاختبار"


def _visual_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-raw", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_an_arabic_name_leaves_the_personnummer_in_the_receipt_as_it_is(tmp_path: Path) -> None:
    removal = RemovalData.from_json(
        {**REMOVAL, "given_name": GIVEN, "family_name": FAMILY, "employer_name": EMPLOYER}
    )
    receipt = render_receipt(
        dataclasses.replace(REMOVAL_DATA, form=removal), lang="sv", received_dt=CREATED
    )
    text = _visual_text(receipt, tmp_path)
    assert "19850704-9859" in text and "9859-19850704" not in text
    assert "202100-4920" in text and "4920-202100" not in text


def test_an_arabic_name_leaves_the_personnummer_in_the_decision_as_it_is(tmp_path: Path) -> None:
    registration = RegistrationData.from_json(
        {**REGISTRATION, "given_name": GIVEN, "family_name": FAMILY}
    )
    decision = Decision(True, datetime(2026, 3, 9, 9, 0, tzinfo=UTC), "Ingrid Handläggare")
    letter = render_decision_letter(
        dataclasses.replace(REGISTRATION_DATA, form=registration), decision, lang="en"
    )
    text = _visual_text(letter, tmp_path)
    assert "19850704-9859" in text and "9859-19850704" not in text


def test_names_beside_ids_are_isolated_on_the_caseworkers_and_submitters_pages(
    client: FlaskClient, session: Session
) -> None:
    errand = in_review(session, given_name=GIVEN, family_name=FAMILY)
    session.commit()
    login(client, session, INGRID, staff=True)
    page = client.get(f"/handlaggning/{errand.reference}").get_data(as_text=True)
    assert f"<bdi>{NAME}</bdi>, 19850704-9859" in page
    queue = client.get("/handlaggning?lista=otilldelade").get_data(as_text=True)
    assert f"<td><bdi>{NAME}</bdi></td>" in queue

    submitter = client.application.test_client()  # David, who sent it in: his errand's page
    login(submitter, session, DAVID)
    page = submitter.get(f"/mina-arenden/{errand.reference}").get_data(as_text=True)
    assert f"<bdi>{NAME}</bdi>, 19850704-9859" in page
