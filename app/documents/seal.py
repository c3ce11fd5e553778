"""The agency's seal on a signed form: evidence attached, PAdES B-T, a visible stamp.

:func:`seal_pdf` appends ONE incremental update to the rendered PDF/A-3 form holding

* each evidence file (the BankID signature XML, its OCSP response, …) as a PDF/A-3
  associated file: an embedded file stream with its MIME type as ``/Subtype`` and
  ``/Params`` (size, checksum, modification date), a file specification with
  ``/AFRelationship /Supplement``, listed in the ``/EmbeddedFiles`` name tree and in the
  catalogue's ``/AF`` array;
* a PAdES baseline B-T signature (``ETSI.CAdES.detached``, SHA-256) by the agency's seal
  certificate with an RFC 3161 signature timestamp, in the signature field
  :data:`FIELD_NAME`, whose widget shows a stamp on the last page
  (:data:`STAMP_PLACEMENT`, beside the page's footer, clear of the QR code).

The original bytes are kept as they are (an incremental update), so the rendered
PDF/A-3 stays what it was: the document stays PDF 1.7 (:class:`_PdfA3Signer`), pyHanko
updates the XMP's modification date and producer, the information dictionary's producer
is made to agree (:func:`_align_producer`), and the stamp's text is set in an embedded
cut of DejaVu Sans, as PDF/A requires of every font.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fontTools import subset, ttLib
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import constants
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from app.documents.pki import AGENCY, SealMaterial
from app.documents.render import translations

FIELD_NAME = "SPV-sigill"
"""The signature field that holds the agency's seal."""

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

RESERVATION_MARGIN = 256
"""Bytes reserved for the CMS signature beyond the largest seen (or, at first, beyond a
dummy signature made with the same certificates and TSA). Every reserved byte is two hex
digits that each validation parses one by one in Python, so the room is kept tight; a
signature that does not fit is made again with :data:`FALLBACK_RESERVATION`."""

FALLBACK_RESERVATION = 16 * 1024
"""Room for any seal: a real TSA's token with its chain rarely takes more than 8 KiB."""


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


@dataclass(frozen=True)
class Evidence:
    """A file attached to the sealed PDF as evidence of the signing."""

    name: str
    """The file's name in the PDF, e.g. ``bankid-signature.xml`` (unique per PDF)."""
    content: bytes
    """The file's bytes, exactly as received."""
    mime_type: str
    """Its MIME type, e.g. ``application/xml`` or ``application/ocsp-response``."""
    description: str
    """What it is, in a sentence (shown by PDF readers beside the attachment)."""


_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


# --- the stamp ----------------------------------------------------------------------
#
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


def _font_resource(writer: BasePdfFileWriter) -> generic.IndirectObject:
    """The stamp font's objects, added to ``writer``: a simple TrueType font."""
    font = stamp_font()
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


