"""The seal's visible stamp: its place on the last page, its words, font and layout.

A framed box of text in SPV's dark blue (:class:`SealStampStyle`, drawn by pyHanko in the
seal's widget at :data:`STAMP_PLACEMENT`, beside the page's footer, clear of the QR
code), saying who signed with BankID and when the agency sealed (:func:`stamp_text`). The
text is set in an embedded cut of DejaVu Sans, as PDF/A requires of every font.
"""

from __future__ import annotations

import functools
import io
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fontTools import subset, ttLib
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from app.documents.render import translations

FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
"""The stamp's font: the forms' own (Debian's ``fonts-dejavu-core``, which WeasyPrint uses)."""

FONT_SIZE = 7.0
"""The stamp's font size in points (smaller only when a long name needs it)."""
LEADING_RATIO = 1.3
"""Line distance as a multiple of the font size."""
PADDING_PT = 4.0
"""Room between the stamp's frame and its text, in points."""
STAMP_COLOUR = (0.0, 0.19, 0.37)
"""SPV's dark blue, as in the forms' headings (DeviceRGB; the PDF/A output intent is sRGB)."""
MM = 72 / 25.4


@dataclass(frozen=True)
class StampPlacement:
    """Where the visible seal stamp is drawn on the last page, in millimetres."""

    x_mm: float
    """The stamp's left edge from the page's left edge."""
    y_mm: float
    """The stamp's bottom edge from the page's bottom edge."""
    width_mm: float
    height_mm: float

    def box(self) -> tuple[int, int, int, int]:
        """``(x1, y1, x2, y2)`` in PDF points, rounded (pyHanko takes whole points)."""
        return (
            round(self.x_mm * MM),
            round(self.y_mm * MM),
            round((self.x_mm + self.width_mm) * MM),
            round((self.y_mm + self.height_mm) * MM),
        )


STAMP_PLACEMENT = StampPlacement(x_mm=124.0, y_mm=9.0, width_mm=68.0, height_mm=16.0)
"""In the bottom page margin, right of the footer text (which ends before 120 mm) and far
from the QR code (18–40 mm by 8–30 mm); its right edge is on the 18 mm page margin."""


# The stamp's text is set in a simple TrueType font with WinAnsiEncoding: a cut of DejaVu
# Sans to the characters of Windows-1252, made once per process and embedded in every
# seal as it is, already compressed. (pyHanko's own OpenType text engine subsets and
# recompresses the font again for every signature, a third of the cost of a seal.)

FIRST_CODE, LAST_CODE = 32, 255


def _cp1252(code: int) -> str | None:
    try:
        return bytes([code]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90 and 0x9D are unassigned
        return None


@dataclass(frozen=True)
class StampFont:
    """The stamp's font, ready to embed (see :func:`stamp_font`)."""

    base_font: str
    """PostScript name with a subset tag, as PDF wants it for a cut font."""
    program: bytes
    """The TrueType font program, Flate-compressed."""
    program_length: int
    """Its length uncompressed (``/Length1``)."""
    widths: tuple[int, ...]
    """Advance widths of the codes ``FIRST_CODE``…``LAST_CODE``, in 1/1000 em."""
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int

    def width(self, text: bytes, size: float) -> float:
        """Width in points of Windows-1252 ``text`` at ``size``."""
        return sum(self.widths[c - FIRST_CODE] for c in text if c >= FIRST_CODE) * size / 1000


@functools.cache
def stamp_font() -> StampFont:
    """DejaVu Sans cut to Windows-1252, once per process."""
    font = ttLib.TTFont(str(FONT_FILE))
    chars = {c: ch for c in range(FIRST_CODE, LAST_CODE + 1) if (ch := _cp1252(c)) is not None}
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    options.drop_tables += ["FFTM", "GSUB", "GPOS", "GDEF", "kern"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(ch) for ch in chars.values()])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    program = out.getvalue()

    font = ttLib.TTFont(io.BytesIO(program))
    scale = 1000 / font["head"].unitsPerEm
    cmap = font.getBestCmap()
    metrics = font["hmtx"].metrics
    notdef = metrics[".notdef"][0]
    widths = tuple(
        round(metrics[cmap[ord(chars[c])]][0] * scale)
        if c in chars and ord(chars[c]) in cmap
        else round(notdef * scale)
        for c in range(FIRST_CODE, LAST_CODE + 1)
    )
    head, os2 = font["head"], font["OS/2"]
    return StampFont(
        base_font="SPVSTA+" + font["name"].getDebugName(6),
        program=zlib.compress(program, 9),
        program_length=len(program),
        widths=widths,
        bbox=(
            round(head.xMin * scale),
            round(head.yMin * scale),
            round(head.xMax * scale),
            round(head.yMax * scale),
        ),
        ascent=round(os2.sTypoAscender * scale),
        descent=round(os2.sTypoDescender * scale),
        cap_height=round(getattr(os2, "sCapHeight", 729) * scale),
    )


