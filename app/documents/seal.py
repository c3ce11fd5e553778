"""The agency's seal on a signed form: evidence attached, PAdES B-LTA, a visible stamp.

:func:`seal_pdf` appends to the rendered PDF/A-3 form one incremental update holding

* the evidence page (:mod:`app.documents.evidence_page`), when given: the document's last
  page, in its tag structure;
* each evidence file (the BankID signature XML, its OCSP response, …) as a PDF/A-3
  associated file: an embedded file stream with its MIME type as ``/Subtype`` and
  ``/Params`` (size, checksum, modification date), a file specification with
  ``/AFRelationship /Supplement``, listed in the ``/EmbeddedFiles`` name tree and in the
  catalogue's ``/AF`` array;
* a PAdES baseline B-T signature (``ETSI.CAdES.detached``, SHA-256) by the agency's seal
  certificate with an RFC 3161 signature timestamp, in the signature field
  :data:`FIELD_NAME`, whose widget shows the stamp of :mod:`app.documents.stamp` on the
  last page (the evidence page) and is tagged: a ``Form`` element holding the widget,
  its words as the alternate text (PDF/A-3a: every visible item tagged);

then PAdES B-LTA's long-term updates (pyHanko's ``embed_validation_info`` and
``use_pades_lta``): an update adding to the document security store (DSS) the
certificates and revocation data (OCSP responses, CRLs) of the seal's chain and of its
timestamp's chain, fetched from the responders and CRL distribution points the
certificates name (:func:`fetching_validation_context`), with an RFC 3161 document
timestamp over all of it, and one more adding the document timestamp's own revocation
data. :mod:`app.documents.validate` accepts exactly these updates after the seal.

The original bytes are kept as they are (an incremental update), so the rendered
PDF/A-3 stays what it was: the document stays PDF 1.7 (:class:`_PdfA3Signer`), pyHanko
updates the XMP's modification date and producer, the information dictionary's producer
is made to agree (:func:`_align_producer`).
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import VENDOR
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import constants
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathError, ValidationError

from app.documents.evidence_page import EvidencePage, append_evidence_page, tag_widget
from app.documents.pki import AGENCY, SealMaterial
from app.documents.stamp import STAMP_PLACEMENT, SealStampStyle, stamp_text

FIELD_NAME = "SPV-sigill"
"""The signature field that holds the agency's seal."""

RESERVATION_MARGIN = 256
"""Bytes reserved for the CMS signature beyond the largest seen (or, at first, beyond a
dummy signature made with the same certificates and TSA). Every reserved byte is two hex
digits that each validation parses one by one in Python, so the room is kept tight; a
signature that does not fit is made again with :data:`FALLBACK_RESERVATION`."""

FALLBACK_RESERVATION = 16 * 1024
"""Room for any seal: a real TSA's token with its chain rarely takes more than 8 KiB."""


class SealValidationError(Exception):
    """The seal's certificate or its TSA's could not be validated when sealing: not
    trusted, revoked, or its revocation data could not be fetched (the seal is not made:
    a seal is long-term or not at all)."""


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


def fetching_validation_context(
    material: SealMaterial, moment: datetime | None = None
) -> ValidationContext:
    """What sealing checks the seal's and the TSA's certificates with, fetching their
    revocation data from the OCSP responders and CRLs the certificates name (and failing
    when it cannot: a seal is long-term or not made). ``moment``: now (the tests move it)."""
    return ValidationContext(
        trust_roots=list(material.trust_roots),
        other_certs=list(material.chain),
        allow_fetching=True,
        revocation_mode="hard-fail",
        moment=moment,
    )


REVOCATION_REUSE_S = 300.0
"""How long one thread seals with the same validation context, and so with the OCSP
responses and CRLs it fetched: a busy worker fetches them once in that time, not for every
seal (a response is valid for far longer; a revocation is seen within it)."""

_sealing_contexts: dict[tuple[int, int], tuple[SealMaterial, ValidationContext, float]] = {}
"""Per (material, thread): the context, its material (kept, so that its ``id`` is not
reused) and when it was made. Per thread, because pyHanko's fetchers are bound to the
event loop of the call that uses them."""


def _sealing_context(material: SealMaterial) -> ValidationContext:
    """A fetching validation context for ``material``, reused for ``REVOCATION_REUSE_S``."""
    now = time.monotonic()
    key = (id(material), threading.get_ident())
    held = _sealing_contexts.get(key)
    if held is not None and held[0] is material and now - held[2] < REVOCATION_REUSE_S:
        return held[1]
    for stale in [
        k for k, (_, _, made) in _sealing_contexts.items() if now - made >= REVOCATION_REUSE_S
    ]:
        del _sealing_contexts[stale]
    context = fetching_validation_context(material)
    _sealing_contexts[key] = (material, context, now)
    return context


