"""Is this PDF sealed by the agency, unchanged since, and timestamped? And its evidence.

:func:`validate_sealed_pdf` accepts a PDF only when its last signature (the seal)

1. is cryptographically intact (the signed bytes hash to what was signed),
2. covers the entire file (nothing added after it, not even a valid incremental update or
   a countersignature: the seal is the agency's own signature, whatever comes after it),
3. is a valid signature by a certificate that chains to one of the given trust roots
   (pyHanko's :func:`~pyhanko.sign.validation.validate_pdf_signature` with an explicit
   :class:`~pyhanko_certvalidator.ValidationContext`; no network access),
4. is made by the agency's seal certificate (:class:`~app.documents.pki.SealIdentity`),
   not merely by any certificate under those roots,
5. carries an RFC 3161 signature timestamp that is intact, valid and trusted (unless
   ``require_timestamp=False``), no earlier than the signing time and within its TSA
   certificate's validity,
6. leaves the unused room of its ``/Contents`` zeros (nothing hidden beside the seal).

Anything else gets ``accepted=False`` and one of the reasons of :class:`Rejection`;
malformed input never raises.
"""

from __future__ import annotations

import enum
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import EmbeddedPdfSignature, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from app.documents.pki import SealIdentity

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=60)
"""How far the TSA's clock may be behind the sealer's: a timestamp more than this before
the signing time the seal states is refused."""


class Rejection(enum.StrEnum):
    """Why a sealed PDF is not accepted (the value is the reason in plain English)."""

    NOT_A_PDF = "the file is truncated or not a PDF"
    NO_SEAL = "no seal found"
    CHANGED = "the document was changed after it was sealed"
    NOT_WHOLE_FILE = "the seal does not cover the whole file"
    INVALID_SIGNATURE = "the seal's signature is not valid"
    UNTRUSTED = "the seal's certificate is not trusted"
    NO_TIMESTAMP = "the timestamp is missing or invalid"
    UNREADABLE_SEAL = "the seal cannot be read"
    NOT_AGENCY_SEAL = "the seal is not the agency's: another certificate signed it"
    TIMESTAMP_BEFORE_SIGNING = "the timestamp is earlier than the signing time"
    TIMESTAMP_OUTSIDE_TSA_VALIDITY = "the timestamp is outside its TSA certificate's validity"
    PADDING_NOT_ZERO = "the seal's unused space is not empty (data hidden beside the seal)"


ACCEPTED = "the seal is intact, trusted, covers the whole file and has a valid timestamp"


@dataclass(frozen=True)
class SealReport:
    """The outcome of :func:`validate_sealed_pdf`."""

    accepted: bool
    """Whether the seal is intact, trusted, covers the whole file and is timestamped."""
    reason: str
    """Why not, in plain English (a :class:`Rejection`), or :data:`ACCEPTED`."""
    rejection: Rejection | None = None
    """The reason as a value to compare with; ``None`` when accepted."""
    signer: str | None = None
    """Who sealed it: the seal certificate's subject (common name, organisation)."""
    signed_dt: datetime | None = None
    """When the sealer said it sealed (the signature dictionary's ``/M``)."""
    timestamp_dt: datetime | None = None
    """The time in the RFC 3161 timestamp token: when the seal existed at the latest."""
    evidence_names: list[str] = field(default_factory=list)
    """Names of the files attached to the PDF (see :func:`extract_evidence`)."""
    evidence: dict[str, bytes] | None = None
    """The attached files by name, read with the seal (what :func:`extract_evidence` gives,
    without reading the PDF again); ``None`` when they could not be read."""


def _rejected(rejection: Rejection, **details: object) -> SealReport:
    return SealReport(False, rejection.value, rejection, **details)  # type: ignore[arg-type]


class EvidenceError(ValueError):
    """The PDF's attachments cannot be read."""


# --- attachments --------------------------------------------------------------------

_MAX_TREE_DEPTH = 16


def _name_tree_leaves(
    node: generic.PdfObject, depth: int = 0
) -> Iterator[tuple[str, generic.PdfObject]]:
    """``(name, value)`` of every leaf of a PDF name tree (flat or with ``/Kids``)."""
    node = node.get_object()
    if depth > _MAX_TREE_DEPTH or not isinstance(node, generic.DictionaryObject):
        raise EvidenceError("malformed embedded file name tree")
    names = node.get("/Names")
    if names is not None:
        names = names.get_object()
        for i in range(0, len(names) - 1, 2):
            yield str(names[i].get_object()), names.raw_get(i + 1)
    for kid in node.get("/Kids", ()):
        yield from _name_tree_leaves(kid, depth + 1)


