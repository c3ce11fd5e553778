"""Scanned intake: every degradation read, bad files refused, hostile pages contained."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import struct
import subprocess
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops, ImageStat

from app.config import qr_mac_key
from app.documents.scan import MAC_MISMATCH, MALFORMED, NO_QR_CODE
from app.intake import decoder
from app.intake.archive import scan_archive_pdf
from app.intake.decoder import inspect_scan, read_scan
from app.intake.scan_file import (
    PAGE_TIMED_OUT,
    PAGE_TOO_LARGE,
    PAGE_UNREADABLE,
    BadScanFile,
    IntakeLimits,
    PageRead,
)
from tests import scan_corpus as corpus
from tests.scan_corpus import KEY, ScanPage

DEGRADED = [
    # each degradation on another page of another form
    (name, ("reg", "rem", "reg2")[i % 3], (i // 3) % 2)
    for i, name in enumerate(corpus.DEGRADATIONS)
]


@pytest.fixture(scope="module", autouse=True)
def running_decoder() -> Iterator[None]:
    """One decoder process for the module, stopped afterwards."""
    decoder.start_decoder()
    yield
    decoder.stop_decoder()


@pytest.fixture(scope="module")
def degraded() -> dict[str, ScanPage]:
    return {
        name: corpus.scan_page(form, index, name, seed=i)
        for i, (name, form, index) in enumerate(DEGRADED)
    }


def _read(data: bytes, limits: IntakeLimits | None = None, **kwargs: int) -> list[PageRead]:
    return list(read_scan(data, KEY, limits, **kwargs))


def _matches(read: PageRead, page: ScanPage) -> bool:
    """The page's code read right: errand, page n of m, and which way up."""
    if read.payload is None or page.expect is None:
        return False
    got = (read.payload.errand_id, read.payload.page, read.payload.pages)
    return got == page.expect and read.upside_down == page.upside_down and read.error is None


def _assert_all_match(reads: list[PageRead], pages: list[ScanPage]) -> None:
    assert [r.page_index for r in reads] == list(range(len(pages)))
    wrong = [(p.label, r.error) for r, p in zip(reads, pages, strict=True) if not _matches(r, p)]
    assert wrong == []


def _preview(read: PageRead) -> Image.Image:
    image = Image.open(io.BytesIO(read.preview_jpeg))
    assert image.format == "JPEG"
    return image


# --- degradations, containers, modes -------------------------------------------------


@pytest.mark.parametrize(("name", "form", "index"), DEGRADED, ids=[d[0] for d in DEGRADED])
def test_each_degradation_is_read_from_a_png(
    degraded: dict[str, ScanPage], name: str, form: str, index: int
) -> None:
    page = degraded[name]
    (read,) = _read(corpus.as_png(page.image))
    assert _matches(read, page), (read.payload, read.error, read.upside_down)
    assert read.payload is not None
    assert read.payload.kind.value == {"reg": "REG", "rem": "REM", "reg2": "REG"}[form]


def test_every_degradation_in_one_scanned_pdf(degraded: dict[str, ScanPage]) -> None:
    pages = list(degraded.values())
    pdf = corpus.as_pdf([p.image for p in pages])
    info = inspect_scan(pdf, IntakeLimits())
    assert (info.media_type, info.pages, info.size_bytes, info.extension) == (
        "application/pdf",
        len(pages),
        len(pdf),
        ".pdf",
    )
    _assert_all_match(_read(pdf), pages)


def test_every_degradation_in_one_multipage_tiff(degraded: dict[str, ScanPage]) -> None:
    pages = list(degraded.values())
    tiff = corpus.as_tiff([p.image for p in pages])
    assert inspect_scan(tiff, IntakeLimits()).pages == len(pages)
    _assert_all_match(_read(tiff), pages)


def test_mixed_batch_returns_every_page() -> None:
    pages = corpus.mixed_batch(seed=7)
    assert any(p.upside_down for p in pages) and not all(p.upside_down for p in pages)
    assert len({p.expect for p in pages}) == len(pages) == 6  # three 2-page forms
    _assert_all_match(_read(corpus.as_pdf([p.image for p in pages])), pages)


