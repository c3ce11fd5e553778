"""Keeping a sealed PDF valid: found due before its newest timestamp's TSA certificate
ends, re-timestamped with fresh revocation data by the TSA's renewed certificate, and still
valid (``verify-pdf``, pyHanko, pdfsig) after the first certificate has ended. The clock is
moved with certomancer's time travel (no database; see tests/integration/test_archive.py
for the stored documents and the scheduled actor)."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import TimestampRequestError

from app.config import Settings
from app.documents.archive import (
    ArchiveLevel,
    RetimestampError,
    current_tsa_certificate,
    inspect_archived_pdf,
    retimestamp_archived_pdf,
)
from app.documents.seal import SealValidationError
from app.documents.validate import Level, Rejection, validate_sealed_pdf
from tests.archive_pki import (  # noqa: F401 (fixtures: archive_pki, form_pdf)
    AFTER_FIRST_TSA,
    DUE,
    NOW,
    TSA_ENDS,
    TSA_RENEWED_ENDS,
    ArchivePki,
    FailingTsa,
    archive_pki_fixture,
    form_pdf_fixture,
)
from tests.support import pdf_with_annotation
from tests.unit.test_long_term import _b_t_seal, _independent_checks


@pytest.fixture(scope="module")
def sealed(archive_pki: ArchivePki, form_pdf: bytes) -> bytes:
    return archive_pki.seal(form_pdf)


def _inspect(pdf: bytes, archive_pki: ArchivePki, now: object = None) -> object:
    sources = archive_pki.sources()
    return inspect_archived_pdf(
        pdf, trust_roots=sources.trust_roots, seal_identity=sources.seal_identity, now=now
    )


def test_the_archive_sees_each_pdfs_level_and_its_newest_timestamps_end(
    archive_pki: ArchivePki, form_pdf: bytes, sealed: bytes
) -> None:
    found = _inspect(sealed, archive_pki)
    assert found.level is ArchiveLevel.B_LTA  # type: ignore[attr-defined]
    assert found.timestamp_expires_dt == TSA_ENDS  # type: ignore[attr-defined]
    # Without a document timestamp: the seal's signature timestamp is the newest.
    b_t = _inspect(_b_t_seal(form_pdf, archive_pki.base), archive_pki)
    assert b_t.level is ArchiveLevel.B_T  # type: ignore[attr-defined]
    assert b_t.timestamp_expires_dt == TSA_ENDS  # type: ignore[attr-defined]
    unsealed = _inspect(form_pdf, archive_pki)
    assert unsealed.level is ArchiveLevel.UNSEALED  # type: ignore[attr-defined]
    assert unsealed.timestamp_expires_dt is None  # type: ignore[attr-defined]
    changed = _inspect(pdf_with_annotation(sealed), archive_pki)
    assert changed.level is ArchiveLevel.REJECTED  # type: ignore[attr-defined]
    assert changed.reason == Rejection.CHANGED.value  # type: ignore[attr-defined]
    assert _inspect(b"not a pdf", archive_pki).level is ArchiveLevel.UNSEALED  # type: ignore[attr-defined]


def test_a_retimestamped_pdf_outlives_its_first_tsa_certificate(
    archive_pki: ArchivePki, sealed: bytes, tmp_path: Path
) -> None:
    sources = archive_pki.sources()
    with archive_pki.moved_to(DUE):
        material = archive_pki.renewed(DUE)
        assert current_tsa_certificate(material.timestamper).not_valid_after == TSA_RENEWED_ENDS
        updated, found = retimestamp_archived_pdf(
            sealed,
            material=material,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=DUE,
        )
    assert updated.startswith(sealed), "an incremental update: the old bytes kept"
    assert found.level is ArchiveLevel.B_LTA
    assert found.timestamp_expires_dt == TSA_RENEWED_ENDS
    reader = PdfFileReader(io.BytesIO(updated))
    first, second = reader.embedded_timestamp_signatures
    assert first.signer_cert.not_valid_after == TSA_ENDS
    assert second.signer_cert.not_valid_after == TSA_RENEWED_ENDS
    assert "/Version" not in reader.root, "PDF/A-3 stays PDF 1.7"

    # A year on, the first TSA certificate has ended: only the re-timestamped file holds.
    with archive_pki.moved_to(AFTER_FIRST_TSA):
        kept = validate_sealed_pdf(
            updated,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=AFTER_FIRST_TSA,
        )
        assert kept.accepted and kept.level == Level.B_LTA, kept.reason
        assert kept.archive_timestamp_dt == DUE
        assert kept.validated_at is not None and kept.validated_at < DUE
        _independent_checks(updated, archive_pki.base, kept, tmp_path, AFTER_FIRST_TSA)
        lapsed = validate_sealed_pdf(
            sealed,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=AFTER_FIRST_TSA,
        )
        # Its one document timestamp's TSA certificate has ended: nothing proves the seal.
        assert not lapsed.accepted
        assert lapsed.rejection in (Rejection.ARCHIVE_TIMESTAMP_INVALID, Rejection.UNTRUSTED)
        _independent_checks(sealed, archive_pki.base, lapsed, tmp_path, AFTER_FIRST_TSA)
    assert NOW < DUE < TSA_ENDS < AFTER_FIRST_TSA


def test_a_seal_without_a_document_timestamp_is_made_b_lta(
    archive_pki: ArchivePki, form_pdf: bytes, tmp_path: Path
) -> None:
    """Sealed before PAdES B-LTA (B-T): the seal's fresh revocation data, then a document
    timestamp; valid after the seal's TSA certificate has ended."""
    older = _b_t_seal(form_pdf, archive_pki.base)
    sources = archive_pki.sources()
    with archive_pki.moved_to(DUE):
        material = archive_pki.renewed(DUE)
        updated, found = retimestamp_archived_pdf(
            older,
            material=material,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=DUE,
        )
    assert updated.startswith(older)
    assert (found.level, found.timestamp_expires_dt) == (ArchiveLevel.B_LTA, TSA_RENEWED_ENDS)
    with archive_pki.moved_to(AFTER_FIRST_TSA):
        report = validate_sealed_pdf(
            updated,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=AFTER_FIRST_TSA,
        )
        assert report.accepted and report.level == Level.B_LTA, report.reason
        _independent_checks(updated, archive_pki.base, report, tmp_path, AFTER_FIRST_TSA)


