"""One-page letters (the receipt, the decision letter) written straight to tagged PDF/A-3a.

A letter is the HTML its Jinja template renders (the same template, wording and
translations as WeasyPrint gets), read back into a few kinds of blocks – the letterhead,
headings, paragraphs, label/value tables, numbered lists – and set on one A4 page with
the forms' page margins, fonts and sizes (``pdf_templates/forms.css``). No second
WeasyPrint layout: the fonts (DejaVu Sans and its bold) are subset once per process to
the Latin characters a letter uses, and a letter is a greedy line breaker over their
advance widths plus a PDF written with pydyf, in a few milliseconds.

The PDF keeps what WeasyPrint's gives: PDF/A-3 level A (XMP identification, the sRGB
output intent, embedded fonts with Unicode mappings) and tagged PDF (a structure tree:
Document, H1, H2, P, Table/TR/TH/TD, L/LI/Lbl/LBody; the rules and the footer as
artifacts; the document's language and title). Whatever this writer does not set – a
tag it does not know, a character outside the subset, a word wider than its column, a
letter longer than a page – raises :class:`Unsupported`, and the caller lays the letter
out with WeasyPrint instead.
"""

from __future__ import annotations

import functools
import io
import random
import string
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pydyf
import weasyprint
from fontTools import subset
from fontTools.ttLib import TTFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf"}
ICC_PROFILE = Path(weasyprint.__file__).parent / "pdf" / "sRGB2014.icc"

CHARACTERS = (
    "".join(chr(c) for c in range(0x20, 0x7F))
    + "".join(chr(c) for c in range(0xA0, 0x180))
    + "\u2010\u2011\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u2009\u202f\u20ac"
)
"""What the subset fonts hold: ASCII, Latin-1 and Latin Extended-A, typographic
punctuation. A letter with any other character is laid out by WeasyPrint."""

MM = 72 / 25.4
PAGE_W, PAGE_H = 210 * MM, 297 * MM
TOP, RIGHT, BOTTOM, LEFT = 24 * MM, 18 * MM, 34 * MM, 18 * MM
WIDTH = PAGE_W - LEFT - RIGHT
BLUE, GREY, RULE, BLACK = (0, 0.188, 0.369), (0.2, 0.2, 0.2), (0.702, 0.757, 0.812), (0, 0, 0)
BODY, LEAD, H1, H2, SMALL, AGENCY = 9.5, 10.5, 17.0, 11.5, 8.0, 12.0
LABEL_W, CELL_PAD_X, CELL_PAD_Y = 55 * MM, 2 * MM, 1.4 * MM
AGENCY_MARGIN = 62 * MM
"""The letterhead's right-hand part, kept for the reference and date."""
LIST_INDENT = 30.0  # WeasyPrint's default padding of a list: 40 px


class Unsupported(Exception):
    """The letter needs WeasyPrint's layout (see the module docstring)."""


# --- fonts, subset once per process --------------------------------------------------


@dataclass(frozen=True)
class Font:
    name: str
    """The subset's PostScript name with its tag (``ABCDEF+DejaVuSans``)."""
    program: bytes
    """The subset TrueType program, Flate-compressed."""
    length: int
    """The uncompressed program's length (``/Length1``)."""
    glyphs: dict[str, int]
    """Character → glyph id in the subset."""
    widths: dict[int, int]
    """Glyph id → advance in thousandths of an em."""
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int
    to_unicode: bytes

    def width(self, text: str, size: float) -> float:
        return sum(self.widths[self.glyphs[c]] for c in text) * size / 1000

    def encode(self, text: str) -> str:
        try:
            return "".join(f"{self.glyphs[c]:04x}" for c in text)
        except KeyError as missing:
            raise Unsupported(f"no glyph for {missing}") from None


