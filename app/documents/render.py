"""The PDFs SPV produces for an errand: the filled-in or blank form and the receipt.

Every PDF is tagged PDF/A-3a, rendered by WeasyPrint from ``pdf_templates/`` (Jinja,
Swedish msgids, translated with the catalogues in ``app/translations``).

Each page of a form carries its own QR code (:mod:`app.documents.qr`) at the fixed spot
:data:`~app.documents.qr.QR_PLACEMENT`, in the bottom-left page-margin box, selected
per page with ``@page :nth(k)``. Since a page's code says "page k of m", m must be
known before laying out. The templates break pages explicitly, so every form has a
known page count (:data:`NOMINAL_PAGES`, and after that the count last seen for the
same layout); the document is laid out once with that count and the actual count is
checked. Only if the content overflowed (say, a very long list of employer codes) is
it laid out a second time with the actual count. That second pass always agrees,
because margin boxes never change how the content flows into pages. In the common
case a form costs exactly one WeasyPrint layout and one PDF write.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from weasyprint import CSS, HTML, Document
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from app.core.i18n import long_date, swedish_time, translations
from app.core.ids import format_orgnr, format_personnummer
from app.core.text import isolate
from app.documents.letter_pdf import LetterMeta, Unsupported, write_letter
from app.documents.qr import (
    QR_PLACEMENT,
    FormKind,
    QrPayload,
    encode_payload,
    form_digest,
    qr_png,
)
from app.registrations.data import FormData, RegistrationData, RemovalData
from app.registrations.models import BLANK_DRAFTS, Channel, ErrandKind

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "pdf_templates"

TEMPLATE_VERSION = 1
"""The layout and wording of the forms; printed in every QR code. Raise it on any change
that matters to someone matching a scanned page against the form data."""

PDF_VARIANT = "pdf/a-3a"
"""PDF/A-3, conformance level A: archivable and tagged (logical structure, Unicode text)."""


NOMINAL_PAGES = {ErrandKind.REGISTRATION: 2, ErrandKind.REMOVAL: 2}
"""Pages of each form as the templates break them (``.page-break``)."""


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is used."""
    return message


_FORM_NAMES = {
    ErrandKind.REGISTRATION: N_("Anmälan – behörig beställare"),
    ErrandKind.REMOVAL: N_("Ta bort behörig beställare"),
}
_CHANNEL_NAMES = {
    Channel.E_SIGN: N_("E-underskrift med e-legitimation"),
    Channel.PAPER: N_("Post (blankett på papper)"),
}


@dataclass(frozen=True)
class CodeLine:
    """An employer code as printed on a form."""

    code: str
    name: str
    is_closed: bool = False


@dataclass(frozen=True)
class DocumentData:
    """What a form or receipt shows; built from an errand by the caller."""

    kind: ErrandKind
    reference: str | None
    """``BB-XXXX-XXXX``; ``None`` on a blank form."""
    errand_id: int | None
    """Goes into the QR codes; ``None`` on a blank form."""
    form: FormData | None
    """The errand's form (``None`` on a blank form)."""
    employer_codes: list[CodeLine]
    """Names and status of the employer's codes. A registration for chosen codes prints
    those of ``form.employer_codes``; one for all codes prints all given here."""
    created_dt: datetime | None
    channel: Channel | None = None
    """How the errand came in; shown on the receipt."""

    @property
    def is_blank(self) -> bool:
        return self.errand_id is None and self.form is None

    @property
    def digest(self) -> str:
        """What the QR codes say of the form data (:func:`form_digest`)."""
        return form_digest(self.form.to_json() if self.form else {})

    @property
    def shown(self) -> object:
        """The form for the templates; a blank form shows a draft with nothing filled in."""
        return self.form or BLANK_DRAFTS[self.kind]


# --- cached machinery ---------------------------------------------------------------


_COUNTER = re.compile(r"\x01(page|pages)\x01")
PAGE, PAGES = "\x01page\x01", "\x01pages\x01"
"""Stand-ins for the page counters in margin-box texts (see :func:`css_content`)."""


def _css_string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ").replace("<", "\\3c ")
    )
    return f'"{escaped}"'


def css_content(value: str) -> Markup:
    """A CSS ``content`` value for a text; :data:`PAGE`/:data:`PAGES` become counters."""
    text = value.unescape() if isinstance(value, Markup) else str(value)
    parts = _COUNTER.split(text)
    tokens = [
        f"counter({part})" if i % 2 else _css_string(part)
        for i, part in enumerate(parts)
        if i % 2 or part
    ]
    return Markup(" ".join(tokens) or '""')


