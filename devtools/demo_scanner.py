"""A stand-in for the mailroom's scanner (demo and tests only).

``/demo/skanning`` gives one PDF, as a scanner writes it, of every form waiting for the
post: each printed page rasterised at 150 dpi in grayscale and fed a little askew, the
second page of each form upside down, and a blank sheet at the end. The clerk uploads it
on ``/skanning``.
"""

from __future__ import annotations

import io
import random

import pypdfium2 as pdfium
from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue
from PIL import Image
from sqlalchemy import select

from app.registrations.models import DocumentKind, Errand, ErrandDocument
from app.web import db, intake_clerk_required
from workflows.states import ErrandState

bp = Blueprint("demo_scanner", __name__)

DPI = 150


def _scanned_pages(pdf: bytes, rng: random.Random) -> list[Image.Image]:
    document = pdfium.PdfDocument(pdf)
    try:
        pages = []
        for index in range(len(document)):
            page = document[index]
            image = page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L")
            page.close()
            image = image.rotate(
                rng.uniform(-2.0, 2.0), fillcolor=255, resample=Image.Resampling.BICUBIC
            )
            pages.append(image.rotate(180) if index % 2 else image)
        return pages
    finally:
        document.close()


def scan_of_the_post(printed: list[bytes], seed: int = 0) -> bytes:
    rng = random.Random(seed)
    pages = [page for pdf in printed for page in _scanned_pages(pdf, rng)]
    pages.append(Image.new("L", pages[0].size if pages else (1240, 1754), 250))
    out = io.BytesIO()
    pages[0].save(out, "PDF", resolution=DPI, save_all=True, append_images=pages[1:])
    return out.getvalue()


@bp.get("/demo/skanning")
@intake_clerk_required
def scan() -> ResponseReturnValue:
    printed = (
        db()
        .scalars(
            select(ErrandDocument.content)
            .join(Errand, Errand.id == ErrandDocument.errand_id)
            .where(
                Errand.state == ErrandState.AWAITING_POST,
                ErrandDocument.kind == DocumentKind.PRINTED,
            )
            .order_by(Errand.id)
        )
        .all()
    )
    if not printed:
        abort(404, "No form is waiting for the post: print one for posting first.")
    response = Response(scan_of_the_post(list(printed)), mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="inkommen-post.pdf"'
    return response
