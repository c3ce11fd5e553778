"""Whether a scanned page is a blank sheet (the back of a page, a separator): nothing
darker than paper on it once the scanner's specks are filtered out and its margins, where
scanners leave shadows, are left aside."""

from __future__ import annotations

import io

from PIL import Image, ImageFilter

INK_LEVEL = 128
"""A pixel darker than this (0 black, 255 white) is ink."""
MAX_INK_SHARE = 0.0005
"""A blank sheet has less ink than this share of its area: 0.05 %. The emptiest page of
SPV's forms has about 1.6 %; a short handwritten note about 0.2 %."""
MARGIN = 0.05
"""The share of the width and height left aside at each edge."""


def is_blank_sheet(preview_jpeg: bytes) -> bool:
    """Whether the page's preview (grayscale JPEG) shows nothing at all."""
    if not preview_jpeg:
        return False  # a page that could not be drawn is not known to be blank
    with Image.open(io.BytesIO(preview_jpeg)) as image:
        gray = image.convert("L")
    width, height = gray.size
    inner = gray.crop(
        (
            round(width * MARGIN),
            round(height * MARGIN),
            round(width * (1 - MARGIN)),
            round(height * (1 - MARGIN)),
        )
    ).filter(ImageFilter.MedianFilter(3))
    ink = sum(inner.histogram()[:INK_LEVEL])
    return ink < MAX_INK_SHARE * inner.width * inner.height