def _embedded_files(reader: PdfFileReader) -> Iterator[tuple[str, generic.DictionaryObject]]:
    root = reader.root
    if "/Names" not in root:
        return
    names = root["/Names"]
    if "/EmbeddedFiles" not in names:
        return
    for name, spec in _name_tree_leaves(names.raw_get("/EmbeddedFiles")):
        spec = spec.get_object()
        if not isinstance(spec, generic.DictionaryObject):
            raise EvidenceError(f"the attachment {name!r} is malformed")
        yield name, spec


def _file_data(name: str, spec: generic.DictionaryObject) -> bytes:
    try:
        ef = spec["/EF"]
        stream = ef["/UF"] if "/UF" in ef else ef["/F"]
    except KeyError:
        raise EvidenceError(f"the attachment {name!r} has no embedded file") from None
    if not isinstance(stream, generic.StreamObject):
        raise EvidenceError(f"the attachment {name!r} is malformed")
    return stream.data


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(io.BytesIO(pdf), strict=False)


def extract_evidence(pdf: bytes) -> dict[str, bytes]:
    """The files attached to the PDF, by name (empty when there are none).

    Raises :class:`EvidenceError` when the PDF or its attachments cannot be read.
    """
    try:
        reader = _reader(pdf)
        return {name: _file_data(name, spec) for name, spec in _embedded_files(reader)}
    except EvidenceError:
        raise
    except Exception as exc:  # a parser meeting malformed input raises anything
        raise EvidenceError(f"the PDF cannot be read: {exc}") from exc


# --- the seal -----------------------------------------------------------------------


def _describe_subject(cert: x509.Certificate) -> str:
    subject = cert.subject.native
    parts = [subject.get("common_name"), subject.get("organization_name")]
    names = [str(p) for p in parts if p and str(p) not in ("", "None")]
    if len(names) == 2 and names[1] in names[0]:
        names = names[:1]
    return ", ".join(names) or cert.subject.human_friendly


def _covered_to(byte_range: object) -> int | None:
    """The end of the signed byte range, or ``None`` when it is malformed."""
    try:
        values = [int(v) for v in byte_range]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(values) != 4 or min(values) < 0:
        return None
    return values[2] + values[3]


def _digest_matches(seal: EmbeddedPdfSignature) -> bool | None:
    """Whether the signed bytes still hash to the seal's message digest (``None``: unknown)."""
    try:
        for attr in seal.signer_info["signed_attrs"]:
            if attr["type"].native == "message_digest":
                return bool(seal.compute_digest() == attr["values"][0].native)
    except Exception:
        log.debug("cannot compare the digest", exc_info=True)
    return None


def _der_length(data: bytes) -> int | None:
    """The length of the DER ``SEQUENCE`` at the start of ``data`` (``None``: not one)."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    if data[1] < 0x80:
        return 2 + data[1]
    size = data[1] & 0x7F
    if not 0 < size <= 4 or len(data) < 2 + size:
        return None
    return 2 + size + int.from_bytes(data[2 : 2 + size], "big")


def _padding_is_zeros(seal: EmbeddedPdfSignature) -> bool:
    """Whether every byte of ``/Contents`` after the CMS signature is zero. The signature
    does not cover ``/Contents``: its unused room could carry anything unnoticed."""
    contents = bytes(seal.pkcs7_content)
    length = _der_length(contents)
    return length is not None and length <= len(contents) and not any(contents[length:])


def _is_agency_seal(signature: EmbeddedPdfSignature, identity: SealIdentity) -> bool:
    try:
        return identity.matches(signature.signer_cert)
    except Exception:
        log.debug("unreadable signer certificate", exc_info=True)
        return False


def _validation_context(trust_roots: Iterable[x509.Certificate]) -> ValidationContext:
    return ValidationContext(trust_roots=list(trust_roots), allow_fetching=False)


def _timing_rejection(status: PdfSignatureStatus) -> Rejection | None:
    """Whether the timestamp's time contradicts the signing time or its TSA certificate."""
    timestamp = status.timestamp_validity
    if timestamp is None or not timestamp.intact:
        return None
    signed = status.signer_reported_dt
    if signed is not None and timestamp.timestamp < signed - CLOCK_SKEW:
        return Rejection.TIMESTAMP_BEFORE_SIGNING
    tsa = timestamp.signing_cert
    if not tsa.not_valid_before <= timestamp.timestamp <= tsa.not_valid_after:
        return Rejection.TIMESTAMP_OUTSIDE_TSA_VALIDITY
    return None