@functools.cache
def _to_unicode() -> bytes:
    """The stamp font's codes as Unicode (a ToUnicode CMap, Flate-compressed): its text
    extracts as written, and PDF/A level A asks it of every font."""
    pairs = [(c, ch) for c in range(FIRST_CODE, LAST_CODE + 1) if (ch := _cp1252(c)) is not None]
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        f"1 begincodespacerange <{FIRST_CODE:02x}> <{LAST_CODE:02x}> endcodespacerange",
    ]
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{code:02x}> <{ord(ch):04x}>" for code, ch in chunk]
        lines.append("endbfchar")
    lines.append("endcmap CMapName currentdict /CMap defineresource pop end end")
    return zlib.compress("\n".join(lines).encode("ascii"), 9)


def _font_resource(writer: BasePdfFileWriter) -> generic.IndirectObject:
    """The stamp font's objects, added to ``writer``: a simple TrueType font."""
    font = stamp_font()
    to_unicode = generic.StreamObject(
        dict_data={generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode")},
        encoded_data=_to_unicode(),
    )
    program = generic.StreamObject(
        dict_data={
            generic.pdf_name("/Length1"): generic.NumberObject(font.program_length),
            generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode"),
        },
        encoded_data=font.program,
    )
    descriptor = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/FontDescriptor"),
            generic.pdf_name("/FontName"): generic.pdf_name("/" + font.base_font),
            generic.pdf_name("/Flags"): generic.NumberObject(32),  # nonsymbolic
            generic.pdf_name("/FontBBox"): generic.ArrayObject(
                generic.NumberObject(v) for v in font.bbox
            ),
            generic.pdf_name("/ItalicAngle"): generic.NumberObject(0),
            generic.pdf_name("/Ascent"): generic.NumberObject(font.ascent),
            generic.pdf_name("/Descent"): generic.NumberObject(font.descent),
            generic.pdf_name("/CapHeight"): generic.NumberObject(font.cap_height),
            generic.pdf_name("/StemV"): generic.NumberObject(80),
            generic.pdf_name("/FontFile2"): writer.add_object(program),
        }
    )
    return writer.add_object(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Font"),
                generic.pdf_name("/Subtype"): generic.pdf_name("/TrueType"),
                generic.pdf_name("/BaseFont"): generic.pdf_name("/" + font.base_font),
                generic.pdf_name("/FirstChar"): generic.NumberObject(FIRST_CODE),
                generic.pdf_name("/LastChar"): generic.NumberObject(LAST_CODE),
                generic.pdf_name("/Widths"): generic.ArrayObject(
                    generic.NumberObject(w) for w in font.widths
                ),
                generic.pdf_name("/Encoding"): generic.pdf_name("/WinAnsiEncoding"),
                generic.pdf_name("/FontDescriptor"): writer.add_object(descriptor),
                generic.pdf_name("/ToUnicode"): writer.add_object(to_unicode),
            }
        )
    )


def to_cp1252(text: str) -> bytes:
    """``text`` in Windows-1252 on one line; a letter outside it loses its diacritics
    (Č → C), and anything else, control characters included, becomes ``?``. (The exact
    name is in the evidence; this is its picture.)"""
    out = bytearray()
    for ch in " ".join(text.split()):
        try:
            encoded = ch.encode("cp1252")
        except UnicodeEncodeError:
            encoded = unicodedata.normalize("NFKD", ch).encode("cp1252", "ignore")
        printable = bool(encoded) and all(FIRST_CODE <= c != 0x7F for c in encoded)
        out += encoded if printable else b"?"
    return bytes(out)


