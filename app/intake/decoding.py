"""Reading the form codes on the pages of a scanned file, one page at a time, safely.

A scanned file comes from outside: it may be broken, huge, or made to hang or exhaust
the software reading it. So nothing in it is parsed in the caller's process (a
multi-threaded web server or worker). All parsing and decoding happens in one decoder
process, started with the ``spawn`` method (never ``fork``, which copies a
multi-threaded parent's locks), started on first use and kept for later pages and files.
Each page has a wall-time limit, enforced by killing the process; a page that kills the
process twice is unreadable. Pages after it are still read, in a new process.

The decoder also caps its own address space (:attr:`IntakeLimits.max_memory_bytes`),
checks every page's pixel count before decoding it, and keeps pdfium (which is not
thread-safe) to one thread.

Pages are read the fast way first: a scanner's PDF wraps one image a page, and that
image is decoded as it is stored (a few ms) instead of being drawn at the rasterising
resolution (ten times as long for a JPEG page). Any other PDF page is rasterised by
pdfium only as far as needed: the region around the code, the whole page only when the
code is not there, and the preview at :data:`PREVIEW_DPI`. The code is looked for as
:func:`app.documents.scan.find_code` does: around the printed spot, the same spot
upside down, both smoothed, and the whole page only if that fails.

Like every use of ``spawn``, the decoder imports the caller's main module: a script
that reads scans keeps its top-level code under ``if __name__ == "__main__":`` (console
scripts, pytest, gunicorn and dramatiq do).
"""

from __future__ import annotations

import io
import itertools
import math
import multiprocessing
import os
import re
import resource
import signal
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import structlog
from PIL import Image, ImageOps

from app.documents.qr import QrPayload
from app.documents.scan import (
    MAC_MISMATCH,
    MALFORMED,
    NO_QR_CODE,
    find_code,
    read_page_image,
    render_crop,
    render_page,
)

__all__ = [
    "MAC_MISMATCH",
    "MALFORMED",
    "NO_QR_CODE",
    "PAGE_TIMED_OUT",
    "PAGE_TOO_LARGE",
    "PAGE_UNREADABLE",
    "BadScanFile",
    "IntakeLimits",
    "PageRead",
    "ScanFileInfo",
    "inspect_scan",
    "read_scan",
    "start_decoder",
    "stop_decoder",
]

log = structlog.get_logger(__name__)

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

PREVIEW_DPI = 100
"""About the resolution of :attr:`PageRead.preview_jpeg`."""
PREVIEW_QUALITY = 60


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
    """The page, grayscale, about :data:`PREVIEW_DPI` dpi, turned upright when its code
    shows it was upside down or sideways; empty when the page could not be rasterised
    (too large, timed out, unreadable)."""


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


def _check_outside(data: bytes, limits: IntakeLimits) -> str:
    """What can be checked without parsing: size and magic bytes. The media type."""
    if len(data) > limits.max_file_bytes:
        raise BadScanFile(
            BadScanFile.FILE_TOO_LARGE,
            f"{len(data)} bytes, more than the {limits.max_file_bytes} allowed",
        )
    media_type = sniff_media_type(data)
    if media_type is None:
        raise BadScanFile(BadScanFile.NOT_PDF_OR_IMAGE, "no PDF, TIFF, PNG or JPEG signature")
    return media_type


def inspect_scan(data: bytes, limits: IntakeLimits | None = None) -> ScanFileInfo:
    """The file's media type and page count, or :class:`BadScanFile`.

    The file is opened in the decoder process, never in the caller's.
    """
    if limits is None:
        limits = IntakeLimits()
    media_type = _check_outside(data, limits)
    return _DECODER.inspect(data, media_type, limits)


def read_scan(
    data: bytes, key: bytes, limits: IntakeLimits | None = None, *, start_page: int = 0
) -> Iterator[PageRead]:
    """One :class:`PageRead` for every page from ``start_page`` (0-based) on, in order.

    The file is checked and opened before this returns (raising :class:`BadScanFile`);
    the pages are read as they are iterated. ``start_page`` lets a job that was
    interrupted resume where it stopped. :class:`RuntimeError` when the decoder process
    cannot be started at all (not the file's fault: retry later).
    """
    if start_page < 0:
        raise ValueError("start_page must not be negative")
    if limits is None:
        limits = IntakeLimits()
    media_type = _check_outside(data, limits)
    batch = _Batch(next(_batch_ids), data, media_type, key, limits)
    info = _DECODER.open(batch)
    return _pages(batch, range(start_page, info.pages))


def _pages(batch: _Batch, indexes: range) -> Iterator[PageRead]:
    try:
        for index in indexes:
            yield _DECODER.page(batch, index)
    finally:
        _DECODER.forget(batch)


def start_decoder() -> None:
    """Start the decoder process now rather than on the first file (it takes ~0.5 s),
    and wait until it is ready."""
    _DECODER.start()


def stop_decoder() -> None:
    """Stop the decoder process; the next file starts a new one."""
    _DECODER.stop()


# --- the caller's side ----------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """One file being read: sent to the decoder once (again only if it had to restart)."""

    id: int
    data: bytes
    media_type: str
    key: bytes
    limits: IntakeLimits


_batch_ids = itertools.count(1)


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


