"""Reading a form's QR codes back from a PDF: a scan of posted paper, or one we rendered.

A page is searched for QR codes only (zxing-cpp): first in a crop around
:data:`~app.documents.qr.QR_PLACEMENT`, then in the crop where the code is on a page
turned upside down (fed the wrong way round), then both smoothed (a noisy 1-bit scan),
and only then in the whole page, which costs about ten times as much. A PDF page is
rasterised (pypdfium2, grayscale) only as far as that search needs: the crop first.

:func:`find_code` is that search; :func:`read_page_image` runs it on a page image from
anywhere (a scanner's TIFF or JPEG, an image in a PDF), and :mod:`app.intake.decoding`
builds the scanned intake on both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pypdfium2 as pdfium
import zxingcpp
from PIL import Image, ImageFilter

from app.documents.qr import (
    QR_PLACEMENT,
    MalformedQrPayload,
    QrMacMismatch,
    QrPayload,
    QrPlacement,
    decode_payload,
)

NO_QR_CODE = "no_qr_code"
"""No QR code could be read on the page."""
MALFORMED = "malformed"
"""A QR code was read, but it is not one of our form codes."""
MAC_MISMATCH = "mac_mismatch"
"""One of our form codes whose MAC does not match: altered, or made with another key."""

_SEVERITY = {NO_QR_CODE: 0, MALFORMED: 1, MAC_MISMATCH: 2}
_MM_PER_POINT = 25.4 / 72
CROP_MARGIN_MM = 12.0
"""Slack around the printed position, for pages scanned askew or offset."""

_SMOOTH = ImageFilter.BoxBlur(1)

A4_MM = (QR_PLACEMENT.page_width_mm, QR_PLACEMENT.page_height_mm)


@dataclass(frozen=True)
class QrRead:
    """What the QR code on one page image said, or why it said nothing we can use."""

    payload: QrPayload | None
    error: str | None
    """:data:`NO_QR_CODE`, :data:`MALFORMED` or :data:`MAC_MISMATCH` when no payload."""
    turned: int = 0
    """Degrees (0, 90, 180 or 270) the page is turned clockwise, as the code shows; 180
    when it was found where it is on a page turned upside down."""

    @property
    def upside_down(self) -> bool:
        return self.turned == 180


@dataclass(frozen=True)
class PageDecode:
    """What one page's QR code said, or why it said nothing we can use."""

    page_index: int
    """0-based."""
    payload: QrPayload | None
    error: str | None
    """:data:`NO_QR_CODE`, :data:`MALFORMED` or :data:`MAC_MISMATCH` when no payload."""


def _worse(a: str, b: str) -> str:
    return max(a, b, key=_SEVERITY.__getitem__)


def _read(
    image: Image.Image, key: bytes, *, whole_page: bool = False
) -> tuple[QrPayload | None, str, zxingcpp.Barcode | None]:
    """The first valid payload among the QR codes in the image, or the worst problem.

    In a crop the code is upright or upside down (QR reads both natively), so the
    quarter-turn search is skipped; the whole page is searched in every direction.
    """
    error = NO_QR_CODE
    barcodes = zxingcpp.read_barcodes(
        image,
        # Made each time, not held by the module: an instance of zxing-cpp's bindings
        # alive at exit makes nanobind report a leak on stderr, into a JSON log.
        formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
        try_rotate=whole_page,
        try_invert=False,
    )
    for barcode in barcodes:
        try:
            return decode_payload(barcode.text, key), "", barcode
        except QrMacMismatch:
            error = MAC_MISMATCH
        except MalformedQrPayload:
            error = _worse(error, MALFORMED)
    return None, error, None