def test_mixed_batch_with_blank_uncoded_forged_and_foreign_pages() -> None:
    good = corpus.mixed_batch(seed=3)
    foreign = corpus.paste_code(corpus.clean_page("rem", 0), "HTTPS://EXAMPLE.ORG/", 200)
    foreign_page = ScanPage(corpus.degrade(foreign, corpus.DEGRADATIONS["skewed"]), None, False, "")
    odd = [
        (corpus.blank_page(), NO_QR_CODE),
        (corpus.page_without_qr("reg", 1, "noisy"), NO_QR_CODE),
        (corpus.tampered_page("rem", 0, "rotated+1"), MAC_MISMATCH),
        (corpus.tampered_page("reg2", 1, "upside-down", errand_id=5), MAC_MISMATCH),
        (foreign_page, MALFORMED),
    ]  # fmt: skip
    pages = good[:2] + [p for p, _ in odd[:3]] + good[2:] + [p for p, _ in odd[3:]]
    reads = _read(corpus.as_pdf([p.image for p in pages]))
    assert [r.page_index for r in reads] == list(range(len(pages)))
    expected_errors = {pages.index(p): error for p, error in odd}
    for index, (read, page) in enumerate(zip(reads, pages, strict=True)):
        if index in expected_errors:
            assert (read.payload, read.error) == (None, expected_errors[index]), page.label
            assert read.preview_jpeg  # the clerk still sees the page
        else:
            assert _matches(read, page), page.label


@pytest.mark.parametrize("mode", ["RGB", "P", "1", "RGBA", "LA", "I;16", "CMYK"])
def test_images_in_any_mode(mode: str) -> None:
    page = corpus.scan_page("rem", 1, "rotated-2", seed=4)
    image = corpus.in_mode(page.image, mode)
    assert image.mode == mode
    data = corpus.as_tiff([image]) if mode == "CMYK" else corpus.as_png(image)
    reopened = Image.open(io.BytesIO(data))
    assert reopened.mode == mode  # the file really holds that mode
    (read,) = _read(data)
    assert _matches(read, page), read.error


def test_sixteen_bit_tiff_keeps_its_tones() -> None:
    page = corpus.scan_page("reg", 0, "blurred")
    sixteen, eight = (
        _read(corpus.as_tiff([corpus.in_mode(page.image, mode)]))[0] for mode in ("I;16", "L")
    )
    assert _matches(sixteen, page)
    # scaled down, not clipped to white: the same greys as the 8-bit scan
    difference = ImageChops.difference(_preview(sixteen), _preview(eight))
    assert ImageStat.Stat(difference).mean[0] < 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_exif_orientation_is_applied(orientation: int) -> None:
    page = corpus.scan_page("reg2", 0, "clean-150")
    data = corpus.as_jpeg(page.image, exif_orientation=orientation)
    stored = Image.open(io.BytesIO(data))
    assert stored.size != page.image.size or orientation == 3  # stored turned
    (read,) = _read(data)
    assert _matches(read, page)
    preview = _preview(read)
    assert preview.height > preview.width  # shown upright


def test_previews_are_grey_about_100_dpi_and_upright() -> None:
    upright = corpus.scan_page("reg", 0, "clean-200")
    turned = corpus.scan_page("reg", 0, "upside-down")
    reads = _read(corpus.as_pdf([upright.image, turned.image]))
    assert [r.upside_down for r in reads] == [False, True]
    a, b = (_preview(r) for r in reads)
    assert a.mode == b.mode == "L"
    assert a.size == b.size
    assert abs(a.width - 827) < 30  # A4 at 100 dpi
    assert a.info["dpi"] == pytest.approx((100, 100), abs=1)
    same = ImageStat.Stat(ImageChops.difference(a, b)).mean[0]
    turned_back = ImageStat.Stat(
        ImageChops.difference(a, b.transpose(Image.Transpose.ROTATE_180))
    ).mean[0]
    assert same < 5 < turned_back  # the upside-down page's preview was turned upright


def test_rendered_form_pdf_is_read_too() -> None:
    """Not a scan: vector pages, rasterised by pdfium (the crop first)."""
    reads = _read(corpus.form_pdf("rem"))
    assert [(r.payload.errand_id, r.payload.page) for r in reads if r.payload] == [
        (4567, 1),
        (4567, 2),
    ]
    assert all(_preview(r).width == pytest.approx(827, abs=2) for r in reads)


