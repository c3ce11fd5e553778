"""The archive keeps its sealed documents valid: each stored PDF is checked once (its PAdES
level, when its newest timestamp's TSA certificate ends), and re-timestamped before that
certificate ends (``ARCHIVE_RETIMESTAMP_MARGIN_DAYS`` before).

Generic over the stored documents: every :class:`ErrandDocument` that is a PDF, whatever
made it (the e-signed form's sealed PDF, the scanned archive PDF, receipts, decision
letters: an unsealed PDF is checked once and left alone). :func:`keep_archive_valid` is the
scheduled actor's work (``workflows.actors.keep_archive_valid``); :func:`archive_status` is
``behorighet archive status``.

Safe to run anywhere at once and twice: a document is re-timestamped under its row's lock
and only while it is still due; the new bytes replace the old in the same transaction that
records the audit event, only after they were checked (they start with the old bytes
unchanged and are accepted at PAdES B-LTA as of now); any failure (the TSA, the OCSP
responders, the check) rolls that document back as it was, to be tried at the next run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from asn1crypto import x509
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session, sessionmaker, undefer

from app.audit.service import record_errand_event, record_event
from app.core.agents import Agent
from app.db import utcnow
from app.documents.archive import (
    UPGRADED_LEVELS,
    ArchiveLevel,
    current_tsa_certificate,
    inspect_archived_pdf,
    retimestamp_archived_pdf,
)
from app.documents.pki import SealIdentity, SealMaterial
from app.registrations.models import Errand, ErrandDocument

log = structlog.get_logger(__name__)

PDF = "application/pdf"
BATCH_SIZE = 50
"""Documents read per query (checked ones are committed per batch)."""
PER_RUN = 500
"""At most this many documents are checked, and this many re-timestamped, per run (each
takes about half a second: a run stays within the actor's time limit); the rest at the
next run."""
FAILURES_BEFORE_GIVING_UP = 3
"""Failures in a row after which a run stops (the TSA or the responders are down)."""
AGENT = Agent.system("archive")


@dataclass(frozen=True)
class ArchiveSources:
    """What checking and re-timestamping need: the seal material (its TSA), the roots and
    whose seal is accepted (as ``verify-pdf`` has them)."""

    material: SealMaterial
    trust_roots: tuple[x509.Certificate, ...]
    seal_identity: SealIdentity


@dataclass
class ArchiveRun:
    """What one run did."""

    checked: int = 0
    """Documents checked for the first time."""
    retimestamped: list[int] = field(default_factory=list)
    """The ids of the documents re-timestamped."""
    failed: list[int] = field(default_factory=list)
    """The ids of the documents whose re-timestamping failed (left as they were)."""
    due: list[int] = field(default_factory=list)
    """With ``dry_run``: the ids of the documents that would be re-timestamped."""
    problem: str | None = None
    """Why the run stopped early (the TSA unreachable, its certificate no newer)."""


def _unchecked() -> ColumnElement[bool]:
    return and_(ErrandDocument.archive_level.is_(None), ErrandDocument.media_type == PDF)


def _upgraded() -> ColumnElement[bool]:
    return ErrandDocument.archive_level.in_([level.value for level in UPGRADED_LEVELS])


def _due(threshold: datetime, newer_than: datetime | None = None) -> ColumnElement[bool]:
    """Due: a B-LTA document whose newest timestamp's TSA certificate ends by ``threshold``
    (and before ``newer_than``: a timestamp that would end later), or a B-T or B-LT one."""
    lapsing = and_(
        ErrandDocument.archive_level == ArchiveLevel.B_LTA.value,
        ErrandDocument.timestamp_expires_dt <= threshold,
    )
    if newer_than is not None:
        lapsing = and_(lapsing, ErrandDocument.timestamp_expires_dt < newer_than)
    return or_(lapsing, _upgraded())


def _check(document: ErrandDocument, sources: ArchiveSources, now: datetime | None) -> None:
    inspection = inspect_archived_pdf(
        document.content,
        trust_roots=sources.trust_roots,
        seal_identity=sources.seal_identity,
        now=now,
    )
    document.archive_level = inspection.level.value
    document.timestamp_expires_dt = inspection.timestamp_expires_dt
    document.archive_checked_dt = now or utcnow()
    if inspection.level is ArchiveLevel.REJECTED:
        log.warning("archive.seal_not_accepted", document_id=document.id, reason=inspection.reason)


def _check_again(
    factory: sessionmaker[Session],
    document_id: int,
    sources: ArchiveSources,
    now: datetime | None,
) -> None:
    """After a failure: a seal that can no longer be made long-term (its certificate has
    ended or was revoked) is no longer due; one whose TSA or responder failed stays due."""
    with factory() as session:
        document = session.get(
            ErrandDocument,
            document_id,
            options=[undefer(ErrandDocument.content)],
            with_for_update={"skip_locked": True},
        )
        if document is not None:
            _check(document, sources, now)
            session.commit()


def check_new_documents(
    factory: sessionmaker[Session], sources: ArchiveSources, now: datetime | None = None
) -> int:
    """Check the PDFs not checked yet, :data:`PER_RUN` at most (a commit per batch).
    Returns how many."""
    checked = 0
    while checked < PER_RUN:
        with factory() as session:
            documents = session.scalars(
                select(ErrandDocument)
                .where(_unchecked())
                .order_by(ErrandDocument.id)
                .limit(BATCH_SIZE)
                .options(undefer(ErrandDocument.content))
                .with_for_update(skip_locked=True)
            ).all()
            if not documents:
                return checked
            for document in documents:
                _check(document, sources, now)
            session.commit()
            checked += len(documents)
    return checked


def retimestamp_document(
    session: Session,
    document_id: int,
    sources: ArchiveSources,
    *,
    threshold: datetime,
    now: datetime | None = None,
) -> bool:
    """Re-timestamp the document if it is still due (its row locked), in the session's
    transaction with its audit event. False when it no longer is, or another run holds it.
    Raises whatever fails: the caller rolls back, and the document stays as it was."""
    document = session.scalars(
        select(ErrandDocument)
        .where(ErrandDocument.id == document_id, _due(threshold))
        .options(undefer(ErrandDocument.content))
        .with_for_update(skip_locked=True)
    ).one_or_none()
    if document is None:
        return False
    before = document.timestamp_expires_dt
    updated, inspection = retimestamp_archived_pdf(
        document.content,
        material=sources.material,
        trust_roots=sources.trust_roots,
        seal_identity=sources.seal_identity,
        now=now,
    )
    previous_sha256 = document.sha256
    document.content = updated
    document.sha256 = hashlib.sha256(updated).hexdigest()
    document.archive_level = inspection.level.value
    document.timestamp_expires_dt = inspection.timestamp_expires_dt
    document.archive_checked_dt = now or utcnow()
    what = {
        "document_id": document.id,
        "kind": document.kind.value,
        "previous_sha256": previous_sha256,
        "sha256": document.sha256,
        "previous_timestamp_expires_dt": before,
        "timestamp_expires_dt": inspection.timestamp_expires_dt,
    }
    if document.errand_id is not None:
        record_errand_event(
            session, AGENT.audit_label, document.errand_id, "document_retimestamped", **what
        )
    else:  # a register extract's document (issue 19)
        record_event(
            session,
            actor=AGENT.audit_label,
            action="register_extract.document_retimestamped",
            object_type="register_extract",
            object_id=document.register_extract_id or 0,
            data=what,
        )
    return True


def _due_ids(
    factory: sessionmaker[Session],
    threshold: datetime,
    *,
    newer_than: datetime | None = None,
    skip: Iterable[int] = (),
    limit: int | None = BATCH_SIZE,
) -> list[int]:
    """The documents due (:func:`_due`) but ``skip``: the B-LTA ones first, soonest first."""
    query = select(ErrandDocument.id).where(_due(threshold, newer_than))
    skipped = list(skip)
    if skipped:
        query = query.where(ErrandDocument.id.not_in(skipped))
    query = query.order_by(
        case((_upgraded(), 1), else_=0),
        ErrandDocument.timestamp_expires_dt,
        ErrandDocument.id,
    )
    with factory() as session:
        return list(session.scalars(query.limit(limit)))


def keep_archive_valid(
    factory: sessionmaker[Session],
    sources: ArchiveSources,
    *,
    margin: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ArchiveRun:
    """Check the PDFs stored since the last run, then re-timestamp (one commit each) those
    whose newest timestamp's TSA certificate ends within ``margin`` of ``now``, when the
    TSA's current certificate ends later, and make the B-T and B-LT ones B-LTA. ``now``:
    the real time at each step by default (revocation data is fetched as of the moment it
    is used); the tests move it.
    ``dry_run``: only list them (the PDFs not checked yet are not checked either)."""
    threshold = (now or utcnow()) + margin
    run = ArchiveRun()
    if dry_run:
        run.due = _due_ids(factory, threshold, limit=None)
        return run
    run.checked = check_new_documents(factory, sources, now)
    if not _due_ids(factory, threshold, limit=1):
        return run
    try:
        tsa_ends = current_tsa_certificate(sources.material.timestamper).not_valid_after
    except Exception as exc:  # the TSA client raises anything: tried again at the next run
        run.problem = f"the TSA did not answer: {type(exc).__name__}"
        log.warning("archive.tsa_unavailable", error=type(exc).__name__)
        return run
    if tsa_ends <= threshold:
        log.warning("archive.tsa_certificate_ends_soon", tsa_certificate_ends=tsa_ends.isoformat())
    in_a_row = 0
    seen: list[int] = []  # each document once per run (done, failed, or another run's)
    while len(seen) < PER_RUN:
        ids = _due_ids(factory, threshold, newer_than=tsa_ends, skip=seen)
        if not ids:
            break
        seen.extend(ids)
        for document_id in ids:
            with factory() as session:
                try:
                    done = retimestamp_document(
                        session, document_id, sources, threshold=threshold, now=now
                    )
                    session.commit()
                except Exception as exc:  # the TSA, a responder, the check: try next run
                    session.rollback()
                    run.failed.append(document_id)
                    in_a_row += 1
                    log.warning(
                        "archive.retimestamp_failed",
                        document_id=document_id,
                        error=type(exc).__name__,
                        detail=str(exc)[:200],
                    )
                    _check_again(factory, document_id, sources, now)
                    if in_a_row >= FAILURES_BEFORE_GIVING_UP:
                        run.problem = f"{in_a_row} documents failed in a row"
                        return run
                    continue
            in_a_row = 0
            if done:
                run.retimestamped.append(document_id)
                log.info("archive.retimestamped", document_id=document_id)
    if not seen:
        run.problem = "the TSA's current certificate ends no later than the documents' newest"
    return run


# --- status ---------------------------------------------------------------------------


UNCHECKED = "unchecked"
"""The summary's name for the PDFs not checked yet."""


@dataclass(frozen=True)
class ArchivedDocument:
    """A sealed document in ``archive status``'s table (no personal data)."""

    document_id: int
    reference: str
    """The errand's reference."""
    kind: str
    level: str
    timestamp_expires_dt: datetime | None
    checked_dt: datetime | None
    due: bool
    """Whether the next run re-timestamps it (or makes it B-LTA)."""


LEVEL_ORDER = (
    *(level.value for level in ArchiveLevel if level.value.startswith("B-")),
    ArchiveLevel.REJECTED.value,
    ArchiveLevel.UNSEALED.value,
    UNCHECKED,
)
"""The order ``archive status`` sums up the levels in."""


@dataclass(frozen=True)
class LevelCount:
    level: str
    """An :class:`ArchiveLevel` value, or :data:`UNCHECKED`."""
    documents: int
    due: int
    """How many of them the next run re-timestamps (or makes B-LTA)."""


@dataclass(frozen=True)
class ArchiveStatus:
    counts: list[LevelCount]
    """The PDFs per level, every level in :data:`LEVEL_ORDER` (zeros too)."""
    documents: list[ArchivedDocument]
    """The sealed documents (those expiring within the asked time), soonest first."""


def archive_status(
    session: Session,
    *,
    margin: timedelta,
    now: datetime | None = None,
    expiring_within: timedelta | None = None,
    limit: int = 100,
) -> ArchiveStatus:
    """The stored PDFs by level, and the sealed ones by when their newest timestamp's TSA
    certificate ends (only those ending within ``expiring_within`` of ``now`` when given),
    each due or not by ``margin``."""
    now = now or utcnow()
    due = case((_due(now + margin), 1), else_=0)
    found: dict[str, tuple[int, int]] = {}
    for level, count, due_count in session.execute(
        select(ErrandDocument.archive_level, func.count(), func.sum(due))
        .where(ErrandDocument.media_type == PDF)
        .group_by(ErrandDocument.archive_level)
    ):
        found[level or UNCHECKED] = (count, int(due_count or 0))
    counts = [LevelCount(level, *found.get(level, (0, 0))) for level in LEVEL_ORDER]
    query = (
        select(ErrandDocument, Errand.reference, due)
        .outerjoin(Errand, Errand.id == ErrandDocument.errand_id)
        .where(
            ErrandDocument.media_type == PDF,
            ErrandDocument.archive_level.is_not(None),
            ErrandDocument.archive_level != ArchiveLevel.UNSEALED.value,
        )
        .order_by(ErrandDocument.timestamp_expires_dt.asc().nulls_first(), ErrandDocument.id)
        .limit(limit)
    )
    if expiring_within is not None:
        query = query.where(ErrandDocument.timestamp_expires_dt <= now + expiring_within)
    documents = [
        ArchivedDocument(
            document_id=document.id,
            reference=reference or f"extract {document.register_extract_id}",
            kind=document.kind.value,
            level=document.archive_level or UNCHECKED,
            timestamp_expires_dt=document.timestamp_expires_dt,
            checked_dt=document.archive_checked_dt,
            due=bool(is_due),
        )
        for document, reference, is_due in session.execute(query)
    ]
    return ArchiveStatus(counts=counts, documents=documents)