def _to_unicode(glyphs: dict[str, int]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <ffff> endcodespacerange",
    ]
    pairs = sorted((gid, char) for char, gid in glyphs.items())
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{gid:04x}> <{ord(char):04x}>" for gid, char in chunk]
        lines.append("endbfchar")
    lines += ["endcmap CMapName currentdict /CMap defineresource pop end end"]
    return "\n".join(lines).encode("ascii")


@functools.cache
def font(weight: str) -> Font:
    """DejaVu Sans (``regular`` or ``bold``) subset to :data:`CHARACTERS`, once."""
    try:
        source = TTFont(FONT_DIR / FONT_FILES[weight])
    except OSError as exc:  # the fonts not where Debian's fonts-dejavu-core puts them
        raise Unsupported(f"no font file: {exc}") from exc
    wanted = [c for c in CHARACTERS if ord(c) in source.getBestCmap()]
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = []
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in wanted])
    subsetter.subset(source)
    buffer = io.BytesIO()
    source.save(buffer)
    program = buffer.getvalue()
    font = TTFont(io.BytesIO(program))
    order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    cmap = font.getBestCmap()
    glyphs = {c: order[cmap[ord(c)]] for c in wanted}
    scale = 1000 / font["head"].unitsPerEm
    widths = {
        order[name]: round(advance * scale) for name, (advance, _) in font["hmtx"].metrics.items()
    }
    head, hhea = font["head"], font["hhea"]
    tag = "".join(random.Random(weight).choices(string.ascii_uppercase, k=6))
    postscript = font["name"].getDebugName(6) or "DejaVuSans"
    return Font(
        name=f"{tag}+{postscript}",
        program=zlib.compress(program, 6),
        length=len(program),
        glyphs=glyphs,
        widths=widths,
        bbox=(
            round(head.xMin * scale),
            round(head.yMin * scale),
            round(head.xMax * scale),
            round(head.yMax * scale),
        ),
        ascent=round(hhea.ascent * scale),
        descent=round(hhea.descent * scale),
        cap_height=round(getattr(font["OS/2"], "sCapHeight", 0) * scale) or 729,
        to_unicode=_to_unicode(glyphs),
    )


# --- the letter's HTML, read back into blocks -----------------------------------------


@dataclass
class Block:
    kind: str
    """``agency``, ``meta``, ``h1``, ``h2``, ``p``, ``lead``, ``table`` or ``ol``."""
    lines: list[str] = field(default_factory=list)
    """Its text (``meta``: one entry a line; ``ol``: one an item)."""
    rows: list[tuple[str, str]] = field(default_factory=list)
    """``table``: the label (TH) and value (TD) of each row."""


_IGNORED = {"html", "head", "meta", "title", "style", "body", "tbody"}


