"""The receipt and the decision letter without a WeasyPrint layout (app.documents.letter_pdf):
the same words as WeasyPrint's rendering of the same template, PDF/A-3a, tagged, and
WeasyPrint again for whatever the writer cannot set."""

from __future__ import annotations

import collections
import dataclasses
import io
import re
import subprocess
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from app.documents import letter_pdf, render
from app.documents.render import Decision, render_decision_letter, render_receipt
from app.registrations.data import RegistrationData
from tests.sample_forms import CREATED, REGISTRATION, REGISTRATION_DATA, REMOVAL_DATA
from tests.support import pdf_page_texts

REJECTED = Decision(
    approved=False,
    decided_dt=CREATED,
    caseworker="Ingrid Isaksson",
    reason="Den som skrev under är inte firmatecknare",
    explanation="Bolagsverket anger en annan firmatecknare för Provverket sedan den 1 mars. "
    "Skicka in en ny anmälan som firmatecknaren skriver under.",
)
APPROVED = Decision(approved=True, decided_dt=CREATED, caseworker="Ingrid Isaksson")

MARKUP = dataclasses.replace(
    REGISTRATION_DATA,
    form=RegistrationData.from_json({**REGISTRATION, "employer_name": "Bygg & Måleri <Väst> AB"}),
)
"""Characters the template escapes in its HTML."""

LETTERS = {
    "receipt sv": lambda: render_receipt(REGISTRATION_DATA, lang="sv", received_dt=CREATED),
    "receipt en": lambda: render_receipt(REMOVAL_DATA, lang="en", received_dt=CREATED),
    "approval sv": lambda: render_decision_letter(REGISTRATION_DATA, APPROVED, lang="sv"),
    "rejection en": lambda: render_decision_letter(REMOVAL_DATA, REJECTED, lang="en"),
    "rejection sv": lambda: render_decision_letter(REMOVAL_DATA, REJECTED, lang="sv"),
    "escaped sv": lambda: render_receipt(MARKUP, lang="sv", received_dt=CREATED),
}


def _text(pdf: bytes) -> str:
    return "\n".join(pdf_page_texts(pdf))


def _pages(pdf: bytes) -> int:
    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def _producer(path: Path) -> str:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    match = re.search(r"^Producer:\s+(.*)$", info.stdout, re.M)
    return match.group(1) if match else ""


def _by_weasyprint(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*_args: object, **_kwargs: object) -> bytes:
        raise letter_pdf.Unsupported("the reference rendering")

    monkeypatch.setattr(render, "write_letter", unsupported)


