"""The evidence page as written into a document's update: its text as pdfium reads it, its
pages when the events are many, its tags; no database and no seal (the integration tests
seal it: tests/integration/test_evidence.py)."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from app.documents import evidence_page
from app.documents.evidence_page import (
    EvidencePage,
    EvidenceSection,
    append_evidence_page,
    grouped,
)
from app.documents.letter_pdf import Unsupported
from app.documents.render import render_form_pdf
from tests.sample_forms import KEY, REGISTRATION_DATA
from tests.support import pdf_page_texts, written_pdf

SHA = "2675784edb2028194fba79d0702a64d603b8bc71fb60820d1bcfbcbd5f0516fe"


@pytest.fixture(scope="module")
def form_pdf() -> bytes:
    return render_form_pdf(REGISTRATION_DATA, lang="sv", key=KEY, for_print=False)


def _page(events: int, name: str = "Eva Ek") -> EvidencePage:
    return EvidencePage(
        lang="sv",
        agency="Statens tjänstepensionsverk",
        meta=("BB-7K3M-Q9XT", "3 december 2026"),
        heading="Bevis om elektronisk underskrift",
        lead="SPV lade till den här sidan före myndighetens sigill.",
        sections=(
            EvidenceSection("Undertecknare", (("Namn", name), ("Personnummer", "19521003-****"))),
            EvidenceSection("Underskrift med BankID", (("SHA-256", grouped(SHA)),)),
            EvidenceSection(
                "Händelser fram till förseglingen",
                tuple((f"2026-12-03 09:{i:02d}:00 UTC", f"Händelse {i}") for i in range(events)),
            ),
        ),
        footer="Bevis för ärende BB-7K3M-Q9XT, sida %(page)s av %(pages)s",
    )


def _appended(pdf: bytes, page: EvidencePage) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    append_evidence_page(writer, page)
    return written_pdf(writer)


def test_the_page_says_what_it_was_given_after_the_form(form_pdf: bytes) -> None:
    pdf = _appended(form_pdf, _page(3, "Ștefan Čapek 北"))
    assert pdf.startswith(form_pdf), "an incremental update: the form's bytes stay first"
    texts = pdf_page_texts(pdf)
    assert texts[:-1] == pdf_page_texts(form_pdf)
    page = texts[-1]
    for said in ("Bevis om elektronisk underskrift", "19521003-****", "Händelse 2"):
        assert said in page
    # A letter the fonts lack loses its diacritics (or becomes ?): the exact text is in
    # the attached files.
    assert "Stefan Čapek ?" in page
    assert grouped(SHA)[:35] in page and SHA[-8:] in page
    assert "sida 1 av 1" in page


def test_many_events_go_on_over_pages_each_under_its_heading(form_pdf: bytes) -> None:
    pdf = _appended(form_pdf, _page(80))
    texts = pdf_page_texts(pdf)[len(pdf_page_texts(form_pdf)) :]
    assert len(texts) >= 2
    whole = "\n".join(texts)
    assert all(f"Händelse {i}\r\n" in whole + "\r\n" for i in range(80))
    for number, text in enumerate(texts, start=1):
        assert f"sida {number} av {len(texts)}" in text
    assert texts[1].startswith("Händelser fram till förseglingen")


def test_the_pages_are_in_the_documents_tag_structure(form_pdf: bytes) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(form_pdf))
    added = append_evidence_page(writer, _page(3))
    reader = PdfFileReader(io.BytesIO(written_pdf(writer)))
    tree = reader.root["/StructTreeRoot"]
    (top,) = tree["/K"]
    section_ref = top.get_object()["/K"].raw_get(-1)
    assert section_ref.idnum == added.section.idnum
    section = section_ref.get_object()
    assert section["/S"] == "/Sect"
    roles = {str(kid.get_object()["/S"]) for kid in section["/K"]}
    assert {"/H1", "/H2", "/P", "/Table"} <= roles
    nums = tree["/ParentTree"]["/Nums"]
    page = reader.root["/Pages"]["/Kids"][-1]
    assert int(nums[-2]) == int(page["/StructParents"])


def test_an_untagged_document_gets_no_page(form_pdf: bytes) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(form_pdf))
    del writer.root["/StructTreeRoot"]
    with pytest.raises(ValueError, match="not tagged"):
        append_evidence_page(writer, _page(1))


def test_a_row_taller_than_a_page_is_unsupported() -> None:
    page = _page(0, "ord " * 2000)
    with pytest.raises(Unsupported):
        evidence_page.lay_out(page)