def stamp_text(signer_name: str, sealed_at: datetime, lang: str) -> str:
    """The stamp's words in ``lang`` (Swedish or English)."""
    _ = translations(lang).gettext
    return _(
        "Elektroniskt underskriven av %(signer)s med BankID och förseglad av Statens "
        "tjänstepensionsverk, %(time)s"
    ) % {
        "signer": " ".join(signer_name.split()) or "?",
        "time": sealed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- evidence -----------------------------------------------------------------------


def _embed_evidence(
    writer: IncrementalPdfFileWriter, evidence: list[Evidence], now: datetime
) -> None:
    """Attach the evidence files as PDF/A-3 associated files (``/AF``, ``/Supplement``).

    Done by hand rather than with :func:`pyhanko.pdf_utils.embed.embed_file`, which marks
    the document PDF 2.0 when it writes ``/AF`` (PDF/A-3 is PDF 1.7) and appends to the
    name tree without keeping it sorted."""
    names = [e.name for e in evidence]
    if len(set(names)) != len(names):
        raise ValueError("evidence file names must be unique")
    root = writer.root
    if "/Names" in root:
        names_dict = root["/Names"]
    else:
        names_dict = generic.DictionaryObject()
        root["/Names"] = writer.add_object(names_dict)
    if "/EmbeddedFiles" in names_dict:
        tree = names_dict["/EmbeddedFiles"]
        if "/Kids" in tree:
            raise ValueError("the PDF's embedded file name tree is not flat")
    else:
        tree = generic.DictionaryObject()
        names_dict["/EmbeddedFiles"] = writer.add_object(tree)
        writer.update_container(names_dict)
    pairs: list[tuple[str, generic.PdfObject]] = []
    old = tree.get("/Names", generic.ArrayObject())
    for i in range(0, len(old) - 1, 2):
        pairs.append((str(old[i]), old.raw_get(i + 1)))
    af = root["/AF"] if "/AF" in root else generic.ArrayObject()
    params = EmbeddedFileParams(embed_size=True, embed_checksum=True, modification_date=now)
    for item in evidence:
        if not _MIME.fullmatch(item.mime_type):
            raise ValueError(f"not a MIME type: {item.mime_type!r}")
        stream = EmbeddedFileObject.from_file_data(
            writer, data=item.content, params=params, mime_type=item.mime_type
        )
        spec = FileSpec(
            file_spec_string=item.name,
            file_name=item.name,
            embedded_data=stream,
            description=item.description,
            af_relationship=generic.pdf_name("/Supplement"),
        )
        spec_ref = writer.add_object(spec.as_pdf_object())
        pairs.append((item.name, spec_ref))
        af.append(spec_ref)
    pairs.sort(key=lambda pair: pair[0])
    tree["/Names"] = generic.ArrayObject(
        obj for name, ref in pairs for obj in (generic.pdf_string(name), ref)
    )
    writer.update_container(tree)
    root["/AF"] = af
    writer.update_root()


# --- sealing ------------------------------------------------------------------------


class _PdfA3Signer(signers.PdfSigner):
    """pyHanko's signer, keeping the document PDF 1.7 as PDF/A-3 requires.

    pyHanko marks a document signed with ECDSA as PDF 2.0 (the ISO/TS 32002 extension);
    PAdES (ETSI EN 319 142-1) allows ECDSA in PDF 1.7, so only the ESIC extension that
    PAdES asks for is declared."""

    def register_extensions(self, pdf_out: BasePdfFileWriter, *, md_algorithm: str) -> None:
        pdf_out.ensure_output_version(version=(1, 7))
        if pdf_out.output_version < (2, 0):
            pdf_out.register_extension(constants.ESIC_EXTENSION_1)


def _align_producer(writer: IncrementalPdfFileWriter) -> None:
    """Make the information dictionary's ``/Producer`` what pyHanko writes into the XMP.

    pyHanko appends itself to the former (``WeasyPrint 70.0; pyHanko 0.38.0``) but sets
    ``pdf:Producer`` to itself alone; PDF/A wants the two to agree."""
    try:
        info_ref = writer.trailer.raw_get("/Info")
    except KeyError:
        return
    if isinstance(info_ref, generic.IndirectObject):
        info = info_ref.get_object()
        info["/Producer"] = generic.TextStringObject(VENDOR)
        writer.mark_update(info_ref)


def _pdf_signer(material: SealMaterial) -> signers.PdfSigner:
    return _PdfA3Signer(
        signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            name=AGENCY,
        ),
        signer=material.signer,
        timestamper=material.timestamper,
        stamp_style=SealStampStyle(),
        new_field_spec=fields.SigFieldSpec(FIELD_NAME, on_page=-1, box=STAMP_PLACEMENT.box()),
    )


_largest_signature: dict[int, int] = {}
"""The largest CMS signature seen per seal material (by ``id``), in bytes."""


def _calibrate(material: SealMaterial) -> int:
    """The size of a signature like the real ones: a dummy digest signed and timestamped
    (pyHanko's own estimate does the same; an HTTP TSA is asked once per process)."""
    cms = asyncio.run(
        material.signer.async_sign(
            bytes(32), "sha256", dry_run=True, use_pades=True, timestamper=material.timestamper
        )
    )
    return len(cms.dump())


def _signature_size(sealed: bytes, appended_from: int) -> int | None:
    """The DER length of the signature in the update appended at ``appended_from``."""
    at = sealed.find(b"/Contents <", appended_from)
    if at < 0:
        return None
    header = sealed[at + 11 : at + 19].upper()
    try:
        if header[:4] == b"3082":
            return 4 + int(header[4:8], 16)
        if header[:4] == b"3081":
            return 3 + int(header[4:6], 16)
    except ValueError:
        pass
    return None


def _seal_once(
    pdf: bytes,
    material: SealMaterial,
    evidence: list[Evidence],
    text: str,
    now: datetime,
    reserve: int,
) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    _embed_evidence(writer, evidence, now)
    _align_producer(writer)
    out = _pdf_signer(material).sign_pdf(
        writer,
        bytes_reserved=2 * reserve,  # pyHanko counts hex digits
        appearance_text_params={"seal_text": text},
    )
    return out.getvalue()


def seal_pdf(
    pdf: bytes,
    *,
    material: SealMaterial,
    evidence: list[Evidence],
    signer_name: str,
    lang: str,
) -> bytes:
    """The PDF with the evidence attached and the agency's seal (PAdES B-T) over all of it.

    ``signer_name`` is who signed with BankID; ``lang`` (``sv`` or ``en``) is the stamp's
    language. Raises pyHanko's errors if the PDF cannot be read or the TSA fails.
    """
    now = datetime.now(UTC)
    text = stamp_text(signer_name, now, lang)
    key = id(material)
    largest = _largest_signature.get(key)
    if largest is None:
        largest = _largest_signature[key] = _calibrate(material)
    try:
        sealed = _seal_once(pdf, material, evidence, text, now, largest + RESERVATION_MARGIN)
    except SigningError:
        sealed = _seal_once(pdf, material, evidence, text, now, FALLBACK_RESERVATION)
    size = _signature_size(sealed, len(pdf))
    if size is not None and size > largest:
        _largest_signature[key] = size
    return sealed