class _Reader(HTMLParser):
    """The body of a letter template's HTML as :class:`Block` s (the tags the letters use)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.text: list[str] = []
        self.skip = 0
        self.block: Block | None = None
        self.cell: str | None = None
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("title", "style"):
            self.skip += 1
        elif tag == "p" and self.block is None:
            kind = "p"
            if "letterhead__agency" in classes:
                kind = "agency"
            elif "letterhead__meta" in classes:
                kind = "meta"
            elif "lead" in classes:
                kind = "lead"
            elif classes:
                raise Unsupported(f"p.{'.'.join(classes)}")
            self._open(kind)
        elif tag in ("h1", "h2", "ol") and self.block is None:
            self._open(tag)
        elif tag == "table" and self.block is None and classes == ["fields"]:
            self._open("table")
        elif tag == "br" and self.block is not None and self.block.kind == "meta":
            self._flush_line()
        elif tag == "li" and self.block is not None and self.block.kind == "ol":
            self.text = []
        elif tag == "tr" and self.block is not None and self.block.kind == "table":
            self.cells = []
        elif tag in ("th", "td") and self.block is not None and self.block.kind == "table":
            self.text = []
        elif tag in _IGNORED or (tag == "div" and "letterhead" in classes):
            pass
        elif tag == "bdi" and self.block is not None:
            # Typed text isolated beside an id: the writer sets Latin script only, left to
            # right, so it stays where it is; a right-to-left character has no glyph here
            # and sends the letter to WeasyPrint, which isolates it.
            pass
        else:
            raise Unsupported(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "style"):
            self.skip -= 1
        elif self.block is None:
            return
        elif tag == "li":
            self._flush_line()
        elif tag in ("th", "td"):
            self.cells.append(_collapse("".join(self.text)))
            self.text = []
        elif tag == "tr":
            if len(self.cells) != 2:
                raise Unsupported("a table row that is not a label and a value")
            self.block.rows.append((self.cells[0], self.cells[1]))
        elif tag == ("table" if self.block.kind == "table" else _tag_of(self.block.kind)):
            if self.block.kind not in ("ol", "table"):
                self._flush_line()
            self.blocks.append(self.block)
            self.block = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.block is None:
            if data.strip():
                raise Unsupported("text outside a block")
            return
        self.text.append(data)

    def _open(self, kind: str) -> None:
        self.block = Block(kind)
        self.text = []

    def _flush_line(self) -> None:
        assert self.block is not None
        line = _collapse("".join(self.text))
        if line:
            self.block.lines.append(line)
        self.text = []


def _tag_of(kind: str) -> str:
    return "p" if kind in ("agency", "meta", "lead") else kind


def _collapse(text: str) -> str:
    return " ".join(text.split())


def read_blocks(html: str) -> list[Block]:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    if reader.block is not None:
        raise Unsupported("an unclosed block")
    return reader.blocks


# --- layout and PDF -------------------------------------------------------------------


def _wrap(text: str, f: Font, size: float, width: float) -> list[str]:
    """Greedy line breaking at spaces; a word wider than ``width`` is :class:`Unsupported`."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if f.width(candidate, size) <= width:
            line = candidate
            continue
        if not line or f.width(word, size) > width:
            raise Unsupported("a word wider than its column")
        lines.append(line)
        line = word
    if line:
        lines.append(line)
    return lines


def _check_glyphs(text: str, f: Font) -> None:
    for c in text:
        if c not in f.glyphs:
            raise Unsupported(f"no glyph for {c!r}")


@dataclass
class _Element:
    role: str
    kids: list[_Element | int] = field(default_factory=list)
    """Child elements and marked-content ids on the page."""
    attributes: dict[str, str] = field(default_factory=dict)


Color = tuple[float, float, float]


class _Page:
    """The page's content stream and the structure tree being built with it."""

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.owners: list[_Element] = []
        """The structure element of each marked-content id (the id is the index)."""

    def text(
        self,
        element: _Element,
        lines: list[tuple[float, float, str]],
        f: Font,
        size: float,
        color: Color,
    ) -> None:
        """Lines (x, baseline y, text) as one marked-content sequence of ``element``."""
        mcid = len(self.owners)
        self.owners.append(element)
        element.kids.append(mcid)
        ops = [f"/{element.role} <</MCID {mcid}>> BDC BT /{_resource(f)} {size:g} Tf"]
        ops.append("{:.3f} {:.3f} {:.3f} rg".format(*color))
        ops += [f"1 0 0 1 {x:.2f} {y:.2f} Tm <{f.encode(text)}> Tj" for x, y, text in lines]
        ops.append("ET EMC")
        self.ops.append("\n".join(ops))

    def footer(self, x: float, y: float, text: str, f: Font, size: float) -> None:
        self.ops.append(
            "/Artifact <</Type /Pagination /Subtype /Footer>> BDC BT "
            f"/{_resource(f)} {size:g} Tf 0 0 0 rg 1 0 0 1 {x:.2f} {y:.2f} Tm "
            f"<{f.encode(text)}> Tj ET EMC"
        )

    def rule(self, y: float, width: float, color: Color) -> None:
        """A horizontal rule across the text column, its top edge at ``y`` (an artifact)."""
        middle = y - width / 2
        self.ops.append(
            "/Artifact BMC {:.3f} {:.3f} {:.3f} RG ".format(*color)
            + f"{width:g} w {LEFT:.2f} {middle:.2f} m {LEFT + WIDTH:.2f} {middle:.2f} l S EMC"
        )