def test_a_failing_tsa_or_a_bad_result_gives_nothing_back(
    archive_pki: ArchivePki, sealed: bytes
) -> None:
    sources = archive_pki.sources()
    failing = dataclasses.replace(archive_pki.base, timestamper=FailingTsa())
    with pytest.raises(TimestampRequestError), archive_pki.moved_to(DUE):
        retimestamp_archived_pdf(
            sealed,
            material=failing,
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=DUE,
        )
    with pytest.raises(TimestampRequestError):
        current_tsa_certificate(failing.timestamper)
    # A changed document is not made to look long-term: its update is refused.
    with pytest.raises((RetimestampError, SealValidationError)), archive_pki.moved_to(DUE):
        retimestamp_archived_pdf(
            pdf_with_annotation(sealed),
            material=archive_pki.renewed(DUE),
            trust_roots=sources.trust_roots,
            seal_identity=sources.seal_identity,
            now=DUE,
        )


def test_the_margin_is_set_in_days(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(secret_key="x").archive_retimestamp_margin == timedelta(days=180)
    monkeypatch.setenv("ARCHIVE_RETIMESTAMP_MARGIN_DAYS", "90")
    assert Settings.from_env().archive_retimestamp_margin == timedelta(days=90)
    with pytest.raises(ValueError, match="at least 1"):
        _ = Settings(secret_key="x", archive_retimestamp_margin_days=0).archive_retimestamp_margin
