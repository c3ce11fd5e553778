"""Is this PDF sealed by the agency, unchanged since, and timestamped? And its evidence.

:func:`validate_sealed_pdf` accepts a PDF only when its seal (the agency's last signature)

1. is cryptographically intact (the signed bytes hash to what was signed),
2. covers the entire file, or is followed only by the long-term updates of PAdES B-LTA:
   incremental updates adding revocation data to the document security store (DSS) and
   document timestamps, and nothing else (pyHanko's difference analysis at
   :attr:`~pyhanko.sign.diff_analysis.ModificationLevel.LTA_UPDATES`): any other
   incremental update, a countersignature, bytes appended are a change after sealing,
3. is a valid signature by a certificate that chains to one of the given trust roots
   (pyHanko's :func:`~pyhanko.sign.validation.validate_pdf_signature` with an explicit
   :class:`~pyhanko_certvalidator.ValidationContext` holding the DSS's certificates,
   OCSP responses and CRLs; no network access), and was not revoked,
4. is made by the agency's seal certificate (:class:`~app.documents.pki.SealIdentity`),
   not merely by any certificate under those roots,
5. carries an RFC 3161 signature timestamp that is intact, valid and trusted (unless
   ``require_timestamp=False``), no earlier than the signing time and within its TSA
   certificate's validity,
6. leaves the unused room of its ``/Contents`` zeros (nothing hidden beside the seal).

The seal is validated "as of" the time the document timestamps prove: the newest document
timestamp as of now (its TSA certificate must still be valid), each earlier one as of the
next, the seal and its signature timestamp as of the first document timestamp after it,
with the revocation data of the DSS. So a seal whose certificate has since expired or been
revoked still validates, as PAdES B-LTA intends; one whose certificate was revoked when it
was sealed does not. Without a document timestamp the seal is validated as of now.

The report names the level the seal reached (:class:`Level`): B-B (a signature), B-T (a
trusted signature timestamp), B-LT (the DSS holds the revocation data of the seal's chain
and of its timestamp's chain: they validate with it alone, none missing), B-LTA (and a
valid document timestamp over all of it).

Anything else gets ``accepted=False`` and one of the reasons of :class:`Rejection`;
malformed input never raises.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    EmbeddedPdfSignature,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
)
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
    REVOKED = "the seal's certificate was revoked when it was sealed"
    ARCHIVE_TIMESTAMP_INVALID = "a document timestamp after the seal is not valid"


class Level(enum.StrEnum):
    """The PAdES baseline level a seal reached (ETSI EN 319 142-1)."""

    B_B = "B-B"
    """A signature, no trusted timestamp."""
    B_T = "B-T"
    """And a trusted signature timestamp."""
    B_LT = "B-LT"
    """And the revocation data of the seal's chain and its timestamp's chain in the DSS."""
    B_LTA = "B-LTA"
    """And a valid document timestamp over all of it."""


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
    level: Level | None = None
    """The PAdES level the seal reached (``None`` when rejected)."""
    validated_at: datetime | None = None
    """The time the seal was validated as of: its first document timestamp's, else now."""
    archive_timestamp_dt: datetime | None = None
    """The newest document timestamp's time (``None`` without one)."""
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


@dataclass(frozen=True)
class _Revinfo:
    """The certificates, OCSP responses and CRLs a PDF's DSS holds."""

    certs: tuple[x509.Certificate, ...] = ()
    ocsps: tuple[object, ...] = ()
    crls: tuple[object, ...] = ()


def _read_dss(reader: PdfFileReader) -> _Revinfo:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:  # no DSS (or an unreadable one: nothing to use from it)
        return _Revinfo()
    return _Revinfo(
        certs=tuple(dss.load_certs()),
        ocsps=tuple(
            ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
            for ref in dss.ocsps
        ),
        crls=tuple(
            crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
            for ref in dss.crls
        ),
    )


def _validation_context(
    trust_roots: Iterable[x509.Certificate],
    revinfo: _Revinfo = _Revinfo(),
    moment: datetime | None = None,
    revocation_mode: str = "soft-fail",
) -> ValidationContext:
    return ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=list(revinfo.certs),
        ocsps=list(revinfo.ocsps),
        crls=list(revinfo.crls),
        moment=moment,
        allow_fetching=False,
        revocation_mode=revocation_mode,
        # Revocation data newer than the time validated as of counts (OCSP says "good" a
        # moment after the seal's timestamp; a revocation before it shows in it).
        retroactive_revinfo=True,
    )


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