@dataclass(frozen=True)
class LetterMeta:
    """What a letter's document information says (as WeasyPrint takes it from the HTML)."""

    lang: str
    title: str
    author: str
    description: str
    footer: str


def _baseline(top: float, size: float, factor: float = 1.4) -> float:
    """The baseline of a line box whose top is ``top`` (CSS: half the leading above)."""
    regular = font("regular")
    ascent, descent = regular.ascent / 1000 * size, -regular.descent / 1000 * size
    return top - (size * factor - ascent - descent) / 2 - ascent


def _column(
    x: float, top: float, texts: list[str], size: float, factor: float = 1.4
) -> list[tuple[float, float, str]]:
    """Lines set one under the other from ``top``, left-aligned at ``x``."""
    return [(x, _baseline(top - i * size * factor, size, factor), t) for i, t in enumerate(texts)]


class _Letter:
    """The blocks set from the top of the page down (``y`` is the next box's top)."""

    def __init__(self, meta: LetterMeta) -> None:
        self.page = _Page()
        self.document = _Element("Document")
        self.y = PAGE_H - TOP
        self.after = 0.0
        """The previous block's bottom margin (collapsing with the next one's top)."""
        self.meta = meta

    def element(self, role: str, parent: _Element | None = None, **attributes: str) -> _Element:
        element = _Element(role, attributes=attributes)
        (parent or self.document).kids.append(element)
        return element

    def paragraph(
        self,
        role: str,
        text: str,
        f: Font,
        size: float,
        color: Color,
        *,
        factor: float = 1.4,
        width: float = WIDTH,
    ) -> None:
        _check_glyphs(text, f)
        lines = _wrap(text, f, size, width)
        self.page.text(
            self.element(role), _column(LEFT, self.y, lines, size, factor), f, size, color
        )
        self.y -= len(lines) * size * factor

    def letterhead(self, agency: Block, meta: Block | None) -> None:
        regular, bold = font("regular"), font("bold")
        top = self.y
        self.paragraph("P", " ".join(agency.lines), bold, AGENCY, BLUE, width=WIDTH - AGENCY_MARGIN)
        if meta is not None:  # right-aligned, its last line on the name's last line
            first_top = self.y + len(meta.lines) * SMALL * 1.4
            if first_top > top + 6 * MM:
                raise Unsupported("a letterhead taller than its place")
            placed = []
            for x, y, line in _column(LEFT, first_top, meta.lines, SMALL):
                _check_glyphs(line, regular)
                if regular.width(line, SMALL) > AGENCY_MARGIN:
                    raise Unsupported("a letterhead line wider than its place")
                placed.append((x + WIDTH - regular.width(line, SMALL), y, line))
            self.page.text(self.element("P"), placed, regular, SMALL, GREY)
        self.y -= 2 * MM
        self.page.rule(self.y, 1.5, BLUE)
        self.y -= 1.5
        self.after = 5 * MM

    def heading(self, level: int, text: str) -> None:
        if level == 1:
            self.y -= self.after
            self.paragraph("H1", text, font("bold"), H1, BLUE, factor=1.2)
            self.after = 3 * MM
            return
        self.y -= max(self.after, 6 * MM)
        self.paragraph("H2", text, font("bold"), H2, BLUE)
        self.y -= 1 * MM
        self.page.rule(self.y, 0.5, BLUE)
        self.y -= 0.5
        self.after = 2 * MM

    def text(self, text: str, size: float) -> None:
        self.y -= self.after
        self.paragraph("P", text, font("regular"), size, BLACK)
        self.after = 2 * MM

    def table(
        self, rows: list[tuple[str, str]], size: float = BODY, pad: float = CELL_PAD_Y
    ) -> None:
        """``table.fields``: a label (TH, a row's scope) and a value (TD, bold) a row; the
        evidence page sets its tables smaller (``size``, ``pad``: the cells' room above and
        below)."""
        regular, bold = font("regular"), font("bold")
        self.y -= self.after
        table = self.element("Table")
        for label, value in rows:
            row = self.element("TR", table)
            th, td = self.element("TH", row, Scope="Row"), self.element("TD", row)
            _check_glyphs(label, regular)
            _check_glyphs(value, bold)
            labels = _wrap(label, regular, size, LABEL_W - 2 * CELL_PAD_X)
            values = _wrap(value, bold, size, WIDTH - LABEL_W - 2 * CELL_PAD_X) if value else []
            top = self.y - pad
            self.page.text(th, _column(LEFT + CELL_PAD_X, top, labels, size), regular, size, GREY)
            if values:
                x = LEFT + LABEL_W + CELL_PAD_X
                self.page.text(td, _column(x, top, values, size), bold, size, BLACK)
            self.y -= max(len(labels), len(values), 1) * size * 1.4 + 2 * pad
            self.page.rule(self.y, 0.5, RULE)
            self.y -= 0.5
        self.after = 2 * MM

    def numbered_list(self, items: list[str]) -> None:
        regular = font("regular")
        self.y -= max(self.after, BODY)  # a list's margin: 1em
        listing = self.element("L", ListNumbering="Decimal")
        for number, item in enumerate(items, start=1):
            entry = self.element("LI", listing)
            label, body = self.element("Lbl", entry), self.element("LBody", entry)
            _check_glyphs(item, regular)
            lines = _wrap(item, regular, BODY, WIDTH - LIST_INDENT)
            marker = f"{number}."
            x = LEFT + LIST_INDENT - regular.width(marker + " ", BODY)
            self.page.text(label, _column(x, self.y, [marker], BODY), regular, BODY, BLACK)
            self.page.text(
                body, _column(LEFT + LIST_INDENT, self.y, lines, BODY), regular, BODY, BLACK
            )
            self.y -= len(lines) * BODY * 1.4
        self.after = BODY

    def footer(self) -> None:
        """The footer (the margin box at the bottom), an artifact as WeasyPrint makes it."""
        regular = font("regular")
        _check_glyphs(self.meta.footer, regular)
        if regular.width(self.meta.footer, SMALL) > WIDTH:
            raise Unsupported("a footer wider than the page")
        self.page.footer(LEFT, BOTTOM / 2 - SMALL / 3, self.meta.footer, regular, SMALL)


