"""Checkpoints of the audit chain outside the database, with RFC 3161 timestamps.

A checkpoint pins the head of every chain of the audit log (each head event's number in
its chain, id and keyed hash, and the legacy boundary of :mod:`app.audit.service`) at a
time, attested by the TSA the seal uses. It is written to append-only storage outside the
database: a file created once (``O_CREAT | O_EXCL``, read-only) in
``AUDIT_CHECKPOINT_DIR``, never overwritten – in production a write-once (WORM) volume or
bucket, so that neither the database's users nor the application can remove or change one.
``behorighet audit verify`` checks every chain against the last checkpoint: an event it
pins that changed, or a chain cut short before it or gone, is found even by someone who
had the audit key. The file is numbered by the events it pins in all (chains only grow).
Checkpoints of before migration 0018 (``behorighet-audit-checkpoint-v1``, one chain) are
read as pinning the shared chain.

Events after the last checkpoint are protected by the key alone (they cannot be forged,
but the newest of them could be removed by someone bypassing the database's triggers until
the next checkpoint pins them); the checkpoint interval bounds that window.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms, x509
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.audit.models import AuditChainHead, AuditEvent
from app.audit.service import (
    SHARED,
    Anchor,
    Pin,
    chain_key,
    describe_chain,
    store_chain_head,
    verify_chain,
)

FORMAT = "behorighet-audit-checkpoint-v2"
FORMAT_ONE_CHAIN = "behorighet-audit-checkpoint-v1"
"""Before migration 0018: the one chain's head (now the shared chain's)."""
FILE_NAME = re.compile(r"^audit-checkpoint-(\d{12})\.json$")
MAX_FILE_BYTES = 16 * 1024 * 1024
"""About 100 bytes a chain: some 150,000 employers."""


class CheckpointError(Exception):
    """A checkpoint cannot be written, read or trusted (the message says why)."""


@dataclass(frozen=True)
class Checkpoint:
    """Every chain's head at a time, as a checkpoint file holds it."""

    pins: dict[str, Pin]
    """Each chain's head event."""
    legacy_until_seq: int
    written_dt: datetime
    token: bytes
    """The DER RFC 3161 timestamp token (``ContentInfo``) over :meth:`body`."""
    format: str = FORMAT

    @property
    def events(self) -> int:
        """How many events it pins in all (the chains' lengths)."""
        return sum(pin.seq for pin in self.pins.values())

    def body(self) -> bytes:
        """What the timestamp covers: every field but the token, canonical JSON."""
        common = {
            "format": self.format,
            "legacy_until_seq": self.legacy_until_seq,
            "written_dt": self.written_dt.astimezone(UTC).isoformat(),
        }
        if self.format == FORMAT_ONE_CHAIN:
            pin = self.pins[SHARED]
            fields = {"seq": pin.seq, "event_id": pin.event_id, "hash": pin.hash}
        else:
            fields = {"chains": {chain: pin.__dict__ for chain, pin in self.pins.items()}}
        return json.dumps({**common, **fields}, sort_keys=True, separators=(",", ":")).encode()

    def to_file(self) -> bytes:
        data = json.loads(self.body())
        data["timestamp_token"] = base64.b64encode(self.token).decode("ascii")
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_file(cls, data: bytes, name: str) -> Checkpoint:
        try:
            raw = json.loads(data)
            if raw.get("format") == FORMAT_ONE_CHAIN:
                pins = {SHARED: Pin(int(raw["seq"]), int(raw["event_id"]), str(raw["hash"]))}
            elif raw.get("format") == FORMAT:
                pins = {
                    str(chain): Pin(int(pin["seq"]), int(pin["event_id"]), str(pin["hash"]))
                    for chain, pin in raw["chains"].items()
                }
            else:
                raise ValueError("unknown format")
            return cls(
                pins=pins,
                legacy_until_seq=int(raw["legacy_until_seq"]),
                written_dt=datetime.fromisoformat(raw["written_dt"]),
                token=base64.b64decode(raw["timestamp_token"], validate=True),
                format=raw["format"],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"the checkpoint {name} cannot be read: {exc}") from exc

    @property
    def file_name(self) -> str:
        return f"audit-checkpoint-{self.events:012d}.json"

    def anchor(self, verified_dt: datetime) -> Anchor:
        """This checkpoint as :func:`~app.audit.service.verify_chain` checks against it."""
        return Anchor(
            pins=self.pins,
            legacy_until_seq=self.legacy_until_seq,
            described=(
                f"the checkpoint of {verified_dt.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC "
                f"({self.file_name})"
            ),
        )