def find_code(
    key: bytes,
    crop: Callable[[bool], Image.Image],
    whole_page: Callable[[], Image.Image],
) -> QrRead:
    """Find and check the form code on a page, looking only as far as needed.

    ``crop(rotated)`` gives the grayscale crop around the printed position (``rotated``:
    where it is on a page turned upside down), ``whole_page()`` the whole page. The crop
    is tried upright, then upside down, then both again smoothed, and only then the
    whole page, which costs about ten times as much.
    """
    error = NO_QR_CODE
    crops: dict[bool, Image.Image] = {}
    for smooth in (False, True):
        for rotated in (False, True):
            if rotated not in crops:
                crops[rotated] = crop(rotated)
            image = crops[rotated]
            # Smoothed, the salt and pepper of a dithered or noisy 1-bit scan turns grey.
            payload, problem, _ = _read(image.filter(_SMOOTH) if smooth else image, key)
            if payload is not None:
                return QrRead(payload, None, 180 if rotated else 0)
            error = _worse(error, problem)
    page = whole_page()
    payload, problem, barcode = _read(page, key, whole_page=True)
    if payload is not None and barcode is not None:
        # The code is printed upright: as it is turned, so is the page.
        return QrRead(payload, None, round(barcode.orientation / 90) % 4 * 90)
    return QrRead(None, _worse(error, problem))


def _placement(page_size_mm: tuple[float, float]) -> QrPlacement:
    return dataclasses.replace(
        QR_PLACEMENT, page_width_mm=page_size_mm[0], page_height_mm=page_size_mm[1]
    )


def read_page_image(
    image: Image.Image, key: bytes, page_size_mm: tuple[float, float] = A4_MM
) -> QrRead:
    """:func:`find_code` on a grayscale (mode ``L``) image of a whole page.

    ``page_size_mm`` maps the printed position to pixels; a scanner's image is taken to
    be the whole A4 page.
    """
    placement = _placement(page_size_mm)

    def crop(rotated: bool) -> Image.Image:
        box = placement.crop_box(image.width, image.height, CROP_MARGIN_MM, rotated=rotated)
        return image.crop(box)

    return find_code(key, crop, lambda: image)


def read_placed_code(
    image: Image.Image, key: bytes, page_size_mm: tuple[float, float] = A4_MM
) -> QrRead | None:
    """The valid form code at its printed spot on an upright image of the whole page (at
    any resolution that shows it), or None: then :func:`find_code` looks further."""
    box = _placement(page_size_mm).crop_box(image.width, image.height, CROP_MARGIN_MM)
    payload, _, _ = _read(image.crop(box), key)
    return None if payload is None else QrRead(payload, None)


def page_size_mm(page: pdfium.PdfPage) -> tuple[float, float]:
    """The page's size as displayed (pdfium applies its rotation), in millimetres."""
    width_pt, height_pt = page.get_size()
    return width_pt * _MM_PER_POINT, height_pt * _MM_PER_POINT


def render_crop(page: pdfium.PdfPage, dpi: int, *, rotated: bool) -> Image.Image:
    """Rasterise only the region around the printed code (grayscale): a fraction of the
    cost of the whole page."""
    width_pt, height_pt = page.get_size()
    width_px, height_px = round(width_pt * dpi / 72), round(height_pt * dpi / 72)
    left, top, right, bottom = _placement(page_size_mm(page)).crop_box(
        width_px, height_px, CROP_MARGIN_MM, rotated=rotated
    )
    pt = 72 / dpi
    cut = (left * pt, (height_px - bottom) * pt, (width_px - right) * pt, top * pt)
    return page.render(scale=dpi / 72, grayscale=True, crop=cut).to_pil()


def render_page(page: pdfium.PdfPage, dpi: int) -> Image.Image:
    """Rasterise the whole page in grayscale."""
    return page.render(scale=dpi / 72, grayscale=True).to_pil()


def decode_page(page: pdfium.PdfPage, page_index: int, key: bytes, dpi: int = 200) -> PageDecode:
    """Read one page's QR code, rasterising only as much of the page as needed."""
    found = find_code(
        key,
        lambda rotated: render_crop(page, dpi, rotated=rotated),
        lambda: render_page(page, dpi),
    )
    return PageDecode(page_index, found.payload, found.error)


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
