"""Scanned paper forms for the intake tests and benchmark, made on the fly.

Real filled-in forms are rendered (:func:`app.documents.render.render_form_pdf`),
rasterised with pypdfium2 at 150–300 dpi and degraded with Pillow the way a scanner and
the post degrade paper: turned a few degrees or upside down, skewed, blurred, noisy,
speckled, 1-bit (dithered), JPEG-compressed. Pages are assembled into the files a
scanner writes: a PDF wrapping one image a page, a multi-page TIFF, a PNG or a JPEG.
Also: blank pages, pages whose code was painted over or forged, and bad files.

Everything is deterministic (seeded) and the expensive steps are cached per session.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import random
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageFilter

from app.config import qr_mac_key
from app.documents.qr import (
    QR_PLACEMENT,
    FormKind,
    QrPayload,
    encode_payload,
    qr_png,
)
from app.documents.render import TEMPLATE_VERSION, DocumentData, render_form_pdf
from app.registrations.data import RegistrationData
from tests.sample_forms import REGISTRATION, REGISTRATION_DATA, REMOVAL_DATA

KEY = qr_mac_key("test-secret")

FORMS: dict[str, DocumentData] = {
    "reg": REGISTRATION_DATA,  # errand 123
    "rem": REMOVAL_DATA,  # errand 4567
    "reg2": dataclasses.replace(
        REGISTRATION_DATA,
        reference="BB-2CDF-GH3J",
        errand_id=98765,
        form=RegistrationData.from_json({**REGISTRATION, "given_name": "Bo", "family_name": "Ek"}),
    ),
}
"""The printed forms the corpus scans, by name."""


# --- forms and their clean rasters ----------------------------------------------------


@functools.cache
def form_pdf(form: str) -> bytes:
    """The form as printed (for posting), with one QR code a page."""
    return render_form_pdf(FORMS[form], lang="sv", key=KEY, for_print=True)


@functools.cache
def form_pages(form: str) -> int:
    document = pdfium.PdfDocument(form_pdf(form))
    try:
        return len(document)
    finally:
        document.close()


@functools.lru_cache(maxsize=32)
def _clean(form: str, index: int, dpi: int) -> Image.Image:
    document = pdfium.PdfDocument(form_pdf(form))
    try:
        page = document[index]
        image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
        page.close()
        return image
    finally:
        document.close()


def clean_page(form: str, index: int, dpi: int = 200) -> Image.Image:
    """Page ``index`` (0-based) of the form rasterised at ``dpi``, grayscale; a fresh copy."""
    image = _clean(form, index, dpi).copy()
    image.info["dpi"] = (dpi, dpi)
    return image


# --- degradations --------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """What the scanner and the post did to a page, applied in this order."""

    dpi: int = 200
    angle: float = 0.0
    """Degrees counter-clockwise: a page fed askew."""
    shear: float = 0.0
    """Horizontal shear: a sheet dragged unevenly through the feeder."""
    upside_down: bool = False
    blur: float = 0.0
    """Gaussian radius in pixels: a soft scan."""
    noise: int = 0
    """Amplitude of additive noise, in grey levels either way."""
    speckle: float = 0.0
    """Share of the pixels turned black (in steps of 1/256): dust and toner."""
    bilevel: bool = False
    """1-bit, Floyd–Steinberg dithered (fax-like scanners)."""
    jpeg_quality: int | None = None
    """Compressed (and decompressed) as JPEG at this quality."""


DEGRADATIONS: dict[str, Degradation] = {
    "clean-200": Degradation(),
    "clean-150": Degradation(dpi=150),
    "clean-300": Degradation(dpi=300),
    "rotated+1": Degradation(angle=1.0, jpeg_quality=60),
    "rotated-2": Degradation(angle=-2.0, noise=12),
    "rotated+3-300": Degradation(dpi=300, angle=3.0, jpeg_quality=50),
    "rotated-3-150": Degradation(dpi=150, angle=-3.0),
    "upside-down": Degradation(upside_down=True),
    "upside-down-rotated-300": Degradation(dpi=300, angle=-1.5, upside_down=True, noise=10),
    "skewed": Degradation(shear=0.02, angle=0.5),
    "skewed-back": Degradation(shear=-0.025, jpeg_quality=55),
    "noisy": Degradation(noise=40, speckle=0.002),
    "speckled-150": Degradation(dpi=150, speckle=0.004, blur=0.5),
    "blurred": Degradation(blur=1.0, noise=8),
    "bilevel-200": Degradation(bilevel=True),
    "bilevel-300-rotated": Degradation(dpi=300, bilevel=True, angle=2.0, noise=20),
    "bilevel-150-skewed": Degradation(dpi=150, bilevel=True, shear=0.015),
    "bilevel-noisy": Degradation(bilevel=True, noise=50, speckle=0.01),
    "bilevel-150-noisy-rotated": Degradation(dpi=150, bilevel=True, noise=40, angle=-2.0),
    "jpeg-40-150": Degradation(dpi=150, jpeg_quality=40, noise=6),
    "jpeg-45-200-rotated": Degradation(angle=-1.0, jpeg_quality=45, blur=0.6),
    "everything": Degradation(
        dpi=300, angle=-2.5, shear=0.01, blur=0.7, noise=25, speckle=0.001, jpeg_quality=45
    ),
}
"""Named degradations, each covering one or more of the ways scans go wrong."""


def _noise(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Uniform random grey levels 0..255 (stdlib only: no numpy)."""
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))