_BOOT_TIMEOUT_S = 120.0


class _Decoder:
    """The decoder process, shared by the threads of this process, one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closing: deque[int] = deque()
        """Files the decoder may drop."""

    def _after_fork(self) -> None:
        """In a forked copy of this process (a pre-forking server's worker): the decoder
        and its pipe belong to the parent, so start afresh without touching them."""
        process, self._process, self._conn = self._process, None, None
        self._lock = threading.Lock()
        self._closing = deque()
        if process is not None:  # nor let multiprocessing signal it when the copy exits
            multiprocessing.process._children.discard(process)  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start the process (if it is not running) and wait until it answers."""
        with self._lock:
            self._connection()

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _connection(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._kill()
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_decoder_main, args=(theirs,), name="intake-decoder", daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        # Booting (imports) must not count against the first page's time limit.
        try:
            ours.send(("ping", 0))
            if ours.poll(_BOOT_TIMEOUT_S) and ours.recv() == "pong":
                return ours
        except (EOFError, OSError):
            pass
        self._kill()
        raise RuntimeError("the intake decoder process did not start")

    def _kill(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            process.close()

    def _call(self, message: tuple[Any, ...], timeout: float, data: bytes | None = None) -> Any:
        """Send a request (and the file's bytes, unpickled: no copy) and wait for the
        reply; kill the process when it takes too long or dies. A process found dead
        before it got the request is restarted first."""
        conn = self._connection()
        try:
            while self._closing:
                conn.send(("close", self._closing.popleft()))  # no reply to these
            self._send(conn, message, data)
        except OSError:  # it died while idle: nothing was lost
            self._kill()
            conn = self._connection()
            self._send(conn, message, data)
        if not conn.poll(timeout):
            self._kill()
            raise _TimedOut
        try:
            return conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise _Died from None

    @staticmethod
    def _send(conn: Connection, message: tuple[Any, ...], data: bytes | None) -> None:
        conn.send(message)
        if data is not None:
            conn.send_bytes(data)

    def _load(self, batch: _Batch) -> Any:
        return self._call(
            ("open", batch.id, batch.media_type, batch.key, batch.limits),
            batch.limits.page_timeout_s,
            batch.data,
        )

    def inspect(self, data: bytes, media_type: str, limits: IntakeLimits) -> ScanFileInfo:
        batch = _Batch(next(_batch_ids), data, media_type, b"", limits)
        try:
            return self.open(batch)
        finally:
            self.forget(batch)

    def open(self, batch: _Batch) -> ScanFileInfo:
        code = BadScanFile.BROKEN_PDF if batch.media_type == PDF else BadScanFile.NOT_PDF_OR_IMAGE
        with self._lock:
            for attempt in (1, 2):
                try:
                    reply = self._load(batch)
                except _TimedOut:
                    raise BadScanFile(
                        code, f"opening took over {batch.limits.page_timeout_s} s"
                    ) from None
                except _Died:
                    if attempt == 2:
                        raise BadScanFile(code, "opening it took the decoder down twice") from None
                    continue
                if isinstance(reply, BadScanFile):
                    raise reply
                assert isinstance(reply, ScanFileInfo)
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def page(self, batch: _Batch, index: int) -> PageRead:
        timeout = batch.limits.page_timeout_s
        unreadable = PageRead(index, None, PAGE_UNREADABLE, False, b"")
        with self._lock:
            for attempt in (1, 2):
                try:
                    reply = self._call(("page", batch.id, index), timeout)
                    if reply == "missing":  # restarted, or evicted by other files
                        self._load(batch)
                        reply = self._call(("page", batch.id, index), timeout)
                except _TimedOut:
                    log.warning("intake.page_timed_out", page_index=index, timeout_s=timeout)
                    return PageRead(index, None, PAGE_TIMED_OUT, False, b"")
                except _Died:
                    log.warning("intake.decoder_died", page_index=index, attempt=attempt)
                    continue
                if not isinstance(reply, tuple):  # could not be opened again: cannot happen
                    return unreadable
                page_read, detail = reply
                if detail:
                    log.warning("intake.page_unreadable", page_index=index, detail=detail)
                assert isinstance(page_read, PageRead)
                return page_read
        return unreadable

    def forget(self, batch: _Batch) -> None:
        """Let the decoder drop the file, with the next request. Takes no lock: this runs
        when a generator is finalised, which the garbage collector may do at any point,
        also in a thread that holds the lock."""
        self._closing.append(batch.id)


_DECODER = _Decoder()
os.register_at_fork(after_in_child=_DECODER._after_fork)


# --- the decoder process -------------------------------------------------------------

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


def _decoder_main(conn: Connection) -> None:
    """The decoder process: answers requests until the caller's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the caller to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a page that kills it leaves no core
    Image.MAX_IMAGE_PIXELS = None  # sizes are checked against the limits before decoding
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
        # Anything else is drawn by pdfium, only as much as needed: the code's spot first.
        dpi = limits.dpi
        found = find_code(
            self.key,
            lambda rotated: render_crop(page, dpi, rotated=rotated),
            lambda: render_page(page, dpi),
        )
        preview = _preview(render_page(page, PREVIEW_DPI), PREVIEW_DPI, found.turned)
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
