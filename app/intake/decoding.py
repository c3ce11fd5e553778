"""The decoder process: opens a scanned file and reads the form code on each page.

It runs apart from its callers (:mod:`app.intake.decoder` starts it, feeds it and kills
it when a page takes too long). It caps its own address space
(:attr:`IntakeLimits.max_memory_bytes`), checks every page's pixel count before decoding
it, and keeps pdfium (which is not thread-safe) to one thread.

Pages are read the fast way first: a scanner's PDF wraps one image a page, and that
image is decoded as it is stored (a few ms) instead of being drawn at the rasterising
resolution (ten times as long for a JPEG page). Any other PDF page is rasterised by
pdfium only as far as needed: the region around the code, the whole page only when the
code is not there, and the preview at :data:`PREVIEW_DPI` (drawn first: a code that
reads there needs nothing more). The code is looked for as
:func:`app.documents.scan.find_code` does: around the printed spot, the same spot
upside down, both smoothed, and the whole page only if that fails.
"""

from __future__ import annotations

import io
import math
import os
import re
import resource
import signal
from collections import OrderedDict
from multiprocessing.connection import Connection

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageFile, ImageOps

from app.documents.scan import (
    find_code,
    read_page_image,
    read_placed_code,
    render_crop,
    render_page,
)
from app.intake.scan_file import (
    JPEG,
    PAGE_TOO_LARGE,
    PAGE_UNREADABLE,
    PDF,
    PNG,
    TIFF,
    BadScanFile,
    IntakeLimits,
    PageRead,
    ScanFileInfo,
)

PREVIEW_DPI = 100
"""About the resolution of :attr:`PageRead.preview_jpeg`."""
PREVIEW_QUALITY = 60

_KEPT_FILES = 2
"""Files the decoder keeps open for threads reading several files at once."""

_FAST_COLOUR_SPACES = {
    pdfium_c.FPDF_COLORSPACE_DEVICEGRAY,
    pdfium_c.FPDF_COLORSPACE_DEVICERGB,
    pdfium_c.FPDF_COLORSPACE_CALGRAY,
    pdfium_c.FPDF_COLORSPACE_CALRGB,
}
"""Colour spaces whose stored image pdfium decodes faithfully without drawing it."""

_TURNS = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}
"""A page's /Rotate (clockwise) as the turn of its stored image (Pillow's anticlockwise)."""

_PIL_FORMATS = {TIFF: ["TIFF"], PNG: ["PNG"], JPEG: ["JPEG"]}


class _Source:
    """An open file in the decoder."""

    pages: int
    key: bytes
    limits: IntakeLimits

    def read(self, index: int) -> PageRead:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the file holds."""


def serve(conn: Connection) -> None:
    """The decoder process: answers requests until the caller's end of the pipe closes.

    Requests (the caller's side is :class:`app.intake.decoder._Decoder`): ``("open",
    batch_id, media_type, key, limits)`` followed by the file's bytes, answered with a
    :class:`ScanFileInfo` or a :class:`BadScanFile`; ``("page", batch_id, index)``,
    answered with ``(PageRead, detail)`` or ``"missing"`` (the file is not open here);
    ``("close", batch_id)``, not answered; ``("ping", 0)``, answered ``"pong"``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the caller to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a page that kills it leaves no core
    Image.MAX_IMAGE_PIXELS = None  # sizes are checked against the limits before decoding
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # damaged data is unreadable (WeasyPrint allows it)
    sources: OrderedDict[int, _Source] = OrderedDict()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op, batch_id, *rest = message
        if op == "open":
            media_type, key, limits = rest
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            _limit_memory(limits.max_memory_bytes)
            old = sources.pop(batch_id, None)
            if old is not None:
                old.close()
            try:
                source = _open(data, media_type, key, limits)
            except BadScanFile as error:
                conn.send(error)
                continue
            except MemoryError:
                os._exit(75)  # a fresh process tries again
            except Exception as error:  # a library failing in a way not foreseen above
                code = BadScanFile.BROKEN_PDF if media_type == PDF else BadScanFile.NOT_PDF_OR_IMAGE
                conn.send(BadScanFile(code, f"{type(error).__name__}: {error}"[:500]))
                continue
            sources[batch_id] = source
            while len(sources) > _KEPT_FILES:
                sources.popitem(last=False)[1].close()
            conn.send(ScanFileInfo(media_type, source.pages, len(data)))
        elif op == "page":
            (index,) = rest
            source_or_none = sources.get(batch_id)
            if source_or_none is None:
                conn.send("missing")
                continue
            sources.move_to_end(batch_id)
            _limit_memory(source_or_none.limits.max_memory_bytes)
            try:
                conn.send((source_or_none.read(index), ""))
            except MemoryError:
                os._exit(75)
            except Exception as error:  # damaged data of every kind and library
                detail = f"{type(error).__name__}: {error}"[:500]
                conn.send((PageRead(index, None, PAGE_UNREADABLE, False, b""), detail))
        elif op == "ping":
            conn.send("pong")
        elif op == "close":
            closing = sources.pop(batch_id, None)
            if closing is not None:
                closing.close()


