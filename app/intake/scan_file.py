"""A scanned file as the intake decoder sees it: what one file may cost, why it cannot be
read, and what a page said. Shared by the caller's side (:mod:`app.intake.decoder`) and the
decoder process (:mod:`app.intake.decoding`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.documents.qr import QrPayload

PAGE_TIMED_OUT = "page_timed_out"
"""Reading the page took longer than :attr:`IntakeLimits.page_timeout_s`."""
PAGE_TOO_LARGE = "page_too_large"
"""The page has more pixels than :attr:`IntakeLimits.max_pixels`; it was not decoded."""
PAGE_UNREADABLE = "page_unreadable"
"""The page could not be decoded: damaged data, or it took the decoder process down."""

PDF = "application/pdf"
TIFF = "image/tiff"
PNG = "image/png"
JPEG = "image/jpeg"
EXTENSIONS = {PDF: ".pdf", TIFF: ".tif", PNG: ".png", JPEG: ".jpg"}


@dataclass(frozen=True)
class IntakeLimits:
    """What one scanned file may cost."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 300
    """Pages in one file (one batch)."""
    max_pixels: int = 60_000_000
    """Per page: as stored in the file (images, and the images in a PDF page) or as
    rasterised at :attr:`dpi` (PDF pages)."""
    page_timeout_s: float = 20.0
    """Wall time per page (and for opening the file), enforced by killing the decoder."""
    dpi: int = 200
    """For rasterising PDF pages that are not simply one scanned image."""
    max_memory_bytes: int = 2 * 1024**3
    """Address space of the decoder process, so that no page can exhaust the machine."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive")


class BadScanFile(Exception):
    """The file cannot be read as a scan at all; :attr:`code` says why (for the clerk),
    the message says more (in English, for the logs)."""

    NOT_PDF_OR_IMAGE = "not_pdf_or_image"
    """Neither a PDF nor a TIFF, PNG or JPEG image, or an image that cannot be read."""
    ENCRYPTED_PDF = "encrypted_pdf"
    """Needs a password to open."""
    BROKEN_PDF = "broken_pdf"
    """Says it is a PDF but cannot be read as one (truncated, damaged)."""
    NO_PAGES = "no_pages"
    TOO_MANY_PAGES = "too_many_pages"
    FILE_TOO_LARGE = "file_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    """A single-image file (PNG, JPEG, one-page TIFF) with more pixels than allowed.
    In a multi-page file, such a page gets :data:`PAGE_TOO_LARGE` instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, str(self)))


@dataclass(frozen=True)
class ScanFileInfo:
    """What :func:`inspect_scan` found out about a file."""

    media_type: str
    """:data:`PDF`, :data:`TIFF`, :data:`PNG` or :data:`JPEG`, from the magic bytes."""
    pages: int
    size_bytes: int

    @property
    def extension(self) -> str:
        """``.pdf``, ``.tif``, ``.png`` or ``.jpg``: for storing the file."""
        return EXTENSIONS[self.media_type]


@dataclass(frozen=True)
class PageRead:
    """What one page of a scanned file said."""

    page_index: int
    """0-based within the file."""
    payload: QrPayload | None
    error: str | None
    """When no payload: :data:`NO_QR_CODE`, :data:`MALFORMED`, :data:`MAC_MISMATCH`,
    :data:`PAGE_TIMED_OUT`, :data:`PAGE_TOO_LARGE` or :data:`PAGE_UNREADABLE`."""
    upside_down: bool
    """The page was scanned upside down (its preview has been turned upright)."""
    preview_jpeg: bytes
    """The page, grayscale, about :data:`app.intake.decoding.PREVIEW_DPI` dpi, turned
    upright when its code shows it was upside down or sideways; empty when the page could
    not be rasterised (too large, timed out, unreadable)."""


def sniff_media_type(data: bytes) -> str | None:
    """The media type the file's magic bytes announce, or ``None``."""
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return TIFF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if b"%PDF-" in data[:1024]:  # readers allow junk before the header
        return PDF
    return None