@pytest.mark.parametrize("name", list(LETTERS))
def test_a_letter_says_word_for_word_what_weasyprint_lays_out(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    written = LETTERS[name]()
    path = tmp_path / "letter.pdf"
    path.write_bytes(written)
    assert _producer(path).startswith("Behörighet")  # not WeasyPrint's layout
    assert _pages(written) == 1
    with monkeypatch.context() as patched:
        _by_weasyprint(patched)
        reference = LETTERS[name]()
    words = collections.Counter(_text(written).split())
    assert words == collections.Counter(_text(reference).split())
    assert "BB-" in _text(written)


def test_characters_the_html_escapes_come_out_as_typed() -> None:
    assert "Bygg & Måleri <Väst> AB, 202100-4920" in _text(LETTERS["escaped sv"]())


@pytest.mark.parametrize("name", ["receipt sv", "rejection en"])
def test_a_letter_is_tagged_pdf_a_3a(name: str, tmp_path: Path) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(LETTERS[name]())
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    assert re.search(r"^Tagged:\s+yes$", info.stdout, re.M)
    assert re.search(r"^Title:\s+(Kvittens|Decision), BB-", info.stdout, re.M)
    assert re.search(r"^Author:\s+\S", info.stdout, re.M)
    xmp = subprocess.run(
        ["pdfinfo", "-meta", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="A"' in xmp
    fonts = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    rows = fonts.stdout.splitlines()[2:]
    assert rows and all(re.search(r"\byes\s+yes\s+yes\b", row) for row in rows)  # emb sub uni
    expanded = tmp_path / "expanded.pdf"
    subprocess.run(
        ["qpdf", "--qdf", "--object-streams=disable", str(path), str(expanded)], check=True
    )
    raw = expanded.read_bytes()
    lang = name.split()[-1]
    assert f"/Lang ({lang})".encode() in raw
    for needed in (b"/StructTreeRoot", b"/OutputIntents", b"/Marked true", b"/ParentTree"):
        assert needed in raw
    roles = set(re.findall(rb"/S /(\w+)", raw))
    assert {b"Document", b"H1", b"H2", b"P", b"Table", b"TR", b"TH", b"TD"} <= roles
    if name.startswith("receipt"):
        assert {b"L", b"LI", b"Lbl", b"LBody"} <= roles


def test_a_name_outside_the_fonts_subset_is_laid_out_by_weasyprint(tmp_path: Path) -> None:
    form = RegistrationData.from_json({**REGISTRATION, "given_name": "Nguyễn"})
    data = dataclasses.replace(REGISTRATION_DATA, form=form)
    pdf = render_receipt(data, lang="sv", received_dt=CREATED)
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    assert _producer(path).startswith("WeasyPrint")
    assert "Nguyễn Öberg" in _text(pdf)


def test_an_explanation_longer_than_a_page_is_laid_out_by_weasyprint() -> None:
    long = dataclasses.replace(REJECTED, explanation="Uppgifterna stämmer inte. " * 400)
    pdf = render_decision_letter(REMOVAL_DATA, long, lang="sv")
    assert _pages(pdf) > 1
    assert _text(pdf).split().count("stämmer") == 400


@pytest.mark.parametrize(
    "html",
    [
        "<body><h1>Kvittens</h1><img src='x.png'></body>",
        "<body><p class='small'>liten text</p></body>",
        "<body><table class='list'><tr><th>a</th><td>b</td></tr></table></body>",
        "<body><table class='fields'><tr><th>a</th><td>b</td><td>c</td></tr></table></body>",
        "<body>lös text</body>",
        "<body><div class='box'><p>i en ruta</p></div></body>",
    ],
)
def test_what_the_writer_does_not_know_is_unsupported(html: str) -> None:
    with pytest.raises(letter_pdf.Unsupported):
        letter_pdf.read_blocks(html)


def test_without_the_font_files_the_letter_is_laid_out_by_weasyprint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    letter_pdf.font.cache_clear()
    monkeypatch.setattr(letter_pdf, "FONT_DIR", tmp_path / "no-fonts")
    try:
        pdf = LETTERS["receipt sv"]()
    finally:
        letter_pdf.font.cache_clear()
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    assert _producer(path).startswith("WeasyPrint")
    assert "Kvittens för ärende BB-7K3M-Q9XT" in _text(pdf)


def test_a_register_extract_of_someone_unknown_says_so_in_english_in_every_section() -> None:
    nothing: dict[str, object] = {
        key: [] for key in ("roles", "service_permissions", "permission_changes",
                            "permission_requests", "inactivity_confirmations", "errands",
                            "signing_invitations", "signatory_register", "emails", "logins",
                            "access_log")
    }  # fmt: skip
    extract = {
        **nothing,
        "reference": "RU-ABCD-1234",
        "made": "2026-12-03T09:00:00Z",
        "personnummer": "198112189876",
        "person": None,
        "staff_member": None,
    }
    pdf = render.render_register_extract(extract, lang="en")
    text = " ".join(pdf_page_texts(pdf))
    assert "Register extract" in text and "19811218-9876" in text
    assert "You are not a user of the service." in text
    assert text.count("No data.") == 8  # each of its eight sections
    xmp = PdfFileReader(io.BytesIO(pdf)).root["/Metadata"].get_object().data.decode()
    assert re.search(r"pdfaid:part(=\"|>)3", xmp)  # PDF/A-3