def _pnr(value: object) -> str:
    text = str(value or "")
    return format_personnummer(text) if len(text) == 12 and text.isdigit() else text


def _when(value: object) -> str:
    """A JSON time (``2026-12-03T09:12:00Z``) as Swedish time, ``2026-12-03 10:12``."""
    if not value:
        return "–"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return swedish_time(moment).strftime("%Y-%m-%d %H:%M")


def _orgnr(value: object) -> str:
    text = str(value or "")
    return format_orgnr(text) if len(text) == 10 and text.isdigit() else text


@functools.cache
def environment(lang: str) -> Environment:
    """The Jinja environment for ``lang`` (one per language, so it is thread-safe)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(pnr=_pnr, orgnr=_orgnr, bdi=isolate, css_content=css_content, when=_when)
    return env


class _Weasy(threading.local):
    """WeasyPrint's font configuration, stylesheet and URL fetcher, once per thread."""

    def __init__(self) -> None:
        self.fonts = FontConfiguration()
        # Only data: URIs (the QR codes): a form never fetches anything.
        self.fetcher = URLFetcher(allowed_protocols=["data"])
        self.css = CSS(
            filename=str(TEMPLATES_DIR / "forms.css"),
            font_config=self.fonts,
            url_fetcher=self.fetcher,
        )


_weasy = _Weasy()

_page_counts: dict[tuple[object, ...], int] = {}
"""The page count last seen per layout (see the module docstring)."""


def _layout(html: str) -> Document:
    return HTML(string=html, base_url=str(TEMPLATES_DIR), url_fetcher=_weasy.fetcher).render(
        stylesheets=[_weasy.css], font_config=_weasy.fonts, pdf_variant=PDF_VARIANT
    )


def _write(document: Document) -> bytes:
    pdf = document.write_pdf(pdf_variant=PDF_VARIANT)
    assert pdf is not None
    return pdf


def _qr_image(payload: QrPayload, key: bytes) -> dict[str, str]:
    """The page's QR code: a PNG ``data:`` URI, and the resolution that prints it at the
    size of :data:`~app.documents.qr.QR_PLACEMENT`."""
    png, pixels = qr_png(encode_payload(payload, key))
    return {
        "uri": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "dpi": f"{pixels * 25.4 / QR_PLACEMENT.size_mm:.4f}",
    }


def _code_lines(data: DocumentData) -> list[CodeLine]:
    """The employer codes the form names, in the order the submitter gave them."""
    if not isinstance(data.form, RegistrationData):
        return []
    if data.form.all_codes:
        return data.employer_codes
    known = {line.code: line for line in data.employer_codes}
    return [known.get(code, CodeLine(code, "")) for code in data.form.employer_codes]


# --- public API ---------------------------------------------------------------------


def render_form_pdf(data: DocumentData, *, lang: str, key: bytes, for_print: bool) -> bytes:
    """The form as a PDF/A-3a, with page k's QR code saying "page k of m".

    ``for_print`` adds signature lines, the posting address and instructions; without it
    the form is the document to be signed electronically.
    """
    _ = translations(lang).gettext
    form_kind = FormKind.of(data.kind)
    digest = data.digest
    heading = _(_FORM_NAMES[data.kind])
    code_lines = _code_lines(data)
    form_code = f"{form_kind.value} v{TEMPLATE_VERSION}"
    if data.reference:
        title = f"{heading}, {data.reference}"
        footer = _("Referens %(ref)s · sida %(page)s av %(pages)s · blankett %(form)s") % {
            "ref": data.reference,
            "page": PAGE,
            "pages": PAGES,
            "form": form_code,
        }
    else:
        title = heading
        footer = _("Blankett %(form)s · sida %(page)s av %(pages)s") % {
            "form": form_code,
            "page": PAGE,
            "pages": PAGES,
        }
    context = {
        "lang": lang,
        "title": title,
        "heading": heading,
        "description": f"{_('Statens tjänstepensionsverk')} – {heading} ({form_code})",
        "form_code": form_code,
        "reference": data.reference,
        "created": long_date(data.created_dt, lang),
        "form": data.shown,
        "codes": code_lines,
        "blank": data.is_blank,
        "for_print": for_print,
        "footer": footer,
    }
    template = environment(lang).get_template(f"{data.kind.value}.html")

    def layout(pages: int) -> Document:
        codes = [
            _qr_image(QrPayload(form_kind, TEMPLATE_VERSION, data.errand_id, k, pages, digest), key)
            for k in range(1, pages + 1)
        ]
        return _layout(template.render(context, qr_codes=codes))

    layout_key = (
        data.kind,
        lang,
        for_print,
        data.is_blank,
        len(code_lines),
        isinstance(data.form, RemovalData) and data.form.replacement is not None,
    )
    pages = _page_counts.get(layout_key, NOMINAL_PAGES[data.kind])
    document = layout(pages)
    if len(document.pages) != pages:
        pages = len(document.pages)
        document = layout(pages)
        if len(document.pages) != pages:  # pragma: no cover - margin boxes never paginate
            raise RuntimeError("the form's page count changed between two layouts")
    if len(_page_counts) > 1000:
        _page_counts.clear()
    _page_counts[layout_key] = pages
    return _write(document)


