"""The archive keeps its sealed documents valid: the scheduled actor checks each stored PDF
once, re-timestamps a sealed one before its newest timestamp's TSA certificate ends (one
commit and one audit event per document), leaves it as it was when the TSA fails, and does
nothing twice; ``behorighet archive status`` lists them. The clock is moved forward with
certomancer's time travel (tests/archive_pki.py)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cli import main
from app.documents.validate import Level, validate_sealed_pdf
from app.registrations.archive import archive_status, keep_archive_valid
from app.registrations.models import DocumentKind, ErrandDocument
from app.registrations.service import attach_document
from app.registrations.signing import SIGNATURE_EVIDENCE_NAME
from tests.archive_pki import (  # noqa: F401 (fixtures: archive_pki, form_pdf)
    DUE,
    MARGIN,
    NOW,
    TSA_ENDS,
    TSA_RENEWED_ENDS,
    ArchivePki,
    FailingTsa,
    archive_pki_fixture,
    form_pdf_fixture,
)
from tests.factories import registration_draft
from tests.unit.test_long_term import _b_t_seal
from workflows import actors
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.worker import run_maintenance


class FlakyTsa(FailingTsa):
    """Answers the first request (the run's look at its certificate), then fails."""

    def __init__(self, working: object) -> None:
        super().__init__()
        self.working = working
        self.answered = False

    async def async_request_tsa_response(self, req: object) -> object:  # type: ignore[override]
        if self.answered:
            return await super().async_request_tsa_response(req)
        self.answered = True
        return await self.working.async_request_tsa_response(req)  # type: ignore[attr-defined]


def _stored(session: Session, document_id: int) -> ErrandDocument:
    session.expire_all()
    document = session.get(ErrandDocument, document_id)
    assert document is not None
    return document


def _retimestamp_events(session: Session, errand_id: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "errand.document_retimestamped",
                AuditEvent.object_id == str(errand_id),
            )
        )
    )


def test_a_sealed_document_is_retimestamped_before_its_tsa_certificate_ends(
    session: Session, runtime: Runtime, archive_pki: ArchivePki, form_pdf: bytes
) -> None:
    errand = registration_draft(session)
    sealed = archive_pki.seal(form_pdf)
    signed = attach_document(session, errand, DocumentKind.SIGNED, sealed, "signed.pdf")
    receipt = attach_document(session, errand, DocumentKind.RECEIPT, form_pdf, "receipt.pdf")
    # Sealed before PAdES B-LTA (B-T): made B-LTA at the first run.
    older = attach_document(
        session, errand, DocumentKind.SCAN, _b_t_seal(form_pdf, archive_pki.base), "scan.pdf"
    )
    xml = attach_document(
        session, errand, DocumentKind.EVIDENCE, b"<x/>", SIGNATURE_EVIDENCE_NAME, "application/xml"
    )
    session.commit()
    factory = runtime.session_factory

    # Today: checked, not due (300 days left, the margin is 180); the B-T one upgraded.
    run = keep_archive_valid(factory, archive_pki.sources(), margin=MARGIN)  # the real time
    assert run.checked >= 3 and run.retimestamped == [older.id] and not run.failed
    stored = _stored(session, signed.id)
    assert (stored.archive_level, stored.timestamp_expires_dt) == ("B-LTA", TSA_ENDS)
    upgraded = _stored(session, older.id)
    assert (upgraded.archive_level, upgraded.timestamp_expires_dt) == ("B-LTA", TSA_ENDS)
    assert _stored(session, receipt.id).archive_level == "unsealed"
    assert _stored(session, xml.id).archive_level is None  # not a PDF
    status = archive_status(session, margin=MARGIN, now=NOW)
    counts = {count.level: count for count in status.counts}
    assert counts["B-LTA"].documents >= 2 and counts["unsealed"].documents >= 1
    assert counts["B-T"].due == 0 == counts["B-LTA"].due
    assert [d.document_id for d in status.documents if d.document_id == signed.id] == [signed.id]
    assert signed.id not in {
        d.document_id
        for d in archive_status(session, margin=MARGIN, now=NOW, expiring_within=MARGIN).documents
    }

    with archive_pki.moved_to(DUE):
        renewed = archive_pki.renewed(DUE)
        due = archive_status(session, margin=MARGIN, now=DUE, expiring_within=MARGIN)
        assert {signed.id, older.id} <= {d.document_id for d in due.documents if d.due}
        # The TSA still on the certificate that ends soon: re-timestamping would not help.
        same = keep_archive_valid(factory, archive_pki.sources(), margin=MARGIN, now=DUE)
        assert not same.retimestamped and not same.failed
        assert same.problem and "ends no later" in same.problem
        # The TSA down: nothing changes, the run says why; tried again next time.
        down = dataclasses.replace(renewed, timestamper=FailingTsa())
        run = keep_archive_valid(factory, archive_pki.sources(down), margin=MARGIN, now=DUE)
        assert run.problem and "TSA" in run.problem and not run.retimestamped
        # The TSA fails on the document itself: that document is left as it was.
        flaky = dataclasses.replace(renewed, timestamper=FlakyTsa(renewed.timestamper))
        run = keep_archive_valid(factory, archive_pki.sources(flaky), margin=MARGIN, now=DUE)
        assert run.failed == [signed.id, older.id] and not run.retimestamped
        stored = _stored(session, signed.id)
        assert stored.content == sealed and stored.timestamp_expires_dt == TSA_ENDS
        assert len(_retimestamp_events(session, errand.id)) == 1  # the upgrade
        # A dry run lists it and changes nothing.
        dry = keep_archive_valid(
            factory, archive_pki.sources(renewed), margin=MARGIN, now=DUE, dry_run=True
        )
        assert dry.due == [signed.id, older.id] and _stored(session, signed.id).content == sealed

        run = keep_archive_valid(factory, archive_pki.sources(renewed), margin=MARGIN, now=DUE)
        assert run.retimestamped == [signed.id, older.id] and not run.failed
        stored = _stored(session, signed.id)
        assert stored.content.startswith(sealed) and len(stored.content) > len(sealed)
        assert (stored.archive_level, stored.timestamp_expires_dt) == ("B-LTA", TSA_RENEWED_ENDS)
        report = validate_sealed_pdf(
            stored.content,
            trust_roots=renewed.trust_roots,
            seal_identity=archive_pki.sources().seal_identity,
            now=DUE,
        )
        assert report.accepted and report.level == Level.B_LTA, report.reason
        (event,) = [
            e for e in _retimestamp_events(session, errand.id) if e.data["document_id"] == signed.id
        ]
        assert event.actor == "system:archive"
        assert event.data["document_id"] == signed.id
        assert event.data["sha256"] == stored.sha256 != event.data["previous_sha256"]
        # Idempotent: run again, nothing more to do.
        again = keep_archive_valid(factory, archive_pki.sources(renewed), margin=MARGIN, now=DUE)
        assert not again.retimestamped and not again.failed
        assert _stored(session, signed.id).content == stored.content
        assert len(_retimestamp_events(session, errand.id)) == 3


