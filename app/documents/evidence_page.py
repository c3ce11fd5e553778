"""The evidence page: a page a person can read, appended to a document before its seal.

Who signed and how, the SHA-256 of exactly the bytes that were signed, the errand's events
up to sealing and the seal's own details, as headings and label/value tables
(:class:`EvidencePage`). The machine-readable evidence is attached to the same document
(:class:`~app.documents.seal.Evidence`); this page is its reading copy.

No second WeasyPrint layout: the page is set like a letter (:mod:`app.documents.letter_pdf`:
DejaVu Sans subset once per process, a greedy line breaker, the forms' margins and sizes)
and written straight into the incremental update that :func:`~app.documents.seal.seal_pdf`
signs, as the document's last page: its fonts embedded with Unicode mappings, its text in
the document's tag structure (a ``Sect`` of H1, H2, P, Table/TR/TH/TD under the document's
top element, the rules and the footer artifacts), so a PDF/A-3a stays PDF/A-3a. The seal's
visible stamp, drawn in the bottom margin of this page, is tagged too
(:func:`tag_widget`: a ``Form`` element holding the widget annotation).

A character the subset fonts lack loses its diacritics or becomes ``?`` (the exact text is
in the attached files), a word wider than its column is broken, and what does not fit on
one page goes on over the next (a long event log), each page numbered in its footer.

The cost is a few milliseconds: the fonts are subset once per process, the layout is
arithmetic, and the objects go into the incremental update the seal writes anyway.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from app.documents.letter_pdf import (
    BODY,
    CELL_PAD_X,
    H1,
    H2,
    LABEL_W,
    MM,
    PAGE_H,
    PAGE_W,
    WIDTH,
    Block,
    Font,
    LetterMeta,
    Unsupported,
    _compressed,
    _Element,
    _layout,
    _Letter,
    font,
)


@dataclass(frozen=True)
class EvidenceSection:
    """A heading and its label/value rows."""

    heading: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EvidencePage:
    """What the evidence page says, in the document's language."""

    lang: str
    agency: str
    """The letterhead: the agency's name."""
    meta: tuple[str, ...]
    """The letterhead's right-hand lines (the reference, the date)."""
    heading: str
    lead: str
    sections: tuple[EvidenceSection, ...]
    footer: str
    """The footer of each page, with ``%(page)s`` and ``%(pages)s``."""


TABLE = {"size": 8.5, "pad": 0.6 * MM}
"""The evidence page's tables: a size smaller than a letter's, closer rows."""


# --- text the fonts can set -----------------------------------------------------------


def settable(text: str, f: Font) -> str:
    """``text`` with every character ``f`` lacks replaced: by its letter without
    diacritics when that is in the font (Ș → S), else by ``?``; white space folded."""
    out = []
    for ch in " ".join(text.split()):
        if ch in f.glyphs:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c in f.glyphs)
        out.append(base or "?")
    return "".join(out)


def breakable(text: str, f: Font, size: float, width: float) -> str:
    """``text`` with every word wider than ``width`` cut into pieces that fit (a hash, a
    serial number, a long address), so that the line breaker can set it."""
    words = []
    for word in text.split(" "):
        while f.width(word, size) > width:
            cut = len(word) - 1
            while cut > 1 and f.width(word[:cut], size) > width:
                cut -= 1
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    return " ".join(words)


def grouped(hex_text: str, size: int = 8) -> str:
    """A long hexadecimal string in groups of ``size`` (easier to read and to compare)."""
    return " ".join(hex_text[i : i + size] for i in range(0, len(hex_text), size))


def _row(label: str, value: str) -> tuple[str, str]:
    regular, bold = font("regular"), font("bold")
    size = TABLE["size"]
    label = breakable(settable(label, regular), regular, size, LABEL_W - 2 * CELL_PAD_X)
    value = breakable(settable(value, bold), bold, size, WIDTH - LABEL_W - 2 * CELL_PAD_X)
    return label, value