def test_pdf_page_rotation_is_honoured() -> None:
    pages = [corpus.scan_page("reg", 0, "clean-200"), corpus.scan_page("reg", 1, "skewed")]
    document = pdfium.PdfDocument(corpus.as_pdf([p.image for p in pages]))
    document[0].set_rotation(180)  # shown upside down: read upside down
    document[1].set_rotation(90)  # shown sideways: found on the whole page, turned back
    out = io.BytesIO()
    document.save(out)
    document.close()
    first, second = _read(out.getvalue())
    assert first.payload is not None and first.payload.page == 1 and first.upside_down
    assert second.payload is not None and second.payload.page == 2
    assert not second.upside_down
    assert _preview(second).height > _preview(second).width  # turned upright


def test_start_page_resumes() -> None:
    pages = corpus.mixed_batch(seed=5)
    pdf = corpus.as_pdf([p.image for p in pages])
    reads = _read(pdf, start_page=4)
    assert [r.page_index for r in reads] == [4, 5]
    assert all(_matches(r, p) for r, p in zip(reads, pages[4:], strict=True))
    assert _read(pdf, start_page=6) == []
    with pytest.raises(ValueError):
        read_scan(pdf, KEY, start_page=-1)


def test_wrong_key_is_a_mac_mismatch() -> None:
    pdf = corpus.as_pdf([corpus.scan_page("reg", i, "noisy").image for i in range(2)])
    reads = list(read_scan(pdf, qr_mac_key("another-secret")))
    assert [(r.payload, r.error) for r in reads] == [(None, MAC_MISMATCH)] * 2


# --- bad files -----------------------------------------------------------------------


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("L", (10, 10)).save(out, "GIF")
    return out.getvalue()


def _truncated_png() -> bytes:
    return corpus.as_png(corpus.clean_page("reg", 0, 150))[:2000]


