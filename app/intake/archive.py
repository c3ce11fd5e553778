"""The archival copy of one errand's scanned pages: a tagged PDF/A-3a of the page images.

Rendered by WeasyPrint like every PDF SPV produces, one image a page, each page the
size of the scanned paper (from the image's resolution; A4 width when it has none), each
image a ``Figure`` of the tag structure with its alternate text ("Inskannad sida 1 av 2").
JPEG images are embedded as they are (no second compression), PNG images losslessly.
PDF/A-3 level A like the e-signed form, because it is then given an evidence page and the
scan's record as an attached file, and sealed the same way
(:func:`app.intake.clerk_actions.confirm_paper_form`).
"""

from __future__ import annotations

import base64
import html
import io

from PIL import Image
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from app.core.i18n import translations

PDF_VARIANT = "pdf/a-3a"
"""PDF/A-3, conformance level A: archivable, tagged, and may carry attached files."""

_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
_A4_WIDTH_MM = 210.0


def _page_size_mm(image: Image.Image) -> tuple[float, float]:
    dpi = image.info.get("dpi")
    if dpi and 30 <= float(dpi[0]) <= 2400 and 30 <= float(dpi[1]) <= 2400:
        return image.width / float(dpi[0]) * 25.4, image.height / float(dpi[1]) * 25.4
    return _A4_WIDTH_MM, _A4_WIDTH_MM * image.height / image.width


def scan_archive_pdf(
    pages: list[bytes], *, title: str = "Inskannade sidor", lang: str = "sv"
) -> bytes:
    """One PDF/A-2b with a page for each image (JPEG or PNG bytes, such as
    :attr:`~app.intake.scan_file.PageRead.preview_jpeg`), in order.

    Raises :class:`ValueError` when there are no pages or one is not a JPEG or PNG.
    """
    if not pages:
        raise ValueError("no pages to archive")
    rules, bodies = [], []
    for number, data in enumerate(pages):
        try:
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                media_type = _FORMATS[str(image.format)]
                width_mm, height_mm = _page_size_mm(image)
        except (OSError, ValueError) as error:
            raise ValueError(f"page {number + 1} is not a JPEG or PNG image") from error
        uri = f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
        rules.append(
            f"@page p{number} {{ size: {width_mm:.3f}mm {height_mm:.3f}mm; margin: 0 }}"
            f" .p{number} {{ page: p{number}; width: {width_mm:.3f}mm;"
            f" height: {height_mm:.3f}mm }}"
        )
        alt = html.escape(
            translations(lang).gettext("Inskannad sida %(page)s av %(pages)s")
            % {"page": number + 1, "pages": len(pages)}
        )
        bodies.append(f'<img class="p{number}" src="{uri}" alt="{alt}">')
    document = (
        f'<!DOCTYPE html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "html, body { margin: 0; padding: 0 } img { display: block; break-after: page }"
        "img:last-child { break-after: auto }"
        f"{' '.join(rules)}</style></head><body>{''.join(bodies)}</body></html>"
    )
    fetcher = URLFetcher(allowed_protocols=["data"])  # nothing but the pages themselves
    pdf = HTML(string=document, url_fetcher=fetcher).write_pdf(pdf_variant=PDF_VARIANT)
    assert pdf is not None
    return pdf
