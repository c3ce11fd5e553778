"""PDFs and their QR codes: payload and MAC, per-page codes read back, PDF/A and tagging."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from weasyprint import HTML

from app.config import qr_mac_key
from app.documents import render
from app.documents.qr import (
    QR_PLACEMENT,
    FormKind,
    MalformedQrPayload,
    QrMacMismatch,
    QrPayload,
    QrPayloadError,
    decode_payload,
    encode_payload,
    form_digest,
    qr_png,
)
from app.documents.render import (
    TEMPLATE_VERSION,
    CodeLine,
    DocumentData,
    render_blank_form,
    render_form_pdf,
    render_receipt,
)
from app.documents.scan import MAC_MISMATCH, MALFORMED, NO_QR_CODE, decode_pdf_pages
from app.registrations.data import RegistrationData
from app.registrations.models import FORM_KINDS, ErrandKind
from tests.sample_forms import (
    CODES,
    CREATED,
    KEY,
    REGISTRATION,
    REGISTRATION_DATA,
    REMOVAL_DATA,
)
from tests.support import pdf_page_texts

PAGE_TEXT = {"sv": "sida {k} av {m}", "en": "page {k} of {m}"}


def _write(tmp_path: Path, pdf: bytes, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(pdf)
    return path


def _pdfinfo(path: Path, *args: str) -> str:
    return subprocess.run(
        ["pdfinfo", *args, str(path)], check=True, capture_output=True, text=True
    ).stdout


# --- payload and MAC ----------------------------------------------------------------

PAYLOAD = QrPayload(FormKind.REGISTRATION, 1, 123, 1, 2, form_digest(REGISTRATION))


def test_round_trip_and_format() -> None:
    text = encode_payload(PAYLOAD, KEY)
    assert re.fullmatch(r"BH1:REG:1:123:1/2:[A-Z2-7]{16}:[A-Z2-7]{16}", text)
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    assert decode_payload(text, KEY) == PAYLOAD

    blank = QrPayload(FormKind.REMOVAL, 1, None, 2, 2, form_digest({}))
    blank_text = encode_payload(blank, KEY)
    assert blank_text.startswith("BH1:REM:1:BLANK:2/2:")
    assert decode_payload(blank_text, KEY) == blank


def test_form_digest_is_canonical() -> None:
    reordered = dict(reversed(list(REGISTRATION.items())))
    assert form_digest(reordered) == form_digest(REGISTRATION)
    assert re.fullmatch(r"[A-Z2-7]{16}", form_digest(REGISTRATION))
    assert form_digest({**REGISTRATION, "email": "x@y.se"}) != form_digest(REGISTRATION)


def test_kinds_map_to_errand_kinds() -> None:
    for kind in FORM_KINDS:
        assert FormKind.of(kind).errand_kind is kind


@pytest.mark.parametrize(
    "change",
    [
        {"kind": FormKind.REMOVAL},
        {"errand_id": 124},
        {"errand_id": None},
        {"page": 2},
        {"pages": 3},
        {"template_version": 2},
        {"digest": form_digest({**REGISTRATION, "role": "orderer"})},
    ],
)
def test_a_changed_payload_fails_the_mac(change: dict[str, Any]) -> None:
    mac = encode_payload(PAYLOAD, KEY).rsplit(":", 1)[1]
    changed = encode_payload(dataclasses.replace(PAYLOAD, **change), KEY)
    forged = f"{changed.rsplit(':', 1)[0]}:{mac}"
    with pytest.raises(QrMacMismatch):
        decode_payload(forged, KEY)


def test_a_different_key_fails_the_mac() -> None:
    text = encode_payload(PAYLOAD, KEY)
    with pytest.raises(QrMacMismatch):
        decode_payload(text, qr_mac_key("another-secret"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "https://example.org/BH1:REG:1:123:1/2",
        "BH2:REG:1:123:1/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:XYZ:1:123:1/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:REG:0:123:1/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:REG:1:0123:1/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:REG:1:123:3/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:REG:1:123:0/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA",
        "BH1:REG:1:123:1/2:AAAAAAAAAAAAAAA1:AAAAAAAAAAAAAAAA",
        "BH1:REG:1:123:1/2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAA:X",
        "bh1:reg:1:123:1/2:aaaaaaaaaaaaaaaa:aaaaaaaaaaaaaaaa",
    ],
)
def test_garbage_is_malformed(text: str) -> None:
    with pytest.raises(MalformedQrPayload):
        decode_payload(text, KEY)
    assert issubclass(MalformedQrPayload, QrPayloadError)
    assert issubclass(QrMacMismatch, QrPayloadError)
    assert issubclass(QrPayloadError, ValueError)


def test_encode_refuses_impossible_numbers() -> None:
    with pytest.raises(ValueError):
        encode_payload(dataclasses.replace(PAYLOAD, page=3), KEY)
    with pytest.raises(ValueError):
        encode_payload(dataclasses.replace(PAYLOAD, digest="not-a-digest"), KEY)


# --- rendered forms -----------------------------------------------------------------

CASES = [
    (data, lang, for_print)
    for data in (REGISTRATION_DATA, REMOVAL_DATA)
    for lang in ("sv", "en")
    for for_print in (True, False)
]


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[ErrandKind, str, bool], bytes]:
    return {
        (data.kind, lang, for_print): render_form_pdf(data, lang=lang, key=KEY, for_print=for_print)
        for data, lang, for_print in CASES
    }


@pytest.mark.parametrize(
    ("data", "lang", "for_print"),
    CASES,
    ids=[f"{d.kind.value}-{lang}-{'print' if p else 'esign'}" for d, lang, p in CASES],
)
def test_every_page_carries_its_own_code_and_the_reference(
    rendered: dict[tuple[ErrandKind, str, bool], bytes],
    data: DocumentData,
    lang: str,
    for_print: bool,
) -> None:
    pdf = rendered[data.kind, lang, for_print]
    decoded = decode_pdf_pages(pdf, KEY)
    texts = pdf_page_texts(pdf)
    pages = len(decoded)
    assert pages >= 2
    for k, (result, text) in enumerate(zip(decoded, texts, strict=True), start=1):
        assert result.error is None
        assert result.page_index == k - 1
        assert result.payload == QrPayload(
            FormKind.of(data.kind),
            TEMPLATE_VERSION,
            data.errand_id,
            k,
            pages,
            data.digest,
        )
        assert data.reference is not None
        assert data.reference in text
        assert PAGE_TEXT[lang].format(k=k, m=pages) in text
    everything = "\n".join(texts)
    assert "19850704-9859" in everything
    assert "202100-4920" in everything
    assert ("851 90 Sundsvall" in everything) is for_print
    if data.kind is ErrandKind.REGISTRATION:
        delegation = {
            "sv": "Rollen som företrädare för arbetsgivaren kan inte delegeras",
            "en": "The role of representative of the employer cannot be delegated",
        }
        assert delegation[lang] in " ".join(everything.split())
        assert "B2002" in everything
    else:
        assert "19900101-2380" in everything  # the replacement


def test_english_pdf_is_in_english(
    rendered: dict[tuple[ErrandKind, str, bool], bytes], tmp_path: Path
) -> None:
    text = " ".join(pdf_page_texts(rendered[ErrandKind.REGISTRATION, "en", True]))
    assert "Registration – authorised orderer" in text
    assert "Personal identity number" in text
    assert "Personnummer" not in text
    info = _pdfinfo(_write(tmp_path, rendered[ErrandKind.REGISTRATION, "en", True]))
    assert "Title:           Registration – authorised orderer, BB-7K3M-Q9XT" in info


def test_qr_code_is_at_the_published_spot(
    rendered: dict[tuple[ErrandKind, str, bool], bytes],
) -> None:
    document = pdfium.PdfDocument(rendered[ErrandKind.REMOVAL, "sv", True])
    page = document[0]
    image = page.render(scale=300 / 72, grayscale=True).to_pil()
    page.close()
    document.close()
    (barcode,) = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    px_per_mm = image.width / QR_PLACEMENT.page_width_mm
    corners = [
        barcode.position.top_left,
        barcode.position.top_right,
        barcode.position.bottom_right,
        barcode.position.bottom_left,
    ]
    # zxing reports the symbol without its quiet zone of four modules.
    _, modules = qr_png(barcode.text)
    quiet_mm = 4 * QR_PLACEMENT.size_mm / modules
    left = min(p.x for p in corners) / px_per_mm - quiet_mm
    right = max(p.x for p in corners) / px_per_mm + quiet_mm
    bottom = QR_PLACEMENT.page_height_mm - max(p.y for p in corners) / px_per_mm - quiet_mm
    top = QR_PLACEMENT.page_height_mm - min(p.y for p in corners) / px_per_mm + quiet_mm
    assert left == pytest.approx(QR_PLACEMENT.x_mm, abs=0.7)
    assert bottom == pytest.approx(QR_PLACEMENT.y_mm, abs=0.7)
    assert right - left == pytest.approx(QR_PLACEMENT.size_mm, abs=0.7)
    assert top - bottom == pytest.approx(QR_PLACEMENT.size_mm, abs=0.7)


@pytest.mark.parametrize("kind", FORM_KINDS)
def test_blank_form_pages_decode_without_a_errand(kind: ErrandKind) -> None:
    pdf = render_blank_form(kind, lang="sv", key=KEY)
    decoded = decode_pdf_pages(pdf, KEY)
    assert len(decoded) >= 2
    for k, result in enumerate(decoded, start=1):
        assert result.payload is not None
        assert result.payload.errand_id is None
        assert result.payload.kind is FormKind.of(kind)
        assert (result.payload.page, result.payload.pages) == (k, len(decoded))
        assert result.payload.digest == form_digest({})
    text = " ".join(pdf_page_texts(pdf))
    assert "Namnteckning" in text
    assert "851 90 Sundsvall" in text


def test_a_long_form_gets_the_right_page_count_in_every_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes = [CodeLine(f"B{3000 + i}", f"Provverket enhet {i}") for i in range(70)]
    data = dataclasses.replace(
        REGISTRATION_DATA,
        employer_codes=codes,
        form=RegistrationData.from_json(
            {**REGISTRATION, "employer_codes": [c.code for c in codes]}
        ),
    )
    layouts = 0
    real_layout = render._layout

    def counting_layout(html: str) -> Any:
        nonlocal layouts
        layouts += 1
        return real_layout(html)

    monkeypatch.setattr(render, "_layout", counting_layout)
    pdf = render_form_pdf(data, lang="sv", key=KEY, for_print=True)
    decoded = decode_pdf_pages(pdf, KEY)
    assert len(decoded) > 2
    assert [(r.payload.page, r.payload.pages) for r in decoded if r.payload] == [
        (k, len(decoded)) for k in range(1, len(decoded) + 1)
    ]
    assert layouts == 2  # the nominal count was wrong once ...
    render_form_pdf(data, lang="sv", key=KEY, for_print=True)
    assert layouts == 3  # ... and the next form of that layout is laid out once


def test_a_registration_prints_the_chosen_codes_only() -> None:
    all_codes = [*CODES, CodeLine("B2003", "Provverket Kiruna")]
    chosen = dataclasses.replace(
        REGISTRATION_DATA,
        employer_codes=all_codes,
        form=RegistrationData.from_json({**REGISTRATION, "employer_codes": ["B2002", "B9999"]}),
    )
    assert render._code_lines(chosen) == [CODES[1], CodeLine("B9999", "")]
    every = dataclasses.replace(
        chosen,
        form=RegistrationData.from_json({**REGISTRATION, "all_codes": True, "employer_codes": []}),
    )
    assert render._code_lines(every) == all_codes


def test_common_case_is_laid_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_layout = render._layout
    monkeypatch.setattr(render, "_layout", lambda html: calls.append(html) or real_layout(html))
    render_form_pdf(REMOVAL_DATA, lang="sv", key=KEY, for_print=True)
    assert len(calls) == 1


# --- reading codes back ---------------------------------------------------------------


def _page_with_code(text: str) -> bytes:
    """A one-page PDF with a QR code of ``text`` printed where the forms print theirs."""
    png, modules = qr_png(text)
    uri = "data:image/png;base64," + __import__("base64").b64encode(png).decode()
    dpi = modules * 25.4 / QR_PLACEMENT.size_mm
    p = QR_PLACEMENT
    html = (
        "<style>@page { size: A4; margin: 0 }"
        f"img {{ position: absolute; left: {p.x_mm}mm; bottom: {p.y_mm}mm;"
        f" width: {p.size_mm}mm; image-rendering: pixelated; image-resolution: {dpi}dpi }}"
        f"</style><p>Ett papper</p><img src='{uri}' alt=''>"
    )
    pdf = HTML(string=html).write_pdf()
    assert pdf is not None
    return pdf


def test_a_page_whose_code_was_changed_fails_the_mac() -> None:
    genuine = encode_payload(PAYLOAD, KEY)
    body, mac = genuine.rsplit(":", 1)
    tampered = body.replace(":123:", ":124:") + ":" + mac
    assert decode_pdf_pages(_page_with_code(genuine), KEY)[0].payload == PAYLOAD
    (result,) = decode_pdf_pages(_page_with_code(tampered), KEY)
    assert (result.payload, result.error) == (None, MAC_MISMATCH)


def test_foreign_code_and_no_code() -> None:
    (foreign,) = decode_pdf_pages(_page_with_code("HTTPS://EXAMPLE.ORG/"), KEY)
    assert (foreign.payload, foreign.error) == (None, MALFORMED)
    receipt = render_receipt(REMOVAL_DATA, lang="sv", received_dt=CREATED)
    (nothing,) = decode_pdf_pages(receipt, KEY)
    assert (nothing.payload, nothing.error) == (None, NO_QR_CODE)


def test_wrong_key_and_upside_down_pages(
    rendered: dict[tuple[ErrandKind, str, bool], bytes],
) -> None:
    pdf = rendered[ErrandKind.REGISTRATION, "sv", True]
    assert {r.error for r in decode_pdf_pages(pdf, qr_mac_key("other"))} == {MAC_MISMATCH}

    document = pdfium.PdfDocument(pdf)
    for page in document:
        page.set_rotation(180)
        page.close()
    out = io.BytesIO()
    document.save(out)
    document.close()
    decoded = decode_pdf_pages(out.getvalue(), KEY)
    assert [r.payload.page for r in decoded if r.payload] == [1, 2]


# --- PDF/A ----------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("qpdf") or not shutil.which("pdfinfo"), reason="needs qpdf")
@pytest.mark.parametrize(
    ("key", "title", "lang"),
    [
        (
            (ErrandKind.REGISTRATION, "sv", True),
            "Anmälan – behörig beställare, BB-7K3M-Q9XT",
            "sv",
        ),
        ((ErrandKind.REMOVAL, "en", False), "Remove authorised orderer, BB-4H2P-ZX8R", "en"),
    ],
)
def test_pdf_is_tagged_pdf_a_3a(
    rendered: dict[tuple[ErrandKind, str, bool], bytes],
    tmp_path: Path,
    key: tuple[ErrandKind, str, bool],
    title: str,
    lang: str,
) -> None:
    path = _write(tmp_path, rendered[key])
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    info = _pdfinfo(path)
    assert re.search(r"^Tagged:\s+yes$", info, re.M)
    assert re.search(rf"^Pages:\s+{len(pdf_page_texts(rendered[key]))}$", info, re.M)
    assert re.search(rf"^Title:\s+{re.escape(title)}$", info, re.M)
    assert re.search(r"^Author:\s+\S", info, re.M)
    xmp = _pdfinfo(path, "-meta")
    assert re.search(r"pdfaid:part(=\"|>)3", xmp)
    assert re.search(r"pdfaid:conformance(=\"|>)A", xmp)
    expanded = tmp_path / "expanded.pdf"
    subprocess.run(
        ["qpdf", "--qdf", "--object-streams=disable", str(path), str(expanded)], check=True
    )
    raw = expanded.read_bytes()
    assert f"/Lang ({lang})".encode() in raw
    assert b"/StructTreeRoot" in raw
    assert b"/OutputIntents" in raw


def test_receipt(tmp_path: Path) -> None:
    pdf = render_receipt(REMOVAL_DATA, lang="sv", received_dt=CREATED)
    (text,) = pdf_page_texts(pdf)
    assert "Kvittens" in text
    assert "BB-4H2P-ZX8R" in text
    assert "2 mars 2026 kl. 10:30" in text  # Swedish time
    assert "Ta bort behörig beställare" in text
    assert "Post (blankett på papper)" in text
    assert "Provverket" in text and "19850704-9859" in text
    info = _pdfinfo(_write(tmp_path, pdf))
    assert re.search(r"^Tagged:\s+yes$", info, re.M)
    assert 'pdfaid:part="3"' in _pdfinfo(_write(tmp_path, pdf), "-meta")

    english = " ".join(pdf_page_texts(render_receipt(REMOVAL_DATA, lang="en", received_dt=CREATED)))
    assert "Receipt" in english and "March 2, 2026 at 10:30" in english