def _limit_memory(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _open(data: bytes, media_type: str, key: bytes, limits: IntakeLimits) -> _Source:
    source: _Source = _PdfSource(data) if media_type == PDF else _ImageSource(data, media_type)
    source.key, source.limits = key, limits
    if source.pages == 0:
        source.close()
        raise BadScanFile(BadScanFile.NO_PAGES, "the file has no pages")
    if source.pages > limits.max_pages:
        source.close()
        raise BadScanFile(
            BadScanFile.TOO_MANY_PAGES,
            f"{source.pages} pages, more than the {limits.max_pages} allowed",
        )
    if isinstance(source, _ImageSource) and source.pages == 1:
        width, height = source.image.size
        if width * height > limits.max_pixels:
            source.close()
            raise BadScanFile(
                BadScanFile.IMAGE_TOO_LARGE,
                f"{width}×{height} pixels, more than the {limits.max_pixels} allowed",
            )
    return source


def _to_gray(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit grayscale: alpha over white, 16-bit scaled down."""
    mode = image.mode
    if mode == "L":
        return image
    if mode.startswith("I;16") or mode == "I":
        wide = image if mode == "I" else image.convert("I")
        top = wide.getextrema()[1]
        assert isinstance(top, int | float)
        full = 65535 if top > 4095 else 4095 if top > 255 else 255
        return wide.point(lambda v: v * (255 / full)).convert("L")
    if "A" in mode or (mode == "P" and "transparency" in image.info):
        page = Image.new("RGBA", image.size, "white")
        page.alpha_composite(image.convert("RGBA"))
        return page.convert("L")
    try:
        return image.convert("L")
    except ValueError:  # no direct conversion (LAB, HSV…)
        return image.convert("RGB").convert("L")


_UPRIGHT = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}
"""How to turn an image back (anticlockwise, Pillow's way) whose page is turned clockwise."""


def _preview(image: Image.Image, dpi: float, turned: int) -> bytes:
    """The JPEG the clerk looks at: upright (as far as the code shows), about
    :data:`PREVIEW_DPI`."""
    factor = max(1, round(dpi / PREVIEW_DPI))
    small = image.reduce(factor) if factor > 1 else image
    if turned in _UPRIGHT:
        small = small.transpose(_UPRIGHT[turned])
    out = io.BytesIO()
    preview_dpi = round(dpi / factor)
    small.save(out, "JPEG", quality=PREVIEW_QUALITY, dpi=(preview_dpi, preview_dpi))
    return out.getvalue()


def _from_image(
    index: int, gray: Image.Image, page_size_mm: tuple[float, float], key: bytes
) -> PageRead:
    """Read the code on a grayscale image of the whole page and make its preview."""
    found = read_page_image(gray, key, page_size_mm)
    dpi = gray.width / (page_size_mm[0] / 25.4)
    preview = _preview(gray, dpi, found.turned)
    return PageRead(index, found.payload, found.error, found.upside_down, preview)


def _too_large(index: int) -> PageRead:
    return PageRead(index, None, PAGE_TOO_LARGE, False, b"")


_EMPTY_PAGE_TREE = re.compile(rb"/Count\s*0(?![0-9.])")
_PAGES_COUNTED = re.compile(rb"/Count\s*[1-9]")


class _PdfSource(_Source):
    def __init__(self, data: bytes) -> None:
        if b"%%EOF" not in data[-1024:]:
            raise BadScanFile(BadScanFile.BROKEN_PDF, "truncated: no %%EOF at the end")
        try:
            self.document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            # pdfium's error code may be left over from an earlier document: check the bytes
            if error.err_code == pdfium_c.FPDF_ERR_PASSWORD and b"/Encrypt" in data:
                raise BadScanFile(BadScanFile.ENCRYPTED_PDF, "needs a password") from None
            # pdfium refuses a document without pages: tell that apart from damage
            if _EMPTY_PAGE_TREE.search(data) and not _PAGES_COUNTED.search(data):
                raise BadScanFile(BadScanFile.NO_PAGES, "the page tree is empty") from None
            raise BadScanFile(BadScanFile.BROKEN_PDF, f"pdfium: {error}") from None
        self.pages = len(self.document)

    def close(self) -> None:
        self.document.close()

    def read(self, index: int) -> PageRead:
        page = self.document[index]  # parsing the content may take long: within the timeout
        try:
            return self._read(page, index)
        finally:
            page.close()

    def _read(self, page: pdfium.PdfPage, index: int) -> PageRead:
        limits = self.limits
        width_pt, height_pt = page.get_size()
        size_mm = (width_pt * 25.4 / 72, height_pt * 25.4 / 72)
        rendered = math.ceil(width_pt * limits.dpi / 72) * math.ceil(height_pt * limits.dpi / 72)
        if rendered > limits.max_pixels:
            return _too_large(index)
        for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
            width, height = image.get_px_size()
            if width * height > limits.max_pixels:
                return _too_large(index)
        scanned = self._scanned_image(page)
        if scanned is not None:
            # pdfium's own buffer: freed with the last image using it, not closed here
            gray = _to_gray(scanned.get_bitmap(render=False).to_pil())
            turn = _TURNS.get(page.get_rotation())
            if turn is not None:
                gray = gray.transpose(turn)
            return _from_image(index, gray, size_mm, self.key)
        # Anything else is drawn by pdfium, only as much as needed. The preview is drawn
        # anyway, and a page drawn from vectors (no scan's noise) shows its code clearly
        # enough there; when it does not, the code's spot is drawn at the full resolution.
        dpi = limits.dpi
        drawn = render_page(page, PREVIEW_DPI)
        found = read_placed_code(drawn, self.key, size_mm) or find_code(
            self.key,
            lambda rotated: render_crop(page, dpi, rotated=rotated),
            lambda: render_page(page, dpi),
        )
        preview = _preview(drawn, PREVIEW_DPI, found.turned)
        return PageRead(index, found.payload, found.error, found.upside_down, preview)

    @staticmethod
    def _scanned_image(page: pdfium.PdfPage) -> pdfium.PdfImage | None:
        """The page's one image, when it is all there is to see on the page (a scanner's
        page, perhaps with invisible OCR text) and its stored pixels are the page as it
        is drawn (but for the page's /Rotate): upright, unmirrored, covering the crop
        box, plain gray or RGB."""
        if page.get_rotation() not in (0, *_TURNS):
            return None
        images = []
        for obj in page.get_objects(max_depth=0):
            if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                images.append(obj)
            elif not (
                obj.type == pdfium_c.FPDF_PAGEOBJ_TEXT
                and pdfium_c.FPDFTextObj_GetTextRenderMode(obj)
                == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
            ):
                return None
        if len(images) != 1:
            return None
        (image,) = images
        matrix = image.get_matrix()
        if matrix.b or matrix.c or matrix.a <= 0 or matrix.d <= 0:
            return None
        left, bottom, right, top = image.get_bounds()
        box_left, box_bottom, box_right, box_top = page.get_cropbox()
        slack = 0.01 * max(box_right - box_left, box_top - box_bottom)
        if any(
            abs(a - b) > slack
            for a, b in zip(
                (left, bottom, right, top), (box_left, box_bottom, box_right, box_top), strict=True
            )
        ):
            return None
        metadata = image.get_metadata()
        if metadata.colorspace not in _FAST_COLOUR_SPACES or metadata.bits_per_pixel not in (
            1,
            8,
            24,
        ):
            return None
        return image


class _ImageSource(_Source):
    def __init__(self, data: bytes, media_type: str) -> None:
        self.media_type = media_type
        try:
            self.image = Image.open(io.BytesIO(data), formats=_PIL_FORMATS[media_type])
            self.pages = getattr(self.image, "n_frames", 1) if media_type == TIFF else 1
        except Exception as error:  # Pillow raises many kinds on damaged headers
            raise BadScanFile(
                BadScanFile.NOT_PDF_OR_IMAGE, f"unreadable {media_type}: {error}"
            ) from None

    def close(self) -> None:
        self.image.close()

    def read(self, index: int) -> PageRead:
        image: Image.Image = self.image
        if self.pages > 1:
            image.seek(index)
        width, height = image.size
        if width * height > self.limits.max_pixels:
            return _too_large(index)
        if self.media_type == JPEG:
            image.draft("L", image.size)  # only the luminance is decoded
        image.load()
        if image.getexif().get(0x0112, 1) != 1:
            image = ImageOps.exif_transpose(image)
        gray = _to_gray(image)
        # A scanner's image is the whole A4 page (portrait), or the page sideways.
        short_mm, long_mm = 210.0, 297.0
        size_mm = (short_mm, long_mm) if gray.height >= gray.width else (long_mm, short_mm)
        return _from_image(index, gray, size_mm, self.key)
