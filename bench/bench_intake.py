"""Benchmark of scanned intake against bare rasterising + QR decoding, in one run.

    .venv/bin/python bench/bench_intake.py [--pages 40] [--dpi 200] [--runs 5]

The batch is a multi-page PDF as a scanner writes it (one image a page) of real forms,
printed, degraded (turned, skewed, upside down, noisy, 1-bit, JPEG) and shuffled
(tests/scan_corpus.py). Each measurement is the best of ``--runs`` passes over it:

- bare: in this process, pypdfium2 rasterises each page at 200 dpi in grayscale and
  zxing-cpp reads QR codes only in the crop around ``QR_PLACEMENT`` (and, when that
  finds nothing, in the crop turned upside down);
- read_scan: ``read_scan`` over the same bytes, its decoder process already running (the
  cold start is reported separately): the file sent once, each page decoded in the
  decoder process with a timeout, its code's MAC checked, a preview JPEG made;
- intake: all of it as the upload runs it (:class:`Intake`): the batch received and kept,
  ``read_scan``, each page recorded and sorted in its own transaction, matched pages
  grouped. This is the figure held against the bar.

A second batch, the rendered forms themselves (vector PDF pages, no scanned image),
shows the cost when every page must be rasterised. The "in-process" column is the
decoder's own work called directly, without the process isolation (for reference).
DESIGN §7 bar: intake ≤ 1.5× bare.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pypdfium2 as pdfium
import zxingcpp
from PIL import Image

from app.documents.qr import QR_PLACEMENT
from app.documents.scan import CROP_MARGIN_MM
from app.intake import decoding
from app.intake.decoder import read_scan, start_decoder, stop_decoder
from app.intake.scan_file import PDF, IntakeLimits
from tests import scan_corpus

QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
BAR = 1.5


def bare(pdf: bytes, dpi: int = 200) -> int:
    """Rasterise every page and read the code in the crop; the pages with a code."""
    document = pdfium.PdfDocument(pdf)
    found = 0
    try:
        for index in range(len(document)):
            page = document[index]
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            for rotated in (False, True):
                box = QR_PLACEMENT.crop_box(
                    image.width, image.height, CROP_MARGIN_MM, rotated=rotated
                )
                if zxingcpp.read_barcodes(image.crop(box), formats=QR_ONLY):
                    found += 1
                    break
            page.close()
    finally:
        document.close()
    return found


def in_process(pdf: bytes, key: bytes, limits: IntakeLimits) -> int:
    """The decoder's own work on every page, called in this process: what the isolation
    (process, pipe, timeouts) adds is the difference to :func:`intake`."""
    source = decoding._open(pdf, PDF, key, limits)
    try:
        return sum(1 for i in range(source.pages) if source.read(i).payload is not None)
    finally:
        source.close()


def intake(pdf: bytes, key: bytes, limits: IntakeLimits) -> int:
    """The pages whose code was read and checked."""
    return sum(1 for page in read_scan(pdf, key, limits) if page.payload is not None)


class Intake:
    """The whole of scanned intake as the clerk's upload runs it: the file received and
    kept as a batch, every page read, recorded (one transaction a page, for progress and
    resumption) and sorted, the matched pages grouped. On ``DATABASE_URL`` (PostgreSQL in
    production) or, unset, a SQLite file in a temporary folder."""

    def __init__(self, key_secret: str) -> None:
        import os
        import tempfile

        from app import create_app
        from app.cli import migrate_database
        from app.config import Settings
        from devtools.seed import seed_demo

        url = os.environ.get("DATABASE_URL") or (
            f"sqlite:///{tempfile.mkdtemp(prefix='bench-intake-')}/bench.sqlite3"
        )
        settings = Settings(
            database_url=url, broker_url="stub://", secret_key=key_secret, testing=True
        )
        migrate_database(url)
        self.runtime = create_app(settings).extensions["behorighet"]
        with self.runtime.unit_of_work() as session:
            seed_demo(session)
        self.runs = 0

    def __call__(self, pdf: bytes) -> int:
        from app.core.agents import Agent
        from app.intake.models import BatchSource, ScanPage
        from app.intake.reading import read_batch, receive_file

        self.runs += 1  # a new file each time: the same bytes twice are one batch
        data = pdf + f"% run {self.runs}\n".encode()
        with self.runtime.unit_of_work() as session:
            batch_id = receive_file(
                session, Agent.system("bench"), data, "bench.pdf", BatchSource.UPLOAD
            ).batch.id
        read_batch(self.runtime.session_factory, batch_id, self.runtime.settings.qr_key)
        with self.runtime.unit_of_work() as session:
            pages = session.query(ScanPage).filter(ScanPage.batch_id == batch_id)
            return sum(1 for page in pages if page.form_page is not None)


def best_s(step: Callable[[], object], runs: int) -> float:
    """Fastest of ``runs`` calls after one warm-up call, in seconds."""
    step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def scanned_batch(pages: int, dpi: int) -> bytes:
    images: list[Image.Image] = []
    seed = 1
    while len(images) < pages:
        images.extend(page.image for page in scan_corpus.mixed_batch(seed=seed, dpi=dpi))
        seed += 1
    return scan_corpus.as_pdf(images[:pages])


def vector_batch(pages: int) -> bytes:
    forms = [scan_corpus.form_pdf(name) for name in scan_corpus.FORMS]
    pdfs = [forms[i % len(forms)] for i in range(pages // 2 + 1)]
    merged = scan_corpus.concat_pdfs(pdfs)
    document = pdfium.PdfDocument(merged)
    while len(document) > pages:
        document.del_page(len(document) - 1)
    out = io.BytesIO()
    document.save(out)
    document.close()
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--dpi", type=int, default=200, help="of the scanned pages")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    key = scan_corpus.KEY
    limits = IntakeLimits()
    stop_decoder()
    start = time.perf_counter()
    start_decoder()
    cold = time.perf_counter() - start

    batches = [
        (f"{args.pages}-page scanned PDF, {args.dpi} dpi", scanned_batch(args.pages, args.dpi)),
        (f"{args.pages}-page rendered form PDF (vector)", vector_batch(args.pages)),
    ]
    full = Intake("test-secret")  # the corpus's QR key
    rows = []
    print(f"decoder cold start (spawn, imports, first answer): {cold * 1000:.0f} ms")
    print(
        f"{'batch':<44} {'bare p/s':>9} {'in-process':>10} {'read_scan':>10}"
        f" {'intake p/s':>11} {'ratio':>6}  codes read"
    )
    for name, pdf in batches:
        found = (bare(pdf), in_process(pdf, key, limits), intake(pdf, key, limits), full(pdf))
        bare_s = best_s(lambda pdf=pdf: bare(pdf), args.runs)  # type: ignore[misc]
        local_s = best_s(lambda pdf=pdf: in_process(pdf, key, limits), args.runs)  # type: ignore[misc]
        read_s = best_s(lambda pdf=pdf: intake(pdf, key, limits), args.runs)  # type: ignore[misc]
        intake_s = best_s(lambda pdf=pdf: full(pdf), args.runs)  # type: ignore[misc]
        ratio = intake_s / bare_s
        rows.append((name, args.pages / bare_s, args.pages / intake_s, ratio))
        print(
            f"{name:<44} {args.pages / bare_s:>9.1f} {args.pages / local_s:>10.1f}"
            f" {args.pages / read_s:>10.1f} {args.pages / intake_s:>11.1f} {ratio:>5.2f}×"
            f"  bare {found[0]}, in-process {found[1]}, read_scan {found[2]},"
            f" intake {found[3]} of {args.pages}"
        )
        print(f"{'':<44} isolation costs {(read_s - local_s) / args.pages * 1000:.2f} ms a page")
    stop_decoder()

    print()
    print("| scanned intake (DESIGN §7: ≤ 1.5× bare) | bare | intake | intake / bare |")
    print("|---|---|---|---|")
    for name, bare_rate, intake_rate, ratio in rows:
        verdict = "" if ratio <= BAR else " (over the bar)"
        print(
            f"| {name} | {bare_rate:.0f} pages/s | {intake_rate:.0f} pages/s"
            f" | {ratio:.2f}×{verdict} |"
        )
    print(f"decoder cold start {cold * 1000:.0f} ms (once per process; again after a kill)")


if __name__ == "__main__":
    main()