def _head(page: EvidencePage) -> list[Block]:
    regular, bold = font("regular"), font("bold")
    return [
        Block("agency", [settable(page.agency, bold)]),
        Block("meta", [settable(line, regular) for line in page.meta]),
        Block("h1", [breakable(settable(page.heading, bold), bold, H1, WIDTH)]),
        Block("p", [breakable(settable(page.lead, regular), regular, BODY, WIDTH)]),
    ]


def _section(heading: str, rows: list[tuple[str, str]]) -> list[Block]:
    bold = font("bold")
    return [
        Block("h2", [breakable(settable(heading, bold), bold, H2, WIDTH)]),
        Block("table", rows=rows),
    ]


def _meta(page: EvidencePage, number: int = 1, pages: int = 1) -> LetterMeta:
    footer = settable(page.footer % {"page": number, "pages": pages}, font("regular"))
    return LetterMeta(page.lang, page.heading, page.agency, page.heading, footer)


def _fits(blocks: list[Block], meta: LetterMeta) -> bool:
    try:
        _layout(blocks, meta, **TABLE)
    except Unsupported as exc:
        if str(exc) != "longer than a page":
            raise
        return False
    return True


def lay_out(page: EvidencePage) -> list[_Letter]:
    """The page set on A4, on as many pages as it takes: a section that does not fit
    goes on with its remaining rows on the next page (under its heading again).
    :class:`Unsupported` when a single row is taller than a page."""
    meta = _meta(page)
    pages: list[list[Block]] = []
    current = _head(page)
    for section in page.sections:
        rows = [_row(label, value) for label, value in section.rows]
        while rows:
            # The most rows that fit on this page (at least one, else a new page).
            low, high = 0, len(rows)
            while low < high:
                middle = (low + high + 1) // 2
                if _fits(current + _section(section.heading, rows[:middle]), meta):
                    low = middle
                else:
                    high = middle - 1
            if low == 0:
                if not current:
                    raise Unsupported("a row taller than a page")
                pages.append(current)
                current = []
                continue
            current = current + _section(section.heading, rows[:low])
            rows = rows[low:]
            if rows:
                pages.append(current)
                current = []
    pages.append(current)
    return [
        _layout(blocks, _meta(page, number, len(pages)), **TABLE)
        for number, blocks in enumerate(pages, start=1)
    ]


# --- into the PDF -------------------------------------------------------------------


def _name(value: str) -> generic.NameObject:
    return pdf_name("/" + value)


def _font_object(writer: IncrementalPdfFileWriter, f: Font) -> generic.IndirectObject:
    """``f`` as a Type 0 font (Identity-H) over a CIDFontType2, its program embedded."""
    program = generic.StreamObject(
        {_name("Filter"): _name("FlateDecode"), _name("Length1"): generic.NumberObject(f.length)},
        encoded_data=f.program,
    )
    descriptor = generic.DictionaryObject(
        {
            _name("Type"): _name("FontDescriptor"),
            _name("FontName"): _name(f.name),
            _name("Flags"): generic.NumberObject(32),
            _name("FontBBox"): generic.ArrayObject(generic.NumberObject(v) for v in f.bbox),
            _name("ItalicAngle"): generic.NumberObject(0),
            _name("Ascent"): generic.NumberObject(f.ascent),
            _name("Descent"): generic.NumberObject(f.descent),
            _name("CapHeight"): generic.NumberObject(f.cap_height),
            _name("StemV"): generic.NumberObject(80),
            _name("FontFile2"): writer.add_object(program),
        }
    )
    widths = generic.ArrayObject(
        [
            generic.NumberObject(0),
            generic.ArrayObject(generic.NumberObject(f.widths[g]) for g in range(len(f.widths))),
        ]
    )
    descendant = generic.DictionaryObject(
        {
            _name("Type"): _name("Font"),
            _name("Subtype"): _name("CIDFontType2"),
            _name("BaseFont"): _name(f.name),
            _name("CIDSystemInfo"): generic.DictionaryObject(
                {
                    _name("Registry"): generic.pdf_string("Adobe"),
                    _name("Ordering"): generic.pdf_string("Identity"),
                    _name("Supplement"): generic.NumberObject(0),
                }
            ),
            _name("FontDescriptor"): writer.add_object(descriptor),
            _name("W"): widths,
            _name("CIDToGIDMap"): _name("Identity"),
        }
    )
    to_unicode = generic.StreamObject(
        {_name("Filter"): _name("FlateDecode")}, encoded_data=_compressed(f.to_unicode)
    )
    return writer.add_object(
        generic.DictionaryObject(
            {
                _name("Type"): _name("Font"),
                _name("Subtype"): _name("Type0"),
                _name("BaseFont"): _name(f.name),
                _name("Encoding"): _name("Identity-H"),
                _name("DescendantFonts"): generic.ArrayObject([writer.add_object(descendant)]),
                _name("ToUnicode"): writer.add_object(to_unicode),
            }
        )
    )