def _cli(app: Flask, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    return result.exit_code, result.output


def test_the_worker_schedules_the_archive_and_the_command_line_shows_it(
    app: Flask, runtime: Runtime, session: Session, form_pdf: bytes, tmp_path: Path
) -> None:
    from app.documents.pki import seal_material
    from app.documents.seal import seal_pdf

    errand = registration_draft(session)
    material = seal_material(runtime.settings)  # the run's test PKI, as the worker has it
    sealed = seal_pdf(form_pdf, material=material, evidence=[], signer_name="B", lang="sv")
    signed = attach_document(session, errand, DocumentKind.SIGNED, sealed, "signed.pdf")
    session.commit()
    run_maintenance(runtime, check_deadlines=True)
    with runtime.session_factory() as s:
        assert "keep_archive_valid" in s.scalars(select(OutboxMessage.actor_name)).all()
    actors.keep_archive_valid()  # as the worker runs it: checked, not due for years
    stored = _stored(session, signed.id)
    assert stored.archive_level == "B-LTA" and stored.content == sealed
    assert stored.timestamp_expires_dt == material.timestamper.tsa_cert.not_valid_after  # type: ignore[attr-defined]

    with app.app_context():
        code, output = _cli(app, "archive", "status")
    assert code == 0, output
    assert f"{signed.id:>9}  {errand.reference:<12} signed    B-LTA" in output
    summary = output.split("level ")[-1]
    assert re.search(r"^B-LTA +[1-9]\d* +0$", summary, re.MULTILINE), summary
    assert re.search(r"^B-B +0 +0$", summary, re.MULTILINE), summary
    with app.app_context():
        code, output = _cli(app, "archive", "status", "--expiring-within", "30")
    assert code == 0 and f"{errand.reference}" not in output, output
    with app.app_context():
        code, output = _cli(app, "archive", "retimestamp", "--dry-run")
    assert code == 0 and "Due: 0 documents." in output, output
    with app.app_context():
        code, output = _cli(app, "archive", "retimestamp")
    assert code == 0 and "re-timestamped 0" in output, output
