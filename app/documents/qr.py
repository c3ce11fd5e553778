"""The QR code printed on every page of a form: what it holds, its MAC, and its picture.

The text uses only characters of the QR alphanumeric mode (``0-9 A-Z $%*+-./:`` and
space), so the symbol stays small (version 3 or 4)::

    BH1:REG:1:123:1/2:<DIGEST>:<MAC>        a filled-in form, errand 123, page 1 of 2
    BH1:REM:1:BLANK:2/2:<DIGEST>:<MAC>      page 2 of a blank removal form

``DIGEST`` is :func:`form_digest` of the form data and ``MAC`` is HMAC-SHA256 with the
key of :func:`app.config.qr_mac_key` over everything before the last colon; both are 80 bits in
base32 (16 characters). The MAC proves that SPV printed the page; the digest ties the
page to the form data SPV holds for the errand.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import segno

from app.registrations.models import ErrandKind

PREFIX = "BH1"
"""Marks our codes and the payload format's version."""

BLANK = "BLANK"
"""Stands for the errand id on a blank form."""

_TAG_BYTES = 10  # 80 bits for the digest and the MAC
_TAG = r"[A-Z2-7]{16}"
_PAYLOAD = re.compile(
    rf"{PREFIX}:(?P<kind>[A-Z]{{3}}):(?P<version>[1-9][0-9]{{0,3}})"
    rf":(?P<id>{BLANK}|[1-9][0-9]{{0,17}}):(?P<page>[1-9][0-9]{{0,2}})/(?P<pages>[1-9][0-9]{{0,2}})"
    rf":(?P<digest>{_TAG}):(?P<mac>{_TAG})"
)