# --- reading ------------------------------------------------------------------------


def last_checkpoint(directory: Path) -> Checkpoint | None:
    """The checkpoint of the highest event in ``directory`` (``None``: none yet)."""
    if not directory.is_dir():
        raise CheckpointError(f"the checkpoint directory {directory} does not exist")
    numbered = [(int(m.group(1)), p) for p in directory.iterdir() if (m := FILE_NAME.match(p.name))]
    if not numbered:
        return None
    _, path = max(numbered)
    if not path.is_file() or path.is_symlink():
        raise CheckpointError(f"the checkpoint {path.name} is not a regular file")
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CheckpointError(f"the checkpoint {path.name} is too large")
    checkpoint = Checkpoint.from_file(data, path.name)
    if checkpoint.file_name != path.name:
        raise CheckpointError(f"the checkpoint {path.name} pins {checkpoint.events} events")
    return checkpoint


def verify_token(checkpoint: Checkpoint, trust_roots: Iterable[x509.Certificate]) -> datetime:
    """The time the TSA attests for ``checkpoint``, once its token is found intact, over this
    checkpoint, and by a TSA certificate chaining to ``trust_roots``; else
    :class:`CheckpointError`."""
    body = checkpoint.body()
    try:
        content = cms.ContentInfo.load(checkpoint.token)
        signed_data = content["content"]
        context = ValidationContext(trust_roots=list(trust_roots), allow_fetching=False)
        kwargs = asyncio.run(
            validate_tst_signed_data(
                signed_data, context, lambda algorithm: hashlib.new(algorithm, body).digest()
            )
        )
        status = TimestampSignatureStatus(**kwargs)
    except Exception as exc:  # a parser meeting malformed input raises anything
        raise CheckpointError(
            f"the timestamp of the checkpoint {checkpoint.file_name} cannot be read"
        ) from exc
    if not status.intact:
        raise CheckpointError(
            f"the timestamp of the checkpoint {checkpoint.file_name} does not cover it "
            "(the checkpoint was changed)"
        )
    if not status.trusted:
        raise CheckpointError(
            f"the timestamp of the checkpoint {checkpoint.file_name} is not by a trusted TSA"
        )
    tsa = status.signing_cert
    if not tsa.not_valid_before <= status.timestamp <= tsa.not_valid_after:
        raise CheckpointError(
            f"the timestamp of the checkpoint {checkpoint.file_name} is outside its TSA "
            "certificate's validity"
        )
    return status.timestamp


# --- writing ------------------------------------------------------------------------


def _write_once(directory: Path, name: str, data: bytes) -> bool:
    """Create ``directory/name`` holding ``data``, read-only; ``False`` when it exists
    (never overwritten)."""
    try:
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    with contextlib.suppress(OSError):  # not every file system syncs a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return True


def _compare(previous: Checkpoint, heads: dict[str, AuditChainHead]) -> bool:
    """Whether the heads moved since ``previous``; :class:`CheckpointError` when a chain it
    pins is shorter now, or its pinned head changed."""
    for chain, pin in previous.pins.items():
        head = heads.get(chain)
        seq = head.seq if head is not None else 0
        if seq < pin.seq:
            raise CheckpointError(
                f"{describe_chain(chain)} ends at event {seq}, the last checkpoint pins event "
                f"{pin.seq}: events were removed"
            )
        if head is not None and seq == pin.seq and head.last_hash != pin.hash:
            raise CheckpointError(
                f"the head of {describe_chain(chain)} differs from the last checkpoint of its "
                f"event {pin.seq}: the chain was rewritten"
            )
    return set(heads) != set(previous.pins) or any(
        head.seq != previous.pins[chain].seq for chain, head in heads.items()
    )