LTA_UPDATES = ModificationLevel.LTA_UPDATES
"""The most a revision after the seal may change: revocation data and document timestamps."""


def _only_long_term_updates(status: PdfSignatureStatus | DocumentTimestampStatus) -> bool:
    """Whether whatever follows the signed revision adds revocation data and document
    timestamps only (pyHanko's difference analysis)."""
    level = status.modification_level
    return status.docmdp_ok is not False and level is not None and level <= LTA_UPDATES


def _ends_with_eof(reader: PdfFileReader) -> bool:
    """Whether the file ends with its last revision (an end-of-line after ``%%EOF`` at
    most): bytes appended after it are covered by no signature."""
    stream = reader.stream
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(max(0, size - 16))
    return stream.read().rstrip(b"\r\n").endswith(b"%%EOF")


def _coverage_rejection(
    status: PdfSignatureStatus | DocumentTimestampStatus,
    signature: EmbeddedPdfSignature,
    own_updates: bool,
) -> Rejection | None:
    """Whether the signature covers the file: all of it, or all but long-term updates
    (``own_updates``: the caller vouches that the revisions after it are this product's)."""
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return None
    if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        if signature.reader.xrefs.total_revisions <= signature.signed_revision + 1:
            return Rejection.NOT_WHOLE_FILE  # bytes after the last revision
        if not own_updates and not _only_long_term_updates(status):
            return Rejection.CHANGED
        return None if _ends_with_eof(signature.reader) else Rejection.NOT_WHOLE_FILE
    return Rejection.NOT_WHOLE_FILE


def _judge(
    status: PdfSignatureStatus,
    seal: EmbeddedPdfSignature,
    identity: SealIdentity,
    require_timestamp: bool,
    details: dict[str, object],
    own_updates: bool,
) -> Rejection | None:
    if not status.intact:
        return Rejection.CHANGED
    coverage = _coverage_rejection(status, seal, own_updates)
    if coverage is not None:
        return coverage
    if not status.valid:
        return Rejection.INVALID_SIGNATURE
    if status.revoked:
        return Rejection.REVOKED
    timing = _timing_rejection(status)
    if timing is not None:
        return timing
    if not status.trusted:
        return Rejection.UNTRUSTED
    if not _is_agency_seal(seal, identity):
        return Rejection.NOT_AGENCY_SEAL
    timestamp = status.timestamp_validity
    timestamp_ok = (
        timestamp is not None and timestamp.intact and timestamp.valid and timestamp.trusted
    )
    if timestamp is not None and timestamp_ok:
        details["timestamp_dt"] = timestamp.timestamp
    elif require_timestamp:
        return Rejection.NO_TIMESTAMP
    return None


def _validate_archive_timestamps(
    timestamps: list[EmbeddedPdfSignature],
    trust_roots: tuple[x509.Certificate, ...],
    revinfo: _Revinfo,
    now: datetime | None,
) -> tuple[Rejection | None, datetime | None, datetime | None]:
    """The document timestamps after the seal, newest first, each as of the next (the
    newest as of ``now``). The rejection if one fails, the oldest one's time and the
    newest one's."""
    moment = now
    newest: datetime | None = None
    for timestamp in reversed(timestamps):
        if not _padding_is_zeros(timestamp):
            return Rejection.PADDING_NOT_ZERO, None, None
        # The newest as of now, on its chain alone: the DSS's revocation data for its TSA
        # is stale by now, and fresh data is what re-timestamping fetches.
        context = _validation_context(trust_roots, revinfo if newest else _Revinfo(), moment)
        try:
            # No difference analysis here: the seal's covers every revision after it.
            status = validate_pdf_timestamp(timestamp, validation_context=context, skip_diff=True)
        except Exception:
            log.debug("document timestamp validation failed", exc_info=True)
            return Rejection.ARCHIVE_TIMESTAMP_INVALID, None, None
        if not status.intact:
            return Rejection.CHANGED, None, None
        if not (status.valid and status.trusted):
            return Rejection.ARCHIVE_TIMESTAMP_INVALID, None, None
        moment = status.timestamp
        newest = newest or moment
    return None, moment, newest