@dataclass
class AddedPage:
    """The evidence page's last page as added to the document (for :func:`tag_widget`)."""

    page: generic.IndirectObject
    section: generic.IndirectObject
    """Its ``Sect`` structure element."""


def _structure(
    writer: IncrementalPdfFileWriter,
) -> tuple[generic.DictionaryObject, generic.ArrayObject]:
    """The document's structure tree root and its parent tree's flat ``/Nums`` array."""
    root = writer.root
    if "/StructTreeRoot" not in root or not root["/MarkInfo"].get("/Marked"):
        raise ValueError("the document is not tagged")
    tree = root["/StructTreeRoot"]
    parents = tree["/ParentTree"]
    if "/Kids" in parents or "/Nums" not in parents:
        raise ValueError("the document's parent tree is not flat")
    return tree, parents["/Nums"]


def _top_element(tree: generic.DictionaryObject) -> generic.IndirectObject:
    """The structure tree's top element (WeasyPrint's ``Document``), where the page's
    section goes, as a reference."""
    kids = tree.raw_get("/K")
    if isinstance(kids, generic.IndirectObject) and isinstance(
        kids.get_object(), generic.ArrayObject
    ):
        kids = kids.get_object()
    if isinstance(kids, generic.ArrayObject):
        if len(kids) != 1:
            raise ValueError("the structure tree has no single top element")
        kids = kids.raw_get(0)
    if not isinstance(kids, generic.IndirectObject):
        raise ValueError("the structure tree's top element is not an object")
    return kids


def _append_kid(
    writer: IncrementalPdfFileWriter,
    parent_ref: generic.IndirectObject,
    kid: generic.IndirectObject,
) -> None:
    parent = parent_ref.get_object()
    kids = parent.get("/K")
    if isinstance(kids, generic.ArrayObject):
        kids.append(kid)
    else:
        parent[_name("K")] = generic.ArrayObject([*([kids] if kids is not None else []), kid])
    writer.update_container(parent)


