"""Write and verify the audit chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditChainHead, AuditEvent
from app.db import utcnow

GENESIS_HASH = "0" * 64


def _digest(prev_hash: str, event: AuditEvent) -> str:
    body = json.dumps(
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
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


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
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    ).one_or_none()
    if head is None:
        head = AuditChainHead(id=1, seq=0, last_hash=GENESIS_HASH)
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
    )
    event.hash = _digest(head.last_hash, event)
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
class ChainReport:
    events: int
    first_broken_seq: int | None
    reason: str | None

    @property
    def is_intact(self) -> bool:
        return self.first_broken_seq is None


def verify_chain(session: Session, batch_size: int = 5000) -> ChainReport:
    """Recompute every hash in order; report the first event that does not match."""
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
            if event.prev_hash != prev_hash:
                return ChainReport(count, event.seq, "link to the previous event is broken")
            if _digest(prev_hash, event) != event.hash:
                return ChainReport(count, event.seq, "event content does not match its hash")
            prev_hash = event.hash
            expected_seq += 1
            count += 1
            last_seq = event.seq
        session.expunge_all()
    head = session.get(AuditChainHead, 1)
    if head is not None and head.seq != count:
        return ChainReport(count, count + 1, f"chain head says {head.seq} events, found {count}")
    return ChainReport(count, None, None)