def _judge(
    status: PdfSignatureStatus,
    seal: EmbeddedPdfSignature,
    identity: SealIdentity,
    require_timestamp: bool,
    details: dict[str, object],
) -> SealReport:
    if not status.intact:
        return _rejected(Rejection.CHANGED, **details)
    if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        if seal.reader.xrefs.total_revisions > seal.signed_revision + 1:
            return _rejected(Rejection.CHANGED, **details)  # a later incremental update
        return _rejected(Rejection.NOT_WHOLE_FILE, **details)  # bytes after the seal
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return _rejected(Rejection.NOT_WHOLE_FILE, **details)
    if not status.valid:
        return _rejected(Rejection.INVALID_SIGNATURE, **details)
    if not status.trusted:
        return _rejected(Rejection.UNTRUSTED, **details)
    if not _is_agency_seal(seal, identity):
        return _rejected(Rejection.NOT_AGENCY_SEAL, **details)
    timing = _timing_rejection(status)
    if timing is not None:
        return _rejected(timing, **details)
    timestamp = status.timestamp_validity
    timestamp_ok = (
        timestamp is not None and timestamp.intact and timestamp.valid and timestamp.trusted
    )
    if timestamp is not None and timestamp_ok:
        details["timestamp_dt"] = timestamp.timestamp
    elif require_timestamp:
        return _rejected(Rejection.NO_TIMESTAMP, **details)
    return SealReport(True, ACCEPTED, None, **details)  # type: ignore[arg-type]


def validate_sealed_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[x509.Certificate],
    seal_identity: SealIdentity,
    require_timestamp: bool = True,
) -> SealReport:
    """Whether ``pdf`` carries the agency's intact, trusted, timestamped seal over all of it.

    The seal is the last signature by the certificate ``seal_identity`` names (the last
    signature of all when none is): a signature after it is a change after sealing.

    Never raises for malformed input: the report says what is wrong.
    """
    if not isinstance(pdf, bytes | bytearray) or b"%PDF-" not in pdf[:1024]:
        return _rejected(Rejection.NOT_A_PDF)
    pdf = bytes(pdf)
    try:
        reader = _reader(pdf)
        signatures = reader.embedded_regular_signatures
    except Exception:  # a parser meeting malformed input raises anything
        log.debug("unreadable PDF", exc_info=True)
        return _rejected(Rejection.NOT_A_PDF)
    details: dict[str, object] = {}
    try:
        files = list(_embedded_files(reader))
        details["evidence_names"] = [name for name, _ in files]
        details["evidence"] = {name: _file_data(name, spec) for name, spec in files}
    except Exception:
        log.debug("unreadable attachments", exc_info=True)
    if not signatures:
        # A file cut short often still reads as its earlier revisions, without the seal.
        ends_with_eof = pdf.rstrip(b"\x00\t\n\x0c\r ").endswith(b"%%EOF")
        return _rejected(Rejection.NO_SEAL if ends_with_eof else Rejection.NOT_A_PDF, **details)
    agency = [s for s in signatures if _is_agency_seal(s, seal_identity)]
    seal = (agency or signatures)[-1]
    end = _covered_to(seal.byte_range)
    if end is None:
        return _rejected(Rejection.UNREADABLE_SEAL, **details)
    if end > len(pdf):
        return _rejected(Rejection.NOT_A_PDF, **details)
    try:
        details["signer"] = _describe_subject(seal.signer_cert)
        details["signed_dt"] = seal.self_reported_timestamp
    except Exception:
        log.debug("unreadable seal certificate", exc_info=True)
        return _rejected(Rejection.UNREADABLE_SEAL, **details)
    if not _padding_is_zeros(seal):
        return _rejected(Rejection.PADDING_NOT_ZERO, **details)
    context = _validation_context(trust_roots)
    try:
        status = validate_pdf_signature(
            seal, signer_validation_context=context, ts_validation_context=context
        )
    except Exception:
        log.debug("seal validation failed", exc_info=True)
        if _digest_matches(seal) is False:
            return _rejected(Rejection.CHANGED, **details)
        return _rejected(Rejection.UNREADABLE_SEAL, **details)
    return _judge(status, seal, seal_identity, require_timestamp, details)