BAD_FILES = {
    "text": (corpus.text_file, BadScanFile.NOT_PDF_OR_IMAGE),
    "empty": (lambda: b"", BadScanFile.NOT_PDF_OR_IMAGE),
    "gif": (_gif, BadScanFile.NOT_PDF_OR_IMAGE),
    "png-signature-then-junk": (
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        BadScanFile.NOT_PDF_OR_IMAGE,
    ),
    "truncated-pdf": (corpus.truncated_pdf, BadScanFile.BROKEN_PDF),
    "truncated-update-pdf": (corpus.truncated_update_pdf, BadScanFile.BROKEN_PDF),
    "broken-pdf": (corpus.broken_pdf, BadScanFile.BROKEN_PDF),
    "encrypted-pdf": (corpus.encrypted_pdf, BadScanFile.ENCRYPTED_PDF),
    "zero-page-pdf": (corpus.zero_page_pdf, BadScanFile.NO_PAGES),
    "huge-png": (corpus.huge_png, BadScanFile.IMAGE_TOO_LARGE),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_refused(name: str) -> None:
    make, code = BAD_FILES[name]
    data = make()
    with pytest.raises(BadScanFile) as inspected:
        inspect_scan(data, IntakeLimits())
    assert inspected.value.code == code
    assert str(inspected.value)  # a message for the logs
    with pytest.raises(BadScanFile) as read:
        read_scan(data, KEY)
    assert read.value.code == code


def test_huge_png_is_small_on_disk() -> None:
    data = corpus.huge_png()
    assert len(data) < 50_000
    assert struct.unpack(">II", data[16:24]) == (100_000, 100_000)  # IHDR: width, height


def test_the_decoder_survives_bad_files() -> None:
    for make, _ in BAD_FILES.values():
        with pytest.raises(BadScanFile):
            inspect_scan(make(), IntakeLimits())
    page = corpus.scan_page("reg", 1)
    (read,) = _read(corpus.as_png(page.image))
    assert _matches(read, page)


def test_file_and_page_count_limits() -> None:
    pdf = corpus.as_pdf([corpus.scan_page("reg", i).image for i in range(2)])
    with pytest.raises(BadScanFile) as too_big:
        inspect_scan(pdf, IntakeLimits(max_file_bytes=len(pdf) - 1))
    assert too_big.value.code == BadScanFile.FILE_TOO_LARGE
    assert inspect_scan(pdf, IntakeLimits(max_file_bytes=len(pdf))).pages == 2
    with pytest.raises(BadScanFile) as too_many:
        read_scan(pdf, KEY, IntakeLimits(max_pages=1))
    assert too_many.value.code == BadScanFile.TOO_MANY_PAGES
    assert len(_read(pdf, IntakeLimits(max_pages=2))) == 2


def test_a_pdf_encrypted_without_a_user_password_is_read() -> None:
    (read,) = _read(corpus.encrypted_pdf(user_password=""))
    assert read.payload is not None and read.payload.errand_id == 4567


def test_damaged_image_data_makes_the_page_unreadable() -> None:
    data = _truncated_png()
    assert inspect_scan(data, IntakeLimits()).pages == 1  # the header is fine
    (read,) = _read(data)
    assert (read.payload, read.error, read.preview_jpeg) == (None, PAGE_UNREADABLE, b"")


# --- pages too large, hanging, crashing ------------------------------------------------


def test_a_page_too_large_is_not_decoded_and_the_others_are() -> None:
    first, last = corpus.scan_page("reg", 0), corpus.scan_page("reg", 1, "noisy")
    pdf = corpus.concat_pdfs(
        [corpus.as_pdf([first.image]), corpus.huge_page_pdf(), corpus.as_pdf([last.image])]
    )
    one, huge, three = _read(pdf)
    assert _matches(one, first) and _matches(three, last)
    assert (huge.page_index, huge.payload, huge.error, huge.preview_jpeg) == (
        1,
        None,
        PAGE_TOO_LARGE,
        b"",
    )


def test_pixel_limits_count_stored_pixels() -> None:
    small = corpus.scan_page("rem", 0, "clean-150")  # 1240 × 1754
    large = corpus.scan_page("rem", 1, "clean-300")  # 2480 × 3508
    limit = IntakeLimits(max_pixels=3_000_000, dpi=100)  # rendered at 100 dpi both fit
    tiff = corpus.as_tiff([small.image, large.image])
    pdf = corpus.as_pdf([small.image, large.image])
    for data in (tiff, pdf):
        ok, too_large = _read(data, limit)
        assert _matches(ok, small)
        assert (too_large.payload, too_large.error) == (None, PAGE_TOO_LARGE)
    with pytest.raises(BadScanFile) as single:
        read_scan(corpus.as_png(large.image), KEY, limit)
    assert single.value.code == BadScanFile.IMAGE_TOO_LARGE


def _hostile_batch() -> tuple[bytes, ScanPage, ScanPage]:
    before, after = corpus.scan_page("rem", 0, "noisy"), corpus.scan_page("rem", 1, "skewed")
    pdf = corpus.concat_pdfs(
        [corpus.as_pdf([before.image]), corpus.hanging_page_pdf(), corpus.as_pdf([after.image])]
    )
    return pdf, before, after


def _decoder_pid() -> int:
    process = decoder._DECODER._process
    assert process is not None and process.pid is not None
    return process.pid


@pytest.mark.slow
def test_a_hanging_page_times_out_and_the_next_pages_are_read() -> None:
    pdf, before, after = _hostile_batch()
    limits = IntakeLimits(page_timeout_s=1.0)
    pages = read_scan(pdf, KEY, limits)
    pid = _decoder_pid()
    start = time.monotonic()  # the hanging page is asked for as the first is read
    first = next(pages)
    hung = next(pages)
    took = time.monotonic() - start
    rest = list(pages)
    assert _matches(first, before)
    assert (hung.page_index, hung.payload, hung.error) == (1, None, PAGE_TIMED_OUT)
    assert 1.0 <= took < 5.0  # killed at the limit, not when the page was done
    assert len(rest) == 1 and _matches(rest[0], after)
    assert _decoder_pid() != pid  # a new decoder read the last page
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and the old one is gone


@pytest.mark.slow
def test_a_page_that_kills_the_decoder_is_unreadable_and_the_next_pages_are_read() -> None:
    """The same page with room for neither: pdfium runs out of memory and aborts."""
    pdf, before, after = _hostile_batch()
    limits = IntakeLimits(page_timeout_s=60.0, max_memory_bytes=600 * 1024**2)
    start = time.monotonic()
    one, crashed, three = _read(pdf, limits)
    assert time.monotonic() - start < 30
    assert _matches(one, before) and _matches(three, after)
    assert (crashed.payload, crashed.error, crashed.preview_jpeg) == (None, PAGE_UNREADABLE, b"")


@pytest.mark.slow  # starts a decoder process of its own
def test_a_decoder_killed_between_pages_is_replaced_unnoticed() -> None:
    pages = corpus.mixed_batch(seed=11)
    reads = read_scan(corpus.as_pdf([p.image for p in pages]), KEY)
    got = [next(reads)]
    pid = _decoder_pid()
    os.kill(pid, signal.SIGKILL)
    got.extend(reads)
    _assert_all_match(got, pages)
    assert _decoder_pid() != pid


def test_threads_share_the_decoder() -> None:
    """More files at once than the decoder keeps open: each is sent again as needed."""
    batches = [corpus.mixed_batch(seed=seed) for seed in (21, 22, 23)]
    pdfs = [corpus.as_pdf([p.image for p in pages]) for pages in batches]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(_read, pdfs))
    for reads, pages in zip(results, batches, strict=True):
        _assert_all_match(reads, pages)