def _layout(blocks: list[Block], meta: LetterMeta, **table: float) -> _Letter:
    """The blocks set on one page (``table``: :meth:`_Letter.table`'s size and padding)."""
    letter = _Letter(meta)
    for block in blocks:
        if block.kind == "agency":
            letter.letterhead(block, next((b for b in blocks if b.kind == "meta"), None))
        elif block.kind in ("h1", "h2"):
            letter.heading(int(block.kind[1]), " ".join(block.lines))
        elif block.kind in ("p", "lead"):
            letter.text(" ".join(block.lines), LEAD if block.kind == "lead" else BODY)
        elif block.kind == "table":
            letter.table(block.rows, **table)
        elif block.kind == "ol":
            letter.numbered_list(block.lines)
        elif block.kind != "meta":  # pragma: no cover - the reader makes no other kinds
            raise Unsupported(block.kind)
        if letter.y < BOTTOM:
            raise Unsupported("longer than a page")
    if meta.footer:
        letter.footer()
    return letter


def _resource(f: Font) -> str:
    return "F2" if f is font("bold") else "F1"


def _pdf_date(dt: datetime) -> str:
    return dt.strftime("D:%Y%m%d%H%M%SZ")


def _xmp(meta: LetterMeta, created: datetime, producer: str) -> bytes:
    """The XMP packet: PDF/A-3a identification and what the document information says."""
    iso = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    about = 'rdf:Description rdf:about=""'
    alt = '<rdf:Alt><rdf:li xml:lang="x-default">{}</rdf:li></rdf:Alt>'
    lines = [
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        f'<{about} xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"'
        ' pdfaid:part="3" pdfaid:conformance="A"/>',
        f'<{about} xmlns:pdf="http://ns.adobe.com/pdf/1.3/" pdf:Producer="{escape(producer)}"/>',
        f'<{about} xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f' xmp:CreateDate="{iso}" xmp:ModifyDate="{iso}"/>',
        f'<{about} xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<dc:format>application/pdf</dc:format>",
        f"<dc:title>{alt.format(escape(meta.title))}</dc:title>",
        f"<dc:creator><rdf:Seq><rdf:li>{escape(meta.author)}</rdf:li></rdf:Seq></dc:creator>",
        f"<dc:description>{alt.format(escape(meta.description))}</dc:description>",
        "</rdf:Description>",
        "</rdf:RDF>",
        "</x:xmpmeta>",
        '<?xpacket end="r"?>',
    ]
    return "\n".join(lines).encode()