def _add_page(
    writer: IncrementalPdfFileWriter,
    letter: _Letter,
    fonts: generic.DictionaryObject,
    key: int,
    top_ref: generic.IndirectObject,
) -> AddedPage:
    """One page of the evidence as the document's last, its ``Sect`` under ``top_ref``."""
    pages_ref = writer.root.raw_get("/Pages")
    pages = pages_ref.get_object()
    content = generic.StreamObject(stream_data="\n".join(letter.page.ops).encode("ascii"))
    content.compress()
    page_ref = writer.add_object(
        generic.DictionaryObject(
            {
                _name("Type"): _name("Page"),
                _name("Parent"): pages_ref,
                _name("MediaBox"): generic.ArrayObject(
                    generic.FloatObject(round(v, 3)) for v in (0, 0, PAGE_W, PAGE_H)
                ),
                _name("Contents"): writer.add_object(content),
                _name("Resources"): generic.DictionaryObject({_name("Font"): fonts}),
                _name("StructParents"): generic.NumberObject(key),
                _name("Tabs"): _name("S"),
            }
        )
    )
    pages["/Kids"].append(page_ref)
    pages["/Count"] = generic.NumberObject(int(pages["/Count"]) + 1)
    writer.update_container(pages)

    refs: dict[int, generic.IndirectObject] = {}

    def add(element: _Element, parent: generic.IndirectObject) -> generic.IndirectObject:
        node = generic.DictionaryObject(
            {
                _name("Type"): _name("StructElem"),
                _name("S"): _name(element.role),
                _name("P"): parent,
                _name("Pg"): page_ref,
            }
        )
        if element.attributes:
            owner = "Table" if "Scope" in element.attributes else "List"
            attributes = {_name("O"): _name(owner)}
            attributes.update({_name(k): _name(v) for k, v in element.attributes.items()})
            node[_name("A")] = generic.DictionaryObject(attributes)
        ref = writer.add_object(node)
        refs[id(element)] = ref
        node[_name("K")] = generic.ArrayObject(
            generic.NumberObject(kid) if isinstance(kid, int) else add(kid, ref)
            for kid in element.kids
        )
        return ref

    section = letter.document
    section.role = "Sect"
    section_ref = add(section, top_ref)
    _append_kid(writer, top_ref, section_ref)
    tree, nums = _structure(writer)
    nums.append(generic.NumberObject(key))
    nums.append(generic.ArrayObject(refs[id(owner)] for owner in letter.page.owners))
    writer.update_container(tree["/ParentTree"])
    return AddedPage(page_ref, section_ref)


def _next_key(nums: generic.ArrayObject) -> int:
    return max((int(nums[i]) for i in range(0, len(nums), 2)), default=-1) + 1


def append_evidence_page(writer: IncrementalPdfFileWriter, page: EvidencePage) -> AddedPage:
    """Add ``page`` as the document's last page (or pages), in its tag structure; returns
    where its last page is."""
    letters = lay_out(page)
    tree, nums = _structure(writer)
    top_ref = _top_element(tree)
    fonts = generic.DictionaryObject(
        {
            _name("F1"): _font_object(writer, font("regular")),
            _name("F2"): _font_object(writer, font("bold")),
        }
    )
    key = _next_key(nums)
    added = [_add_page(writer, letter, fonts, key + i, top_ref) for i, letter in enumerate(letters)]
    return added[-1]


def tag_widget(
    writer: IncrementalPdfFileWriter,
    widget: generic.IndirectObject,
    description: str,
    added: AddedPage | None = None,
) -> None:
    """Put the annotation ``widget`` (the seal's stamp) into the tag structure: a ``Form``
    element holding it by an object reference, with ``description`` as its alternate text
    (and the field's ``/TU``), in the evidence page's section (``added``), else under the
    document's top element. An untagged document is left as it is."""
    try:
        tree, nums = _structure(writer)
    except ValueError:
        return
    parent_ref = added.section if added is not None else _top_element(tree)
    annotation = widget.get_object()
    page_ref = annotation.raw_get("/P")
    key = _next_key(nums)
    form_ref = writer.add_object(
        generic.DictionaryObject(
            {
                _name("Type"): _name("StructElem"),
                _name("S"): _name("Form"),
                _name("P"): parent_ref,
                _name("Pg"): page_ref,
                _name("Alt"): generic.TextStringObject(description),
                _name("K"): generic.DictionaryObject(
                    {_name("Type"): _name("OBJR"), _name("Obj"): widget, _name("Pg"): page_ref}
                ),
            }
        )
    )
    _append_kid(writer, parent_ref, form_ref)
    annotation[_name("StructParent")] = generic.NumberObject(key)
    annotation[_name("TU")] = generic.TextStringObject(description)
    annotation[_name("Contents")] = generic.TextStringObject(description)
    writer.update_container(annotation)
    nums.append(generic.NumberObject(key))
    nums.append(form_ref)
    writer.update_container(tree["/ParentTree"])