def _forget_sealing_context(material: SealMaterial) -> None:
    _sealing_contexts.pop((id(material), threading.get_ident()), None)


def _pdf_signer(material: SealMaterial) -> signers.PdfSigner:
    """The signer filling the seal's field (:func:`_add_seal_field` made it)."""
    return _PdfA3Signer(
        signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            name=AGENCY,
            embed_validation_info=True,
            use_pades_lta=True,
            validation_context=_sealing_context(material),
        ),
        signer=material.signer,
        timestamper=material.timestamper,
        stamp_style=SealStampStyle(),
    )


def _add_seal_field(writer: IncrementalPdfFileWriter) -> generic.IndirectObject:
    """The seal's empty signature field, its widget at :data:`STAMP_PLACEMENT` on the last
    page (made here rather than by the signer, so that it can be tagged first)."""
    fields.append_signature_field(
        writer, fields.SigFieldSpec(FIELD_NAME, on_page=-1, box=STAMP_PLACEMENT.box())
    )
    for ref in writer.root["/AcroForm"]["/Fields"]:
        if str(ref.get_object().get("/T")) == FIELD_NAME:
            return ref
    raise AssertionError("the seal's field was not added")  # pragma: no cover


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
    page: EvidencePage | None,
) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    added = append_evidence_page(writer, page) if page is not None else None
    _embed_evidence(writer, evidence, now)
    _align_producer(writer)
    tag_widget(writer, _add_seal_field(writer), text, added)
    try:
        out = _pdf_signer(material).sign_pdf(
            writer,
            bytes_reserved=2 * reserve,  # pyHanko counts hex digits
            appearance_text_params={"seal_text": text},
        )
    except (PathError, ValidationError) as exc:
        _forget_sealing_context(material)
        raise SealValidationError(str(exc)) from exc
    except SigningError as exc:
        _forget_sealing_context(material)  # a failed fetch is not kept for the next seal
        if isinstance(exc.__cause__, PathError | ValidationError):
            raise SealValidationError(f"{exc}: {exc.__cause__}") from exc
        raise
    return out.getvalue()


def seal_pdf(
    pdf: bytes,
    *,
    material: SealMaterial,
    evidence: list[Evidence],
    signer_name: str | None,
    lang: str,
    page: EvidencePage | None = None,
    stamp: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The PDF with the evidence attached and the agency's seal (PAdES B-LTA) over all
    of it.

    ``signer_name`` is who signed with BankID (the stamp names them; None: a document the
    agency issues and seals itself, signed by nobody else); ``lang`` (``sv`` or ``en``) is
    the stamp's language; ``page``, the evidence page, is added as the last page before
    the seal (the stamp is then drawn on it); ``stamp`` replaces the stamp's words (a
    posted form's: :func:`~app.documents.stamp.paper_stamp_text`); ``now`` is the sealing
    time shown (by the stamp and the evidence page; the signature's own is a moment later).
    Raises pyHanko's errors if the PDF cannot be read or the TSA fails, and
    :class:`SealValidationError` if the seal's or the TSA's certificate cannot be
    validated with fresh revocation data.
    """
    now = now or datetime.now(UTC)
    text = stamp if stamp is not None else stamp_text(signer_name, now, lang)
    key = id(material)
    largest = _largest_signature.get(key)
    if largest is None:
        largest = _largest_signature[key] = _calibrate(material)
    try:
        sealed = _seal_once(pdf, material, evidence, text, now, largest + RESERVATION_MARGIN, page)
    except SigningError:
        sealed = _seal_once(pdf, material, evidence, text, now, FALLBACK_RESERVATION, page)
    size = _signature_size(sealed, len(pdf))
    if size is not None and size > largest:
        _largest_signature[key] = size
    return sealed


def retimestamp_pdf(pdf: bytes, *, material: SealMaterial, now: datetime | None = None) -> bytes:
    """The sealed PDF with one more long-term update: the revocation data of its newest
    document timestamp's chain added to the DSS and a new document timestamp over all of
    it (what keeps a PAdES B-LTA archive valid before that timestamp's TSA certificate
    ends). Raises :class:`SealValidationError` when the TSA's certificate cannot be
    validated with fresh revocation data (as of ``now``: the real time by default)."""
    out = io.BytesIO(pdf)
    try:
        signers.PdfTimeStamper(material.timestamper).update_archival_timestamp_chain(
            PdfFileReader(out, strict=False), fetching_validation_context(material, now)
        )
    except (PathError, ValidationError) as exc:
        raise SealValidationError(str(exc)) from exc
    return out.getvalue()