def write_checkpoint(
    session: Session,
    directory: Path,
    timestamper: TimeStamper,
    trust_roots: Iterable[x509.Certificate],
) -> Checkpoint | None:
    """Pin every chain's head now, when one moved since the last checkpoint (``None`` when
    none did, or the log is empty). The chains are verified first (against the last
    checkpoint): a broken chain is never anchored (:class:`CheckpointError`)."""
    directory.mkdir(parents=True, exist_ok=True)
    store_chain_head(session)
    every = session.scalars(select(AuditChainHead).execution_options(populate_existing=True)).all()
    legacy_until = next((h.legacy_until_seq for h in every if h.chain == SHARED), 0)
    heads = {head.chain: head for head in every if head.seq > 0}
    if not heads:
        return None
    previous = last_checkpoint(directory)
    if previous is not None and not _compare(previous, heads):
        return None
    anchor = None
    if previous is not None:
        anchor = previous.anchor(verify_token(previous, trust_roots))
    report = verify_chain(session, chain_key(session), anchor)
    if not report.is_intact:
        raise CheckpointError(f"not anchored: the audit chain is {report.problem}")
    heads = {
        head.chain: head
        for head in session.scalars(select(AuditChainHead).where(AuditChainHead.seq > 0))
    }
    ids: dict[str, int] = {
        chain: event_id
        for chain, event_id in session.execute(
            select(AuditEvent.chain, AuditEvent.id).where(
                tuple_(AuditEvent.chain, AuditEvent.seq).in_(
                    [(chain, head.seq) for chain, head in heads.items()]
                )
            )
        )
    }
    unsigned = Checkpoint(
        pins={
            chain: Pin(head.seq, ids[chain], head.last_hash)
            for chain, head in sorted(heads.items())
        },
        legacy_until_seq=legacy_until,
        written_dt=datetime.now(UTC),
        token=b"",
    )
    token = asyncio.run(
        timestamper.async_timestamp(hashlib.sha256(unsigned.body()).digest(), "sha256")
    )
    checkpoint = dataclasses.replace(unsigned, token=token.dump())
    if not _write_once(directory, checkpoint.file_name, checkpoint.to_file()):
        existing = last_checkpoint(directory)
        if existing is None or existing.pins != checkpoint.pins:
            raise CheckpointError(
                f"a different checkpoint of {checkpoint.events} events exists: "
                "the chain was rewritten"
            )
        return None  # another process pinned the same heads
    return checkpoint


# --- verifying ----------------------------------------------------------------------


@dataclass(frozen=True)
class AnchoredReport:
    """:func:`verify_anchored`'s answer."""

    events: int
    problem: str | None
    """Why not intact (``None``: intact)."""
    checkpoint: Checkpoint | None = None
    checkpoint_dt: datetime | None = None
    """The time the TSA attests for the checkpoint."""
    chains: int = 0

    @property
    def is_intact(self) -> bool:
        return self.problem is None


def verify_anchored(
    session: Session,
    key: bytes,
    directory: Path | None,
    trust_roots: Iterable[x509.Certificate] | None,
) -> AnchoredReport:
    """The chains verified under ``key`` and against the last checkpoint in ``directory``
    (its timestamp token verified against ``trust_roots``); without a directory, against
    the key alone."""
    anchor = checkpoint = checkpoint_dt = None
    if directory is not None:
        try:
            checkpoint = last_checkpoint(directory)
            if checkpoint is not None:
                checkpoint_dt = verify_token(checkpoint, trust_roots or ())
                anchor = checkpoint.anchor(checkpoint_dt)
        except CheckpointError as exc:
            return AnchoredReport(0, str(exc))
    report = verify_chain(session, key, anchor)
    if not report.is_intact:
        return AnchoredReport(report.events, report.problem)
    return AnchoredReport(report.events, None, checkpoint, checkpoint_dt, report.chains)