def degrade(image: Image.Image, degradation: Degradation, seed: int = 0) -> Image.Image:
    """``image`` (mode ``L``) as the scanner returned it: mode ``L`` or ``1``."""
    d = degradation
    rng = random.Random(seed)
    out = image
    if d.angle or d.shear:
        if d.shear:
            height = out.height
            out = out.transform(
                out.size,
                Image.Transform.AFFINE,
                (1, d.shear, -d.shear * height / 2, 0, 1, 0),
                resample=Image.Resampling.BILINEAR,
                fillcolor=255,
            )
        if d.angle:
            out = out.rotate(d.angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if d.upside_down:
        out = out.transpose(Image.Transpose.ROTATE_180)
    if d.blur:
        out = out.filter(ImageFilter.GaussianBlur(d.blur))
    if d.noise:
        spread = _noise(out.size, rng).point(lambda v: v * 2 * d.noise // 255)
        out = ImageChops.add(out, spread, scale=1.0, offset=-d.noise)
    if d.speckle:
        threshold = 255 - round(255 * d.speckle)
        dots = _noise(out.size, rng).point(lambda v: 255 if v > threshold else 0)
        out = out.copy()
        out.paste(0, mask=dots)
    if d.bilevel:
        out = out.convert("1")  # Floyd–Steinberg
    elif d.jpeg_quality is not None:
        buffer = io.BytesIO()
        out.save(buffer, "JPEG", quality=d.jpeg_quality)
        out = Image.open(io.BytesIO(buffer.getvalue()))
        out.load()
    out.info["dpi"] = (d.dpi, d.dpi)
    return out


# --- pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanPage:
    """One scanned sheet and what reading it should give."""

    image: Image.Image
    expect: tuple[int | None, int, int] | None
    """``(errand id, page, pages)`` of a genuine code; ``None`` when there is none."""
    upside_down: bool
    label: str


def _degradation(degradation: Degradation | str) -> tuple[Degradation, str]:
    if isinstance(degradation, str):
        return DEGRADATIONS[degradation], degradation
    return degradation, repr(degradation)


def _qr_box_px(dpi: int) -> tuple[int, int, int, int]:
    """Where the code is printed on an A4 page image at ``dpi``, without slack."""
    return QR_PLACEMENT.crop_box(round(210 / 25.4 * dpi), round(297 / 25.4 * dpi), 0.0)


def scan_page(
    form: str, index: int, degradation: Degradation | str = "clean-200", seed: int = 0
) -> ScanPage:
    """Page ``index`` (0-based) of a form, printed, posted and scanned."""
    d, label = _degradation(degradation)
    image = degrade(clean_page(form, index, d.dpi), d, seed)
    expect = (FORMS[form].errand_id, index + 1, form_pages(form))
    return ScanPage(image, expect, d.upside_down, f"{form} p{index + 1} {label}")


def scan_pdf(pdf: bytes, degradations: Sequence[str], seed: int = 0) -> list[Image.Image]:
    """Pages of any PDF (an errand's printed form, say) printed and scanned: page ``i``
    with the degradation named ``degradations[i]``."""
    document = pdfium.PdfDocument(pdf)
    try:
        images = []
        for index, name in enumerate(degradations):
            degradation = DEGRADATIONS[name]
            page = document[index]
            image = page.render(scale=degradation.dpi / 72, grayscale=True).to_pil().convert("L")
            page.close()
            image.info["dpi"] = (degradation.dpi, degradation.dpi)
            images.append(degrade(image, degradation, seed + index))
        return images
    finally:
        document.close()


def blank_page(degradation: Degradation | str = "noisy", seed: int = 0) -> ScanPage:
    """A blank sheet (the back of a page, say), with the scanner's noise."""
    d, label = _degradation(degradation)
    width, height = round(210 / 25.4 * d.dpi), round(297 / 25.4 * d.dpi)
    image = degrade(Image.new("L", (width, height), 250), d, seed)
    return ScanPage(image, None, False, f"blank {label}")


def page_without_qr(
    form: str, index: int, degradation: Degradation | str = "clean-200", seed: int = 0
) -> ScanPage:
    """A page of a form whose QR code was painted white (torn off, covered by a note)."""
    d, label = _degradation(degradation)
    image = clean_page(form, index, d.dpi)
    image.paste(255, _qr_box_px(d.dpi))
    return ScanPage(degrade(image, d, seed), None, False, f"{form} p{index + 1} no code {label}")


def forged_code_text(form: str, index: int, errand_id: int) -> str:
    """The page's genuine code text with another errand id and the genuine MAC."""
    data = FORMS[form]
    payload = QrPayload(
        FormKind.of(data.kind),
        TEMPLATE_VERSION,
        data.errand_id,
        index + 1,
        form_pages(form),
        data.digest,
    )
    genuine = encode_payload(payload, KEY)
    forged = encode_payload(dataclasses.replace(payload, errand_id=errand_id), KEY)
    return forged.rsplit(":", 1)[0] + ":" + genuine.rsplit(":", 1)[1]


def paste_code(image: Image.Image, text: str, dpi: int) -> Image.Image:
    """``image`` with a QR code of ``text`` printed over the form's own."""
    png, _ = qr_png(text)
    left, top, right, bottom = _qr_box_px(dpi)
    code = Image.open(io.BytesIO(png)).convert("L")
    code = code.resize((right - left, bottom - top), Image.Resampling.NEAREST)
    out = image.copy()
    out.paste(code, (left, top))
    return out


def tampered_page(
    form: str,
    index: int,
    degradation: Degradation | str = "clean-200",
    *,
    errand_id: int = 124,
    seed: int = 0,
) -> ScanPage:
    """A page whose code was replaced by one naming another errand, MAC kept."""
    d, label = _degradation(degradation)
    image = paste_code(
        clean_page(form, index, d.dpi), forged_code_text(form, index, errand_id), d.dpi
    )
    return ScanPage(
        degrade(image, d, seed), None, d.upside_down, f"{form} p{index + 1} forged {label}"
    )


def mixed_batch(seed: int = 1, dpi: int = 200) -> list[ScanPage]:
    """Every page of every form, in a stack dropped and picked up: shuffled, some
    upside down, each degraded its own way (all at ``dpi``, as one scanner run is)."""
    rng = random.Random(seed)
    names = [n for n, d in DEGRADATIONS.items() if d.dpi == 200 or n.startswith("clean")]
    pages = []
    for form in FORMS:
        for index in range(form_pages(form)):
            base = DEGRADATIONS[rng.choice(names)]
            degradation = dataclasses.replace(base, dpi=dpi, upside_down=rng.random() < 0.3)
            pages.append(scan_page(form, index, degradation, seed=rng.randrange(1 << 30)))
    rng.shuffle(pages)
    return pages


# --- files a scanner writes ----------------------------------------------------------


def _dpi(image: Image.Image) -> float:
    return float(image.info.get("dpi", (200, 200))[0])


def as_pdf(images: Sequence[Image.Image], quality: int = 75) -> bytes:
    """A PDF wrapping one image a page, the way scanners write them (JPEG for grey,
    CCITT G4 for 1-bit), each page the size of the paper at the image's resolution."""
    merged = pdfium.PdfDocument.new()
    try:
        for image in images:
            buffer = io.BytesIO()
            options = {} if image.mode == "1" else {"quality": quality}
            image.save(buffer, "PDF", resolution=_dpi(image), **options)
            single = pdfium.PdfDocument(buffer.getvalue())
            merged.import_pages(single)
            single.close()
        out = io.BytesIO()
        merged.save(out)
        return out.getvalue()
    finally:
        merged.close()


def _bare(image: Image.Image) -> Image.Image:
    """The pixels only: no metadata left over from a JPEG round trip to confuse savers."""
    out = image.copy()
    out.info = {}
    return out


def as_tiff(images: Sequence[Image.Image]) -> bytes:
    """A multi-page TIFF (Deflate-compressed, as 1-bit and grey pages both allow)."""
    first, *rest = [_bare(image) for image in images]
    dpi = _dpi(images[0])
    buffer = io.BytesIO()
    first.save(
        buffer,
        "TIFF",
        save_all=True,
        append_images=rest,
        compression="tiff_adobe_deflate",
        dpi=(dpi, dpi),
    )
    return buffer.getvalue()


def as_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", dpi=(_dpi(image), _dpi(image)))
    return buffer.getvalue()


def as_jpeg(image: Image.Image, quality: int = 60, *, exif_orientation: int | None = None) -> bytes:
    """A JPEG; with ``exif_orientation`` the pixels are stored turned so that the EXIF
    Orientation tag (3: 180°, 6: 90° clockwise, 8: 90° anticlockwise) turns them back."""
    stored = image.convert("L")
    exif = Image.Exif()
    if exif_orientation is not None:
        undo = {
            3: Image.Transpose.ROTATE_180,
            6: Image.Transpose.ROTATE_90,
            8: Image.Transpose.ROTATE_270,
        }[exif_orientation]
        stored = stored.transpose(undo)
        exif[0x0112] = exif_orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=quality, dpi=(_dpi(image), _dpi(image)), exif=exif)
    return buffer.getvalue()


def in_mode(image: Image.Image, mode: str) -> Image.Image:
    """The same page in another Pillow mode (``RGB``, ``P``, ``I;16``, ``RGBA``, ``1``…)."""
    if mode == "I;16":
        out = image.convert("I").point(lambda v: v * 257).convert("I;16")
    elif mode == "RGBA":
        out = image.convert("RGBA")
        out.putalpha(255)
    else:
        out = image.convert(mode)
    out.info["dpi"] = image.info.get("dpi", (200, 200))
    return out


# --- bad files -----------------------------------------------------------------------


def text_file() -> bytes:
    return "Hej! Här kommer blanketten.\n".encode() * 20


def truncated_pdf() -> bytes:
    """A scanned PDF cut off half-way (an interrupted upload or copy)."""
    pdf = as_pdf([scan_page("reg", 0).image, scan_page("reg", 1).image])
    return pdf[: len(pdf) // 2]


def truncated_update_pdf() -> bytes:
    """A scanned PDF whose appended (incremental) update was cut off: pdfium would
    silently read the revision before it."""
    original = as_pdf([scan_page("reg", 0).image])
    update = b"\n8 0 obj\n<< /Length 60000 >>\nstream\n" + bytes(range(256)) * 240
    return original + update[:30000]


def encrypted_pdf(user_password: str = "hemligt", owner_password: str = "ägare") -> bytes:
    """A scanned PDF encrypted with AES-256 by qpdf (an empty user password opens it)."""
    with tempfile.TemporaryDirectory() as tmp:
        plain, locked = Path(tmp, "plain.pdf"), Path(tmp, "locked.pdf")
        plain.write_bytes(as_pdf([scan_page("rem", 0).image]))
        subprocess.run(
            ["qpdf", "--encrypt", user_password, owner_password, "256", "--", plain, locked],
            check=True,
            capture_output=True,
        )
        return locked.read_bytes()


def build_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF of the given object bodies (1 is the catalogue), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(entries: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def zero_page_pdf() -> bytes:
    return build_pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    )


def broken_pdf() -> bytes:
    """A PDF header and trailer around nothing that parses."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG that says it is ``width`` × ``height`` pixels (10 gigapixels) in a few
    hundred bytes: a decompression bomb as far as its header goes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = zlib.compress(b"\x00" + b"\xff" * (width // 8 + 1), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


def huge_page_pdf(side_mm: float = 5000.0) -> bytes:
    """One page ``side_mm`` square with a line on it: 1.5 gigapixels at 200 dpi."""
    side = side_mm / 25.4 * 72
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Contents 4 0 R >>"
            % (side, side),
            _stream(b"", b"0 0 m 100 100 l S"),
        ]
    )


def hanging_page_pdf(levels: int = 9, fan: int = 10) -> bytes:
    """One A4 page drawing a form that draws itself ``fan`` times, ``levels`` deep: the
    page holds ``fan ** levels`` paths. Merely loading the page takes pdfium minutes and
    gigabytes (about 4 s and 1.5 GB for a million)."""
    first = 5  # objects 1-4: catalogue, pages, page, content
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /XObject << /X 5 0 R >> >> >>",
        _stream(b"", b"/X Do"),
    ]
    for level in range(levels):
        if level == levels - 1:
            content, resources = b"0 0 10 10 re f", b""
        else:
            content = b"/X Do " * fan
            resources = b"/Resources << /XObject << /X %d 0 R >> >>" % (first + level + 1)
        objects.append(
            _stream(b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] " + resources, content)
        )
    return build_pdf(objects)


def concat_pdfs(pdfs: Iterable[bytes]) -> bytes:
    """One PDF with the pages of all, in order."""
    merged = pdfium.PdfDocument.new()
    try:
        for pdf in pdfs:
            source = pdfium.PdfDocument(pdf)
            merged.import_pages(source)
            source.close()
        out = io.BytesIO()
        merged.save(out)
        return out.getvalue()
    finally:
        merged.close()