def wrap_text(text: bytes, width_pt: float, size: float) -> list[bytes]:
    """Greedy word wrap of Windows-1252 ``text`` into lines at most ``width_pt`` wide
    (a word longer than a line gets a line of its own)."""
    font = stamp_font()
    lines: list[bytes] = []
    line = b""
    for word in text.split(b" "):
        candidate = line + b" " + word if line else word
        if line and font.width(candidate, size) > width_pt:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def layout_stamp_text(text: str, width_pt: float, height_pt: float) -> tuple[float, list[bytes]]:
    """The largest font size (from :data:`FONT_SIZE` down to 4 pt) at which ``text``,
    wrapped, fits the box, and its lines."""
    encoded = to_cp1252(text)
    size = FONT_SIZE
    while True:
        lines = wrap_text(encoded, width_pt, size)
        fits = len(lines) * size * LEADING_RATIO <= height_pt and all(
            stamp_font().width(line, size) <= width_pt for line in lines
        )
        if fits or size <= 4:
            return size, lines
        size -= 0.5


class SealStamp(BaseStamp):
    """The seal's appearance: a framed box of text, vertically centred."""

    def __init__(
        self, writer: BasePdfFileWriter, style: SealStampStyle, box: BoxConstraints, text: str
    ) -> None:
        super().__init__(writer=writer, style=style, box=box)
        self.text = text

    def _render_inner_content(self) -> list[bytes]:
        font_name = generic.pdf_name("/SealFont")
        assert self.writer is not None
        self.set_resource(ResourceType.FONT, font_name, _font_resource(self.writer))
        width, height = self.box.width, self.box.height
        size, lines = layout_stamp_text(self.text, width - 2 * PADDING_PT, height - 2 * PADDING_PT)
        font = stamp_font()
        leading = size * LEADING_RATIO
        ascent, descent = font.ascent * size / 1000, font.descent * size / 1000
        block = (len(lines) - 1) * leading + ascent - descent
        first_baseline = (height + block) / 2 - ascent
        ops = [
            b"q BT %g %g %g rg /SealFont %g Tf %g TL %g %g Td"
            % (*STAMP_COLOUR, size, leading, PADDING_PT, first_baseline)
        ]
        ops.extend(b"<%s> Tj T*" % line.hex().encode("ascii") for line in lines)
        ops.append(b"ET Q")
        return [b" ".join(ops)]


@dataclass(frozen=True)
class SealStampStyle(BaseStampStyle):
    """pyHanko stamp style for :class:`SealStamp`; the text comes in ``seal_text``."""

    border_width: int = 1
    border_color: tuple[float, float, float] | None = STAMP_COLOUR
    background: None = None

    def create_stamp(
        self, writer: BasePdfFileWriter, box: BoxConstraints, text_params: dict[str, Any]
    ) -> SealStamp:
        return SealStamp(writer, self, box, str(text_params["seal_text"]))


def stamp_text(signer_name: str | None, sealed_at: datetime, lang: str) -> str:
    """The stamp's words in ``lang`` (Swedish or English); without a signer, a document
    the agency issues itself (a register extract) and seals."""
    _ = translations(lang).gettext
    if signer_name is None:
        return _("Utfärdad och förseglad av Statens tjänstepensionsverk, %(time)s") % {
            "time": sealed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        }
    return _(
        "Elektroniskt underskriven av %(signer)s med BankID och förseglad av Statens "
        "tjänstepensionsverk, %(time)s"
    ) % {
        "signer": " ".join(signer_name.split()) or "?",
        "time": sealed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def paper_stamp_text(sealed_at: datetime, lang: str) -> str:
    """The stamp's words on a posted form's scanned pages, in ``lang``."""
    _ = translations(lang).gettext
    return _(
        "Inkommen på papper, inskannad och förseglad av Statens tjänstepensionsverk, %(time)s"
    ) % {"time": sealed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")}