def _validate_seal(
    seal: EmbeddedPdfSignature,
    trust_roots: tuple[x509.Certificate, ...],
    revinfo: _Revinfo,
    moment: datetime | None,
    own_updates: bool,
) -> tuple[PdfSignatureStatus, bool]:
    """The seal's status as of ``moment``, and whether the DSS's revocation data alone
    validated its chain and its timestamp's (B-LT). With ``own_updates`` pyHanko's
    difference analysis of the revisions after the seal is not run."""
    strict = _validation_context(trust_roots, revinfo, moment, "hard-fail")
    status = validate_pdf_signature(
        seal,
        signer_validation_context=strict,
        ts_validation_context=strict,
        skip_diff=own_updates,
    )
    timestamp = status.timestamp_validity
    if status.trusted and timestamp is not None and timestamp.trusted:
        return status, True
    lenient = _validation_context(trust_roots, revinfo, moment)
    status = validate_pdf_signature(
        seal,
        signer_validation_context=lenient,
        ts_validation_context=lenient,
        skip_diff=own_updates,
    )
    return status, False


def validate_sealed_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[x509.Certificate],
    seal_identity: SealIdentity,
    require_timestamp: bool = True,
    now: datetime | None = None,
    sealed_sha256: str | None = None,
) -> SealReport:
    """Whether ``pdf`` carries the agency's intact, trusted, timestamped seal over all of it
    (but long-term updates).

    The seal is the last signature by the certificate ``seal_identity`` names (the last
    signature of all when none is): a signature after it is a change after sealing.
    ``now`` is the validation time (the real time by default; the tests move it).
    ``sealed_sha256`` is the SHA-256 this product recorded, under its audit key, for the
    file it sealed: when ``pdf`` still has exactly that hash, the revisions after the seal
    are the ones this product's sealing wrote (DSS and document timestamp), and pyHanko's
    difference analysis of them (two thirds of the validation's time) is not run again;
    everything else is checked as for any file. Any other file gets the full analysis.

    Never raises for malformed input: the report says what is wrong.
    """
    if not isinstance(pdf, bytes | bytearray) or b"%PDF-" not in pdf[:1024]:
        return _rejected(Rejection.NOT_A_PDF)
    pdf = bytes(pdf)
    roots = tuple(trust_roots)
    try:
        reader = _reader(pdf)
        signatures = reader.embedded_regular_signatures
        timestamps = reader.embedded_timestamp_signatures
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
    if any(s.signed_revision > seal.signed_revision for s in signatures):
        return _rejected(Rejection.CHANGED, **details)  # a countersignature after the seal
    revinfo = _read_dss(reader)
    archive = [t for t in timestamps if t.signed_revision > seal.signed_revision]
    rejection, moment, newest = _validate_archive_timestamps(archive, roots, revinfo, now)
    details["archive_timestamp_dt"] = newest
    own_updates = sealed_sha256 is not None and hmac.compare_digest(
        hashlib.sha256(pdf).hexdigest(), sealed_sha256
    )
    try:
        # When a document timestamp fails, the seal as of now may say more (its
        # certificate untrusted, its timestamp missing: a foreign seal).
        status, long_term = _validate_seal(
            seal, roots, revinfo, moment if rejection is None else now, own_updates
        )
    except Exception:
        log.debug("seal validation failed", exc_info=True)
        if _digest_matches(seal) is False:
            return _rejected(Rejection.CHANGED, **details)
        return _rejected(rejection or Rejection.UNREADABLE_SEAL, **details)
    seal_rejection = _judge(status, seal, seal_identity, require_timestamp, details, own_updates)
    if seal_rejection is not None or rejection is not None:
        return _rejected(seal_rejection or rejection, **details)  # type: ignore[arg-type]
    if "timestamp_dt" not in details:
        level = Level.B_B
    elif not long_term:
        level = Level.B_T
    else:
        level = Level.B_LTA if archive else Level.B_LT
    validated_at = moment or now or datetime.now(UTC)
    return SealReport(True, ACCEPTED, None, level=level, validated_at=validated_at, **details)  # type: ignore[arg-type]