@functools.cache
def _icc() -> bytes:
    return ICC_PROFILE.read_bytes()


class _Raw(pydyf.Object):
    """A PDF object serialised once per process (a font's widths)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = data

    @property
    def data(self) -> bytes:
        return self._data


@functools.cache
def _widths(name: str) -> bytes:
    f = next(f for f in (font("regular"), font("bold")) if f.name == name)
    return b"[" + b" ".join(b"%d [%d]" % (gid, f.widths[gid]) for gid in sorted(f.widths)) + b"]"


@functools.cache
def _compressed(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def _font_objects(pdf: pydyf.PDF, f: Font) -> pydyf.Dictionary:
    program = pydyf.Stream([f.program], {"Filter": "/FlateDecode", "Length1": f.length})
    pdf.add_object(program)
    descriptor = pydyf.Dictionary(
        {
            "Type": "/FontDescriptor",
            "FontName": f"/{f.name}",
            "Flags": 32,
            "FontBBox": pydyf.Array(f.bbox),
            "ItalicAngle": 0,
            "Ascent": f.ascent,
            "Descent": f.descent,
            "CapHeight": f.cap_height,
            "StemV": 80,
            "FontFile2": program.reference,
        }
    )
    pdf.add_object(descriptor)
    widths = _Raw(_widths(f.name))
    cid_font = pydyf.Dictionary(
        {
            "Type": "/Font",
            "Subtype": "/CIDFontType2",
            "BaseFont": f"/{f.name}",
            "CIDSystemInfo": pydyf.Dictionary(
                {
                    "Registry": pydyf.String("Adobe"),
                    "Ordering": pydyf.String("Identity"),
                    "Supplement": 0,
                }
            ),
            "FontDescriptor": descriptor.reference,
            "W": widths,
            "CIDToGIDMap": "/Identity",
        }
    )
    pdf.add_object(cid_font)
    to_unicode = pydyf.Stream([_compressed(f.to_unicode)], {"Filter": "/FlateDecode"})
    pdf.add_object(to_unicode)
    type0 = pydyf.Dictionary(
        {
            "Type": "/Font",
            "Subtype": "/Type0",
            "BaseFont": f"/{f.name}",
            "Encoding": "/Identity-H",
            "DescendantFonts": pydyf.Array([cid_font.reference]),
            "ToUnicode": to_unicode.reference,
        }
    )
    pdf.add_object(type0)
    return type0


def write_letter(html: str, meta: LetterMeta, *, created: datetime | None = None) -> bytes:
    """The letter ``html`` (a letter template's rendering) as a one-page tagged PDF/A-3a;
    :class:`Unsupported` if it needs WeasyPrint."""
    letter = _layout(read_blocks(html), meta)
    page, document = letter.page, letter.document
    created = (created or datetime.now(UTC)).replace(microsecond=0)
    producer = f"Behörighet (pydyf {pydyf.VERSION})"
    pdf = pydyf.PDF()

    fonts = pydyf.Dictionary()
    for resource, weight in (("F1", "regular"), ("F2", "bold")):
        fonts[resource] = _font_objects(pdf, font(weight)).reference

    content = pydyf.Stream(["\n".join(page.ops).encode("ascii")], compress=True)
    pdf.add_object(content)
    pdf_page = pydyf.Dictionary(
        {
            "Type": "/Page",
            "Parent": pdf.pages.reference,
            "MediaBox": pydyf.Array([0, 0, round(PAGE_W, 3), round(PAGE_H, 3)]),
            "Contents": content.reference,
            "Resources": pydyf.Dictionary({"Font": fonts}),
            "StructParents": 0,
            "Tabs": "/S",
        }
    )
    pdf.add_page(pdf_page)

    tree_root = pydyf.Dictionary({"Type": "/StructTreeRoot"})
    pdf.add_object(tree_root)
    references: dict[int, pydyf.Dictionary] = {}

    def add(element: _Element, parent: pydyf.Dictionary) -> pydyf.Dictionary:
        node = pydyf.Dictionary(
            {
                "Type": "/StructElem",
                "S": f"/{element.role}",
                "P": parent.reference,
                "Pg": pdf_page.reference,
            }
        )
        if element.attributes:
            node["A"] = pydyf.Dictionary(
                {
                    "O": "/Table" if "Scope" in element.attributes else "/List",
                    **{k: f"/{v}" for k, v in element.attributes.items()},
                }
            )
        pdf.add_object(node)
        references[id(element)] = node
        kids = pydyf.Array()
        for kid in element.kids:
            kids.append(kid if isinstance(kid, int) else add(kid, node).reference)
        node["K"] = kids
        return node

    document_node = add(document, tree_root)
    parents = pydyf.Array([references[id(owner)].reference for owner in page.owners])
    pdf.add_object(parents)
    tree_root["K"] = pydyf.Array([document_node.reference])
    tree_root["ParentTree"] = pydyf.Dictionary({"Nums": pydyf.Array([0, parents.reference])})
    tree_root["ParentTreeNextKey"] = 1

    metadata = pydyf.Stream(
        [_xmp(meta, created, producer)], {"Type": "/Metadata", "Subtype": "/XML"}
    )
    pdf.add_object(metadata)
    icc = pydyf.Stream(
        [_compressed(_icc())], {"N": 3, "Alternate": "/DeviceRGB", "Filter": "/FlateDecode"}
    )
    pdf.add_object(icc)
    intent = pydyf.Dictionary(
        {
            "Type": "/OutputIntent",
            "S": "/GTS_PDFA1",
            "OutputConditionIdentifier": pydyf.String("sRGB IEC61966-2.1"),
            "Info": pydyf.String("sRGB IEC61966-2.1"),
            "DestOutputProfile": icc.reference,
        }
    )
    pdf.add_object(intent)
    pdf.catalog.update(
        {
            "MarkInfo": pydyf.Dictionary({"Marked": "true"}),
            "StructTreeRoot": tree_root.reference,
            "Lang": pydyf.String(meta.lang),
            "Metadata": metadata.reference,
            "OutputIntents": pydyf.Array([intent.reference]),
            "ViewerPreferences": pydyf.Dictionary({"DisplayDocTitle": "true"}),
        }
    )
    pdf.info.update(
        {
            "Title": pydyf.String(meta.title),
            "Author": pydyf.String(meta.author),
            "Subject": pydyf.String(meta.description),
            "Producer": pydyf.String(producer),
            "CreationDate": pydyf.String(_pdf_date(created)),
            "ModDate": pydyf.String(_pdf_date(created)),
        }
    )
    output = io.BytesIO()
    pdf.write(output, version=b"1.7", identifier=True)
    return output.getvalue()
