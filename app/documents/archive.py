"""Keeping sealed PDFs valid in the archive (PAdES B-LTA over the years).

A sealed PDF stays verifiable as long as its newest timestamp can be validated: a
document timestamp is validated as of now, so its TSA certificate must still be valid
(:func:`~app.documents.validate.validate_sealed_pdf`). Before that certificate ends, one
more long-term update is added (:func:`~app.documents.seal.retimestamp_pdf`): fresh
revocation data of that timestamp's chain in the DSS, and a new document timestamp over
all of it by the TSA's current certificate, which ends later.

* :func:`inspect_archived_pdf`: the level a stored PDF's seal reaches now
  (:class:`ArchiveLevel`) and when its newest timestamp's TSA certificate ends;
* :func:`current_tsa_certificate`: the certificate the TSA timestamps with now (one
  timestamp asked for, over nothing): whether re-timestamping would help at all;
* :func:`retimestamp_archived_pdf`: the PDF re-timestamped (a B-T or B-LT one made B-LTA:
  its seal's fresh revocation data first), checked before it is handed back: the old
  bytes unchanged at its start and the whole accepted at PAdES B-LTA.

No database here: :mod:`app.registrations.archive` applies it to the stored documents.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import add_validation_info
from pyhanko_certvalidator.errors import PathError, ValidationError

from app.documents.pki import SealIdentity, SealMaterial
from app.documents.seal import SealValidationError, fetching_validation_context, retimestamp_pdf
from app.documents.validate import Level, Rejection, validate_sealed_pdf


class ArchiveLevel(enum.StrEnum):
    """What a stored PDF's seal reaches, as the archive sees it."""

    UNSEALED = "unsealed"
    """No signature at all (a receipt, a decision letter, a printed form)."""
    REJECTED = "rejected"
    """A seal that :func:`~app.documents.validate.validate_sealed_pdf` does not accept now."""
    B_B = Level.B_B.value
    B_T = Level.B_T.value
    B_LT = Level.B_LT.value
    B_LTA = Level.B_LTA.value


UPGRADED_LEVELS = frozenset({ArchiveLevel.B_T, ArchiveLevel.B_LT})
"""Levels made B-LTA as soon as the archive sees them (a seal made before PAdES B-LTA):
they stay valid only while the seal's certificate does, so fresh revocation data of the
seal's chain and of its timestamp's goes into the DSS, then a first document timestamp."""


@dataclass(frozen=True)
class ArchiveInspection:
    """A stored PDF as :func:`inspect_archived_pdf` found it."""

    level: ArchiveLevel
    timestamp_expires_dt: datetime | None
    """When the TSA certificate of its newest timestamp ends: the newest document
    timestamp's, else the seal's signature timestamp's (``None`` without a timestamp)."""
    reason: str | None = None
    """Why a seal is not accepted (:class:`~app.documents.validate.Rejection`'s text)."""


class RetimestampError(Exception):
    """The re-timestamped PDF is not what was asked (it is never stored)."""


def _token_certificate(token: cms.ContentInfo) -> x509.Certificate:
    return extract_certificate_info(token["content"]).signer_cert


def _newest_timestamp_certificate(pdf: bytes) -> x509.Certificate | None:
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    timestamps = reader.embedded_timestamp_signatures
    if timestamps:
        return timestamps[-1].signer_cert
    signatures = reader.embedded_regular_signatures
    if not signatures:
        return None
    unsigned = signatures[-1].signer_info["unsigned_attrs"]
    for attribute in unsigned if unsigned.native is not None else ():
        if attribute["type"].native == "signature_time_stamp_token":
            return _token_certificate(attribute["values"][0])
    return None


def inspect_archived_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[x509.Certificate],
    seal_identity: SealIdentity,
    now: datetime | None = None,
) -> ArchiveInspection:
    """The level ``pdf``'s seal reaches as of ``now`` (the real time by default) and when
    its newest timestamp's TSA certificate ends. Never raises for a malformed PDF."""
    report = validate_sealed_pdf(pdf, trust_roots=trust_roots, seal_identity=seal_identity, now=now)
    if report.rejection in (Rejection.NO_SEAL, Rejection.NOT_A_PDF):
        return ArchiveInspection(ArchiveLevel.UNSEALED, None)
    try:
        certificate = _newest_timestamp_certificate(pdf)
    except Exception:  # a parser meeting malformed input raises anything
        certificate = None
    expires = certificate.not_valid_after if certificate is not None else None
    if not report.accepted or report.level is None:
        return ArchiveInspection(ArchiveLevel.REJECTED, expires, report.reason)
    return ArchiveInspection(ArchiveLevel(report.level.value), expires)


def _with_seal_revocation_data(pdf: bytes, material: SealMaterial, now: datetime | None) -> bytes:
    """``pdf`` with the revocation data of its seal's chain and of its signature
    timestamp's chain, fetched now, added to the DSS (an incremental update)."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    if reader.embedded_timestamp_signatures:
        return pdf  # B-LTA: the newest document timestamp's data is what retimestamp_pdf adds
    seal = reader.embedded_regular_signatures[-1]
    try:
        out = add_validation_info(
            seal, fetching_validation_context(material, now), force_write=True
        )
    except (PathError, ValidationError) as exc:
        raise SealValidationError(str(exc)) from exc
    return bytes(out.getvalue())


def current_tsa_certificate(timestamper: TimeStamper) -> x509.Certificate:
    """The certificate the TSA signs its timestamps with now: one timestamp asked for (of
    a fixed digest). Raises what the TSA client raises when the TSA fails."""
    token = asyncio.run(
        timestamper.async_timestamp(hashlib.sha256(b"behorighet archive probe").digest(), "sha256")
    )
    return _token_certificate(token)


def retimestamp_archived_pdf(
    pdf: bytes,
    *,
    material: SealMaterial,
    trust_roots: Iterable[x509.Certificate],
    seal_identity: SealIdentity,
    now: datetime | None = None,
) -> tuple[bytes, ArchiveInspection]:
    """``pdf`` with fresh revocation data and a new document timestamp, and what it is now
    (a seal without a document timestamp yet gets its own chain's revocation data too).

    Raises :class:`~app.documents.seal.SealValidationError` when the revocation data cannot
    be fetched, the TSA client's errors when the TSA fails, and :class:`RetimestampError`
    when the result does not start with ``pdf`` unchanged or is not accepted at PAdES B-LTA
    (``verify-pdf`` as of ``now``)."""
    updated = retimestamp_pdf(
        _with_seal_revocation_data(pdf, material, now), material=material, now=now
    )
    if len(updated) <= len(pdf) or not updated.startswith(pdf):
        raise RetimestampError("the update does not keep the document's bytes as they were")
    inspection = inspect_archived_pdf(
        updated, trust_roots=trust_roots, seal_identity=seal_identity, now=now
    )
    if inspection.level is not ArchiveLevel.B_LTA:
        raise RetimestampError(
            f"the re-timestamped document is {inspection.level}: {inspection.reason}"
        )
    return updated, inspection