@pytest.mark.slow  # forks this process
def test_a_forked_copy_leaves_the_parents_decoder_alone() -> None:
    """A pre-forking server may fork after the decoder started: the copy starts its own."""
    page = corpus.scan_page("reg", 0)
    png = corpus.as_png(page.image)
    assert _matches(_read(png)[0], page)
    parent_decoder = _decoder_pid()
    with warnings.catch_warnings():  # Python 3.12+ warns of forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked copy
        process = decoder._DECODER._process
        registered = {p.pid for p in multiprocessing.active_children()}
        os._exit(0 if process is None and parent_decoder not in registered else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _decoder_pid() == parent_decoder
    assert _matches(_read(png)[0], page)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page_timeout_s"):
        IntakeLimits(page_timeout_s=0)
    with pytest.raises(ValueError, match="max_pixels"):
        IntakeLimits(max_pixels=-1)


# --- the archival copy -----------------------------------------------------------------


def test_archive_pdf_is_pdf_a_with_every_page(tmp_path: Path) -> None:
    pages = corpus.mixed_batch(seed=2)
    reads = _read(corpus.as_pdf([p.image for p in pages]))
    png = corpus.as_png(corpus.clean_page("reg", 0, 150))
    pdf = scan_archive_pdf([r.preview_jpeg for r in reads] + [png], title="BB-7K3M-Q9XT")
    path = tmp_path / "archive.pdf"
    path.write_bytes(pdf)
    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    assert re.search(rf"^Pages:\s+{len(reads) + 1}$", info.stdout, re.M)
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info.stdout, re.M)
    assert size is not None  # A4 from the previews' resolution, to a pixel
    assert (float(size[1]), float(size[2])) == pytest.approx((595.3, 841.9), abs=1.5)
    assert re.search(r"^Title:\s+BB-7K3M-Q9XT$", info.stdout, re.M)
    meta = subprocess.run(
        ["pdfinfo", "-meta", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert re.search(r"pdfaid:part(=\"|>)3", meta)
    assert re.search(r"pdfaid:conformance(=\"|>)A", meta)
    assert re.search(r"^Tagged:\s+yes$", info.stdout, re.M)  # each page a Figure with its alt
    # the pages are the previews, which still read: the JPEGs embedded as they are
    assert sum(len(r.preview_jpeg) for r in reads) < len(pdf)
    archived = _read(pdf)
    assert [r.payload for r in archived[:-1]] == [r.payload for r in reads]
    assert not any(r.upside_down for r in archived)  # the previews were turned upright


def test_archive_refuses_what_is_not_a_page_image() -> None:
    with pytest.raises(ValueError):
        scan_archive_pdf([])
    with pytest.raises(ValueError):
        scan_archive_pdf([b"not an image"])
    with pytest.raises(ValueError):
        scan_archive_pdf([_gif()])
