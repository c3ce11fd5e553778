"""Write and verify the audit chain.

Each event's ``hash`` is an HMAC-SHA256, under a key kept outside the database
(:meth:`Settings.audit_chain_key <app.config.Settings.audit_chain_key>`), of the previous
event's hash and the event's fields. Whoever holds the database but not the key can change
or delete events behind the triggers, but cannot recompute the chain: :func:`verify_chain`
finds the first event whose hash is not the key's. The events chained before the key was
introduced (migration 0015) keep their plain SHA-256 hashes (``key_version`` 0), allowed up
to ``AuditChainHead.legacy_until_seq`` only. A checkpoint outside the database
(:mod:`app.audit.anchor`) pins the head at a time: a chain cut short or a boundary moved is
found against it.

The key reaches :func:`record_event` with the session: the runtime's session factory
carries it in ``Session.info`` (:func:`session_info`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditChainHead, AuditEvent
from app.db import utcnow

GENESIS_HASH = "0" * 64
LEGACY = 0
"""``key_version`` of an event hashed with plain SHA-256 (before migration 0015)."""
KEYED = 1
"""``key_version`` of an event hashed with HMAC-SHA256 under the audit key."""
KEY_INFO = "audit_chain_key"
"""Where a session carries the audit key (``Session.info``)."""


class AuditKeyMissingError(RuntimeError):
    """A session without the audit key tried to write an audit event."""


def session_info(key: bytes) -> dict[str, Any]:
    """``Session.info`` carrying the audit key, for a session factory."""
    return {KEY_INFO: key}


def chain_key(session: Session) -> bytes:
    """The audit key the session carries (see :func:`session_info`)."""
    key = session.info.get(KEY_INFO)
    if not isinstance(key, bytes) or not key:
        raise AuditKeyMissingError("the session carries no audit key (Session.info)")
    return key


def _body(event: AuditEvent) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "occurred_dt": event.occurred_dt.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "data": event.data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def _legacy_digest(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + _body(event)).encode()).hexdigest()


def _keyed_digest(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    message = f"v{KEYED}:{prev_hash}{_body(event)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction (it commits or rolls back with the change)."""
    key = chain_key(session)
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        head = AuditChainHead(id=1, seq=0, last_hash=GENESIS_HASH, legacy_until_seq=0)
        session.add(head)
    event = AuditEvent(
        seq=head.seq + 1,
        occurred_dt=utcnow(),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head.last_hash,
        key_version=KEYED,
    )
    event.hash = _keyed_digest(key, head.last_hash, event)
    head.seq = event.seq
    head.last_hash = event.hash
    session.add(event)
    session.flush()
    return event


def record_errand_event(
    session: Session, actor: str, errand_id: int, action: str, **data: Any
) -> AuditEvent:
    """An event about an errand (``errand.<verb>``), in the caller's transaction."""
    return record_event(
        session,
        actor=actor,
        action=f"errand.{action}",
        object_type="errand",
        object_id=errand_id,
        data=data,
    )


@dataclass(frozen=True)
class Anchor:
    """A point of the chain known from outside the database (a verified checkpoint)."""

    seq: int
    event_id: int
    hash: str
    legacy_until_seq: int
    described: str
    """How a refusal names it, e.g. "the checkpoint of 2026-12-02 20:15:00 UTC"."""


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_broken_seq: int | None
    reason: str | None
    anchored_seq: int | None = None
    """The event the checkpoint pins, when the chain was checked against one."""

    @property
    def is_intact(self) -> bool:
        return self.first_broken_seq is None


def _check_event(event: AuditEvent, key: bytes, prev_hash: str, legacy_until: int) -> str | None:
    """Why ``event`` does not follow ``prev_hash`` under ``key``, or ``None``."""
    if event.prev_hash != prev_hash:
        return "link to the previous event is broken"
    if event.key_version == KEYED:
        if not hmac.compare_digest(_keyed_digest(key, prev_hash, event), event.hash):
            return "event content does not match its keyed hash (rewritten without the key?)"
        return None
    if event.key_version == LEGACY and event.seq <= legacy_until:
        if _legacy_digest(prev_hash, event) != event.hash:
            return "event content does not match its hash"
        return None
    if event.key_version == LEGACY:
        return (
            f"unkeyed event after the legacy boundary (event {legacy_until}): "
            "rewritten without the key?"
        )
    return f"unknown key version {event.key_version}"


def verify_chain(
    session: Session,
    key: bytes | None = None,
    anchor: Anchor | None = None,
    batch_size: int = 5000,
) -> ChainReport:
    """Recompute every hash in order under ``key`` (default: the session's); report the
    first event that does not match, or where the chain contradicts ``anchor`` (a
    checkpoint from outside the database: its event changed, the chain cut short before
    it, the legacy boundary moved)."""
    key = key if key is not None else chain_key(session)
    head = session.get(AuditChainHead, 1)
    legacy_until = head.legacy_until_seq if head is not None else 0
    if anchor is not None and anchor.legacy_until_seq != legacy_until:
        return ChainReport(
            0,
            min(anchor.legacy_until_seq, legacy_until) + 1,
            f"the legacy boundary is event {legacy_until}, {anchor.described} says "
            f"{anchor.legacy_until_seq}",
        )
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                return ChainReport(count, expected_seq, f"event {expected_seq} is missing")
            problem = _check_event(event, key, prev_hash, legacy_until)
            if problem is not None:
                return ChainReport(count, event.seq, problem)
            if (
                anchor is not None
                and event.seq == anchor.seq
                and (event.hash != anchor.hash or event.id != anchor.event_id)
            ):
                return ChainReport(
                    count, event.seq, f"event {event.seq} differs from {anchor.described}"
                )
            prev_hash = event.hash
            expected_seq += 1
            count += 1
            last_seq = event.seq
        session.expunge_all()
    if anchor is not None and count < anchor.seq:
        return ChainReport(
            count,
            count + 1,
            f"the chain ends at event {count}, but {anchor.described} pins event "
            f"{anchor.seq}: events were removed",
        )
    head = session.get(AuditChainHead, 1)
    if head is not None and head.seq != count:
        return ChainReport(count, count + 1, f"chain head says {head.seq} events, found {count}")
    return ChainReport(count, None, None, anchor.seq if anchor is not None else None)
