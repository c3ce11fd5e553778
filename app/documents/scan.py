"""Reading a form's QR codes back from a PDF: a scan of posted paper, or one we rendered.

Each page is rasterised once (pypdfium2, grayscale) and searched for QR codes only
(zxing-cpp): first in a crop around :data:`~app.documents.qr.QR_PLACEMENT`, then in the
same crop turned upside down (a page fed the wrong way round), and only then in the
whole page, which costs about ten times as much.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pypdfium2 as pdfium
import zxingcpp
from PIL import Image

from app.documents.qr import (
    QR_PLACEMENT,
    MalformedQrPayload,
    QrMacMismatch,
    QrPayload,
    decode_payload,
)

NO_QR_CODE = "no_qr_code"
"""No QR code could be read on the page."""
MALFORMED = "malformed"
"""A QR code was read, but it is not one of our form codes."""
MAC_MISMATCH = "mac_mismatch"
"""One of our form codes whose MAC does not match: altered, or made with another key."""

_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_SEVERITY = {NO_QR_CODE: 0, MALFORMED: 1, MAC_MISMATCH: 2}
_MM_PER_POINT = 25.4 / 72
CROP_MARGIN_MM = 12.0
"""Slack around the printed position, for pages scanned askew or offset."""


@dataclass(frozen=True)
class PageDecode:
    """What one page's QR code said, or why it said nothing we can use."""

    page_index: int
    """0-based."""
    payload: QrPayload | None
    error: str | None
    """:data:`NO_QR_CODE`, :data:`MALFORMED` or :data:`MAC_MISMATCH` when no payload."""


def _read(image: Image.Image, key: bytes) -> tuple[QrPayload | None, str]:
    """The first valid payload among the QR codes in the image, or the worst problem."""
    error = NO_QR_CODE
    for barcode in zxingcpp.read_barcodes(image, formats=_QR_ONLY):
        try:
            return decode_payload(barcode.text, key), ""
        except QrMacMismatch:
            error = MAC_MISMATCH
        except MalformedQrPayload:
            error = max(error, MALFORMED, key=_SEVERITY.__getitem__)
    return None, error


def decode_page(page: pdfium.PdfPage, page_index: int, key: bytes, dpi: int = 200) -> PageDecode:
    """Rasterise one page and read its QR code."""
    width_pt, height_pt = page.get_size()
    placement = dataclasses.replace(
        QR_PLACEMENT,
        page_width_mm=width_pt * _MM_PER_POINT,
        page_height_mm=height_pt * _MM_PER_POINT,
    )
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        image = bitmap.to_pil()
        error = NO_QR_CODE
        for rotated in (False, True):
            box = placement.crop_box(image.width, image.height, CROP_MARGIN_MM, rotated=rotated)
            payload, problem = _read(image.crop(box), key)
            if payload is not None:
                return PageDecode(page_index, payload, None)
            error = max(error, problem, key=_SEVERITY.__getitem__)
        payload, problem = _read(image, key)
        if payload is not None:
            return PageDecode(page_index, payload, None)
        return PageDecode(page_index, None, max(error, problem, key=_SEVERITY.__getitem__))
    finally:
        bitmap.close()


def decode_pdf_pages(pdf: bytes, key: bytes, dpi: int = 200) -> list[PageDecode]:
    """One :class:`PageDecode` for every page of the PDF, in order.

    Raises :class:`pypdfium2.PdfiumError` when the bytes are not a readable PDF.
    """
    document = pdfium.PdfDocument(pdf)
    try:
        results = []
        for index in range(len(document)):
            page = document[index]
            try:
                results.append(decode_page(page, index, key, dpi))
            finally:
                page.close()
        return results
    finally:
        document.close()