def render_blank_form(kind: ErrandKind, *, lang: str, key: bytes) -> bytes:
    """The printable blank form, for those who cannot use the web form."""
    blank = DocumentData(kind, None, None, None, [], None)
    return render_form_pdf(blank, lang=lang, key=key, for_print=True)


def _letter(
    data: DocumentData, lang: str, template: str, heading: str, footer: str, **extra: Any
) -> bytes:
    """A one-page letter about an errand (receipt, decision): no QR codes, no form."""
    _ = translations(lang).gettext
    context = {
        "lang": lang,
        "title": f"{heading}, {data.reference}",
        "heading": heading,
        "description": f"{_('Statens tjänstepensionsverk')} – {heading} {data.reference}",
        "reference": data.reference,
        "kind_name": _(_FORM_NAMES[data.kind]),
        "channel_name": _(_CHANNEL_NAMES[data.channel]) if data.channel else "",
        "form": data.shown,
        "footer": footer,
        "qr_codes": [],
        **extra,
    }
    html = environment(lang).get_template(template).render(context)
    meta = LetterMeta(lang, context["title"], _("Statens tjänstepensionsverk"),
                      context["description"], footer)  # fmt: skip
    try:
        return write_letter(html, meta)
    except Unsupported:
        return _write(_layout(html))


def _date_and_time(dt: datetime, lang: str) -> str:
    local = swedish_time(dt)
    return translations(lang).gettext("%(date)s kl. %(time)s") % {
        "date": format_date(local.date(), format="long", locale=lang),
        "time": local.strftime("%H:%M"),
    }


def render_receipt(data: DocumentData, *, lang: str, received_dt: datetime) -> bytes:
    """The one-page receipt ("Kvittens") confirming that SPV received the errand."""
    if not data.reference:
        raise ValueError("a receipt needs the errand's reference")
    _ = translations(lang).gettext
    return _letter(
        data,
        lang,
        "receipt.html",
        _("Kvittens"),
        _("Kvittens för ärende %(ref)s") % {"ref": data.reference},
        received=_date_and_time(received_dt, lang),
    )


@dataclass(frozen=True)
class Decision:
    """What a decision letter says besides the errand itself."""

    approved: bool
    decided_dt: datetime
    caseworker: str
    reason: str = ""
    """Why the errand was rejected, in the reader's language (empty when approved)."""
    explanation: str = ""
    """The caseworker's own words to the submitter."""


def render_decision_letter(data: DocumentData, decision: Decision, *, lang: str) -> bytes:
    """The decision letter ("Beslut"): approved and put into effect, or rejected and why."""
    if not data.reference:
        raise ValueError("a decision letter needs the errand's reference")
    _ = translations(lang).gettext
    return _letter(
        data,
        lang,
        "decision.html",
        _("Beslut"),
        _("Beslut i ärende %(ref)s") % {"ref": data.reference},
        decision=decision,
        decided=long_date(decision.decided_dt, lang),
    )


def render_register_extract(extract: dict[str, Any], *, lang: str) -> bytes:
    """The register extract ("Registerutdrag") of :func:`app.privacy.extract.collect`, as a
    tagged PDF/A-3a laid out by WeasyPrint (it runs over as many pages as it needs)."""
    _ = translations(lang).gettext
    heading = _("Registerutdrag")
    reference = str(extract["reference"])
    footer = _("Registerutdrag %(ref)s · sida %(page)s av %(pages)s") % {
        "ref": reference,
        "page": PAGE,
        "pages": PAGES,
    }
    context = {
        **extract,
        "lang": lang,
        "title": f"{heading}, {reference}",
        "heading": heading,
        "description": f"{_('Statens tjänstepensionsverk')} – {heading} {reference}",
        "footer": footer,
        "qr_codes": [],
    }
    html = environment(lang).get_template("register_extract.html").render(context)
    return _write(_layout(html))