@dataclass(frozen=True)
class QrPlacement:
    """Where the QR code is printed on every page of an A4 form, in millimetres."""

    x_mm: float
    """The symbol's left edge (quiet zone included) from the page's left edge."""
    y_mm: float
    """The symbol's bottom edge (quiet zone included) from the page's bottom edge."""
    size_mm: float
    """Width and height, quiet zone included."""
    page_width_mm: float = 210.0
    page_height_mm: float = 297.0

    def crop_box(
        self, width_px: int, height_px: int, margin_mm: float = 10.0, *, rotated: bool = False
    ) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` in pixels of an upright image of the whole page.

        ``margin_mm`` of slack on every side covers a page fed askew or offset.
        ``rotated`` gives the box where the code is when the page was scanned upside down.
        """
        sx, sy = width_px / self.page_width_mm, height_px / self.page_height_mm
        left_mm = self.x_mm - margin_mm
        right_mm = self.x_mm + self.size_mm + margin_mm
        top_mm = self.page_height_mm - self.y_mm - self.size_mm - margin_mm
        bottom_mm = self.page_height_mm - self.y_mm + margin_mm
        if rotated:
            left_mm, right_mm = self.page_width_mm - right_mm, self.page_width_mm - left_mm
            top_mm, bottom_mm = self.page_height_mm - bottom_mm, self.page_height_mm - top_mm
        return (
            max(0, round(left_mm * sx)),
            max(0, round(top_mm * sy)),
            min(width_px, round(right_mm * sx)),
            min(height_px, round(bottom_mm * sy)),
        )


QR_PLACEMENT = QrPlacement(x_mm=18.0, y_mm=8.0, size_mm=22.0)
"""The QR code's fixed spot: the bottom-left page margin of every page of every form."""


class FormKind(enum.StrEnum):
    """The form a page belongs to, as the QR code names it."""

    REGISTRATION = "REG"
    REMOVAL = "REM"

    @classmethod
    def of(cls, kind: ErrandKind) -> FormKind:
        return FORM_KINDS[kind]

    @property
    def errand_kind(self) -> ErrandKind:
        return ERRAND_KINDS[self]


FORM_KINDS: dict[ErrandKind, FormKind] = {
    ErrandKind.REGISTRATION: FormKind.REGISTRATION,
    ErrandKind.REMOVAL: FormKind.REMOVAL,
}
ERRAND_KINDS: dict[FormKind, ErrandKind] = {v: k for k, v in FORM_KINDS.items()}


class QrPayloadError(ValueError):
    """A QR code's text is not a valid payload of ours."""


class MalformedQrPayload(QrPayloadError):
    """Not our format, not parseable, or numbers that make no sense (page 3 of 2)."""


class QrMacMismatch(QrPayloadError):
    """Well-formed, but the MAC is wrong: altered, forged, or made with another key."""


@dataclass(frozen=True)
class QrPayload:
    """What one page's QR code says."""

    kind: FormKind
    template_version: int
    errand_id: int | None
    """``None`` on a blank form."""
    page: int
    """1-based."""
    pages: int
    digest: str
    """:func:`form_digest` of the form data printed on the page."""

    @property
    def is_blank(self) -> bool:
        return self.errand_id is None


def _b32(data: bytes) -> str:
    return base64.b32encode(data[:_TAG_BYTES]).decode("ascii").rstrip("=")


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same data always gives the same bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def form_digest(form_data: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the form data, 80 bits in base32 (16 characters)."""
    return _b32(hashlib.sha256(canonical_json(form_data)).digest())


def _mac(key: bytes, body: str) -> str:
    return _b32(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def _check_numbers(template_version: int, errand_id: int | None, page: int, pages: int) -> str:
    """Why the numbers cannot be in a payload, or an empty string when they can."""
    if not 1 <= template_version <= 9999:
        return "template version out of range"
    if errand_id is not None and not 1 <= errand_id < 10**18:
        return "errand id out of range"
    if not 1 <= pages <= 999:
        return "page count out of range"
    if not 1 <= page <= pages:
        return "page number out of range"
    return ""


def encode_payload(payload: QrPayload, key: bytes) -> str:
    """The QR code's text for a page, MAC included."""
    problem = _check_numbers(
        payload.template_version, payload.errand_id, payload.page, payload.pages
    )
    if problem:
        raise ValueError(problem)
    if not re.fullmatch(_TAG, payload.digest):
        raise ValueError("digest is not 16 base32 characters")
    ident = BLANK if payload.errand_id is None else str(payload.errand_id)
    body = (
        f"{PREFIX}:{FormKind(payload.kind).value}:{payload.template_version}:{ident}"
        f":{payload.page}/{payload.pages}:{payload.digest}"
    )
    return f"{body}:{_mac(key, body)}"


def decode_payload(text: str, key: bytes) -> QrPayload:
    """The payload in a QR code's text, after checking its format and MAC.

    Raises :class:`MalformedQrPayload` or :class:`QrMacMismatch`.
    """
    match = _PAYLOAD.fullmatch(text.strip())
    if match is None:
        raise MalformedQrPayload("not a Behörighet form code")
    try:
        kind = FormKind(match["kind"])
    except ValueError:
        raise MalformedQrPayload(f"unknown form kind {match['kind']!r}") from None
    version, page, pages = int(match["version"]), int(match["page"]), int(match["pages"])
    errand_id = None if match["id"] == BLANK else int(match["id"])
    problem = _check_numbers(version, errand_id, page, pages)
    if problem:
        raise MalformedQrPayload(problem)
    body, _, mac = text.strip().rpartition(":")
    if not hmac.compare_digest(_mac(key, body), mac):
        raise QrMacMismatch("the code's MAC does not match its contents")
    return QrPayload(kind, version, errand_id, page, pages, match["digest"])


QUIET_ZONE = 4
"""Modules of white around the symbol, as the QR standard asks."""

QR_MASK = 0
"""A fixed mask pattern. segno otherwise scores all eight (about 6 ms a code, most of
its cost); zxing-cpp reads every mask equally well, also from degraded scans."""


def make_qr(text: str) -> segno.QRCode:
    """The QR code for a payload text: error correction M, alphanumeric mode."""
    return segno.make_qr(text, error="m", mode="alphanumeric", boost_error=False, mask=QR_MASK)


def qr_svg(text: str, size_mm: float = QR_PLACEMENT.size_mm, border: int = QUIET_ZONE) -> str:
    """An SVG of the QR code, exactly ``size_mm`` square including its quiet zone."""
    code = make_qr(text)
    modules = code.symbol_size(scale=1, border=border)[0]
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=size_mm / modules,
        unit="mm",
        border=border,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        nl=False,
    )
    return out.getvalue().decode("ascii")


def qr_png(text: str, border: int = QUIET_ZONE) -> tuple[bytes, int]:
    """A PNG of the QR code, one pixel a module, and its width in pixels (= modules).

    WeasyPrint embeds it as it is (no SVG to parse and draw: about 15 ms less a code
    than :func:`qr_svg`); shown with ``image-rendering: pixelated`` it stays sharp.
    """
    code = make_qr(text)
    out = io.BytesIO()
    code.save(out, kind="png", scale=1, border=border)
    return out.getvalue(), int(code.symbol_size(scale=1, border=border)[0])
