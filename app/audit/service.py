"""Write and verify the audit log: many hash chains, one per employer and a shared one.

Each event belongs to one chain (:func:`chain_of`): its employer's (``employer:<id>``), or
the shared chain (``''``) of the events about no employer. Each chain has its own head row:
writing an event locks only its chain's head, so two employers' events never wait on each
other. A transaction writes all its events into the chain of its first one (it locks one
head, so two transactions never wait on each other's heads in opposite orders).

Each event's ``hash`` is an HMAC-SHA256, under a key kept outside the database
(:meth:`Settings.audit_chain_key <app.config.Settings.audit_chain_key>`), of the previous
event of its chain's hash and the event's fields with the chain's name. Whoever holds the
database but not the key can change or delete events behind the triggers, but cannot
recompute a chain: :func:`verify_chain` finds the first event whose hash is not the key's.
The events chained before the key was introduced (migration 0015) keep their plain SHA-256
hashes (``key_version`` 0), allowed up to ``AuditChainHead.legacy_until_seq`` of the shared
chain only; the keyed events of before migration 0018 (``key_version`` 1) are the shared
chain's, hashed without its name. From migration 0024 (``key_version`` 3) the HMAC covers a
salted SHA-256 digest of the event's payload (``data_digest``) instead of the payload, and
:func:`verify_chain` checks the payload against the digest: retention can remove a payload
with its salt (:func:`redact_events`; the database's trigger allows that and no other
change) and the chain still verifies; the digest left cannot be matched against guesses.
A checkpoint outside the database (:mod:`app.audit.anchor`) pins every chain's head at a
time: a chain cut short or a boundary moved is found against it.

The key reaches :func:`record_event` with the session: the runtime's session factory
carries it in ``Session.info`` (:func:`session_info`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction

from app.access.models import Person
from app.audit.models import AuditChainHead, AuditEvent
from app.db import utcnow
from app.registrations.models import Errand
from app.staff.models import StaffMember

GENESIS_HASH = "0" * 64
LEGACY = 0
"""``key_version`` of an event hashed with plain SHA-256 (before migration 0015)."""
KEYED = 1
"""``key_version`` of an event of the shared chain hashed with HMAC-SHA256 under the audit
key, without the chain's name (before migration 0018)."""
KEYED_CHAIN = 2
"""``key_version`` of an event hashed with HMAC-SHA256 under the audit key, its chain's
name included."""
PAYLOAD_DIGEST = 3
"""``key_version`` of an event hashed with HMAC-SHA256 under the audit key, its chain's name
included, over a salted digest of its payload (``data_digest``) instead of the payload: the
payload can be removed (:func:`redact_events`) and the chain still verifies (migration
0024). Every event is written so from then on."""
KEY_INFO = "audit_chain_key"
"""Where a session carries the audit key (``Session.info``)."""
HEAD_INFO = "audit_chain_head_of_transaction"
"""Where a session keeps the chain head its current transaction holds (``Session.info``)."""
SHARED = ""
"""The shared chain: events about no employer, and every event before migration 0018."""


def chain_of(employer_id: int | None) -> str:
    """The chain of an event about ``employer_id`` (``None``: the shared chain)."""
    return SHARED if employer_id is None else f"employer:{employer_id}"


def describe_chain(chain: str) -> str:
    """How a report names a chain: "the shared chain", "the chain employer:3"."""
    return "the shared chain" if chain == SHARED else f"the chain {chain}"


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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _body(event: AuditEvent, *, with_chain: bool = False) -> str:
    chain = {"chain": event.chain} if with_chain else {}
    payload = (
        {"data_digest": event.data_digest}
        if event.key_version == PAYLOAD_DIGEST
        else {"data": event.data}
    )
    return _canonical(
        {
            **chain,
            "seq": event.seq,
            "occurred_dt": event.occurred_dt.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "object_type": event.object_type,
            "object_id": event.object_id,
            **payload,
        }
    )


def payload_digest(salt: str, data: dict[str, Any]) -> str:
    """What the chain of a ``key_version`` 3 event covers in place of its payload."""
    return hashlib.sha256((salt + _canonical(data)).encode()).hexdigest()


def _legacy_digest(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + _body(event)).encode()).hexdigest()


def _keyed_digest(key: bytes, prev_hash: str, event: AuditEvent) -> str:
    if event.key_version == KEYED:
        message = f"v{KEYED}:{prev_hash}{_body(event)}"
    elif event.key_version == PAYLOAD_DIGEST:
        message = f"v{PAYLOAD_DIGEST}:{prev_hash}{_body(event, with_chain=True)}"
    else:
        message = f"v{KEYED_CHAIN}:{prev_hash}{_body(event, with_chain=True)}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass
class _HeldHead:
    """The head of a chain a database transaction locked: its events advance ``seq`` and
    ``last_hash`` here, and the row is written once, at the commit
    (:func:`store_chain_head`), not once an event. Kept with the connection, so that every
    session in the same database transaction (the tests' sessions joined in one) shares it."""

    db_transaction: object
    """The connection's transaction that holds the lock."""
    chain: str
    seq: int
    last_hash: str
    stored_seq: int
    """The ``seq`` the row holds in this transaction."""
    stale: bool = False
    """A rollback took some of its events (a savepoint): read again before use."""


def _held_head(session: Session) -> _HeldHead | None:
    """The head the session's current transaction writes to, if it wrote an event."""
    held = session.info.get(HEAD_INFO)
    if (
        isinstance(held, tuple)
        and session.in_transaction()
        and held[0] is session.get_transaction()
    ):
        return held[1]
    return None


def _chain_for(
    session: Session,
    object_type: str,
    object_id: str | int,
    data: dict[str, Any],
    employer_id: int | None,
) -> str:
    """The chain of an event about ``employer_id``, an employer, ``data["employer_id"]`` or
    an errand's employer, else the shared chain."""
    if employer_id is None:
        if object_type == "employer":
            employer_id = int(object_id)
        elif isinstance(data.get("employer_id"), int):
            employer_id = data["employer_id"]
        elif object_type == "errand":
            errand = session.get(Errand, int(object_id))
            employer_id = errand.employer_id if errand is not None else None
    return chain_of(employer_id)


def _lock_head(session: Session, chain: str) -> _HeldHead:
    """``chain``'s head, locked to the end of the transaction (made when it is new), held
    for the transaction's further events (shared with the other sessions of the same
    database transaction)."""
    connection = session.connection()
    db_transaction = connection.get_transaction()
    heads = connection.info.setdefault(HEAD_INFO, {})
    held = heads.get(chain)
    if not (isinstance(held, _HeldHead) and held.db_transaction is db_transaction):
        for gone in [c for c, h in heads.items() if h.db_transaction is not db_transaction]:
            del heads[gone]  # another transaction's, on this pooled connection before
        seq, last_hash = _locked_row(session, chain)
        held = _HeldHead(db_transaction, chain, seq, last_hash, seq)
        heads[chain] = held
    elif held.stale:
        _read_again(session, held)
    transaction = session.get_transaction()
    assert transaction is not None  # begun by session.connection()
    session.info[HEAD_INFO] = (transaction, held)
    return held


def _locked_row(session: Session, chain: str) -> tuple[int, str]:
    """``chain``'s head row (seq, hash), locked (made when it is new)."""
    locked = (
        select(AuditChainHead.seq, AuditChainHead.last_hash)
        .where(AuditChainHead.chain == chain)
        .with_for_update()
    )
    row = session.execute(locked).one_or_none()
    if row is None:
        # A concurrent transaction making the same head wins; this one then waits for it.
        insert = (
            postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        session.execute(
            insert(AuditChainHead)
            .values(chain=chain, seq=0, last_hash=GENESIS_HASH, legacy_until_seq=0)
            .on_conflict_do_nothing(index_elements=["chain"])
        )
        row = session.execute(locked).one()
    return int(row.seq), str(row.last_hash)


def _read_again(session: Session, held: _HeldHead) -> None:
    """After a savepoint's rollback: the head row (as stored) and the newest event of the
    chain the transaction still has."""
    seq, last_hash = _locked_row(session, held.chain)
    newest = session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == held.chain, AuditEvent.seq > seq)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).one_or_none()
    held.stored_seq = seq
    held.seq, held.last_hash = (newest.seq, newest.hash) if newest is not None else (seq, last_hash)
    held.stale = False


def store_chain_head(session: Session) -> None:
    """Write the held chain head's row (its events' newest ``seq`` and hash), if it moved.
    Runs before every commit; whoever reads the heads in the same transaction calls it
    first."""
    held = _held_head(session)
    if held is None:
        return
    if held.stale:
        _read_again(session, held)
    if held.seq == held.stored_seq:
        return
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.chain == held.chain)
        .values(seq=held.seq, last_hash=held.last_hash)
        .execution_options(synchronize_session=False)
    )
    held.stored_seq = held.seq


@sa_event.listens_for(Session, "before_commit")
def _store_before_commit(session: Session) -> None:
    store_chain_head(session)


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_savepoint_rollback(session: Session, previous: SessionTransaction) -> None:
    # A savepoint rolled back took its events; so did a session's own transaction when it
    # was itself a savepoint of a wider database transaction (the tests' joined sessions).
    held = session.info.get(HEAD_INFO)
    if isinstance(held, tuple):
        held[1].stale = True


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    data: dict[str, Any] | None = None,
    employer_id: int | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction (it commits or rolls back with the change),
    to the chain of ``employer_id`` (default: :func:`_chain_for`), or to the chain the
    transaction wrote to before: a transaction writes to one chain, so that two never wait
    on each other's heads in opposite orders.

    The head is locked at the transaction's first event and written once, at the commit
    (not locked, read and written for every event)."""
    key = chain_key(session)
    data = json.loads(json.dumps(data or {}, default=str))
    held = _held_head(session)
    if held is None:
        session.connection()  # the transaction begun, so that it can be told apart
        held = _lock_head(session, _chain_for(session, object_type, object_id, data, employer_id))
    elif held.stale:
        _read_again(session, held)
    salt = secrets.token_hex(16)
    event = AuditEvent(
        chain=held.chain,
        seq=held.seq + 1,
        occurred_dt=utcnow(),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=data,
        data_salt=salt,
        data_digest=payload_digest(salt, data),
        prev_hash=held.last_hash,
        key_version=PAYLOAD_DIGEST,
    )
    event.hash = _keyed_digest(key, held.last_hash, event)
    held.seq, held.last_hash = event.seq, event.hash
    session.add(event)
    # Inserted now: the database has every event the head counts, so that the head can be
    # read again after a rollback (and the event's id is known).
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


def authentic_errand_event(session: Session, errand_id: int, action: str) -> AuditEvent | None:
    """The errand's newest ``errand.<action>`` event, if its keyed hash shows a holder of
    the audit key wrote exactly this content (whether it still links into its chain is
    ``audit verify``'s question); ``None`` if there is none or it does not."""
    event = session.scalar(
        select(AuditEvent)
        .where(
            AuditEvent.object_type == "errand",
            AuditEvent.object_id == str(errand_id),
            AuditEvent.action == f"errand.{action}",
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if event is None or event.key_version not in (KEYED, KEYED_CHAIN, PAYLOAD_DIGEST):
        return None
    expected = _keyed_digest(chain_key(session), event.prev_hash, event)
    if not hmac.compare_digest(expected, event.hash):
        return None
    return event if event.key_version != PAYLOAD_DIGEST or _check_payload(event) is None else None


@dataclass(frozen=True)
class Pin:
    """A chain's event as a checkpoint pins it."""

    seq: int
    event_id: int
    hash: str


@dataclass(frozen=True)
class Anchor:
    """The chains' heads known from outside the database (a verified checkpoint)."""

    pins: dict[str, Pin]
    legacy_until_seq: int
    described: str
    """How a refusal names it, e.g. "the checkpoint of 2026-12-02 20:15:00 UTC"."""


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_broken_seq: int | None
    reason: str | None
    anchored_events: int | None = None
    """The events the checkpoint pins, when the chains were checked against one."""
    chain: str | None = None
    """The chain that is broken."""
    chains: int = 0

    @property
    def is_intact(self) -> bool:
        return self.first_broken_seq is None

    @property
    def problem(self) -> str:
        """Where and why the log is broken, for a person."""
        return (
            f"broken at event {self.first_broken_seq} of {describe_chain(self.chain or SHARED)}"
            f": {self.reason}"
        )


def _check_event(event: AuditEvent, key: bytes, prev_hash: str, legacy_until: int) -> str | None:
    """Why ``event`` does not follow ``prev_hash`` under ``key``, or ``None``."""
    if event.prev_hash != prev_hash:
        return "link to the previous event is broken"
    if event.key_version == PAYLOAD_DIGEST:
        if not hmac.compare_digest(_keyed_digest(key, prev_hash, event), event.hash):
            return "event content does not match its keyed hash (rewritten without the key?)"
        return _check_payload(event)
    if event.key_version == KEYED_CHAIN or (event.key_version == KEYED and event.chain == SHARED):
        if not hmac.compare_digest(_keyed_digest(key, prev_hash, event), event.hash):
            return "event content does not match its keyed hash (rewritten without the key?)"
        return None
    if event.key_version == KEYED:
        return "a keyed event without its chain's name outside the shared chain"
    if event.key_version == LEGACY and event.seq <= legacy_until and event.chain == SHARED:
        if _legacy_digest(prev_hash, event) != event.hash:
            return "event content does not match its hash"
        return None
    if event.key_version == LEGACY:
        return (
            f"unkeyed event after the legacy boundary (event {legacy_until}): "
            "rewritten without the key?"
        )
    return f"unknown key version {event.key_version}"


def _check_payload(event: AuditEvent) -> str | None:
    """Why a ``key_version`` 3 event's payload is not the one its chain covers, or ``None``
    (a payload retention removed is not checked: only its digest is left)."""
    if event.redacted_dt is not None:
        return None if event.data == {} and event.data_salt is None else "a removed payload left"
    if event.data_salt is None or event.data_digest is None:
        return "payload without its digest"
    if not hmac.compare_digest(payload_digest(event.data_salt, event.data), event.data_digest):
        return "event payload does not match its digest"
    return None


def redact_events(session: Session, object_type: str, object_ids: Iterable[int | str]) -> int:
    """Remove the payload of every event about these objects that has a digest in its chain
    (``key_version`` 3): the data and its salt go, the digest stays, and the chain verifies.
    The events chained before migration 0024 hash their payload itself and keep it. Returns
    how many events lost their payload (none the second time)."""
    ids = [str(i) for i in object_ids]
    if not ids:
        return 0
    result = session.execute(
        update(AuditEvent)
        .where(
            AuditEvent.object_type == object_type,
            AuditEvent.object_id.in_(ids),
            AuditEvent.key_version == PAYLOAD_DIGEST,
            AuditEvent.redacted_dt.is_(None),
        )
        .values(data={}, data_salt=None, redacted_dt=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _verify_one(
    session: Session,
    key: bytes,
    chain: str,
    legacy_until: int,
    pin: Pin | None,
    anchor: Anchor | None,
    batch_size: int,
) -> tuple[int, int | None, str | None]:
    """One chain in order: (events, first broken event, why)."""
    prev_hash = GENESIS_HASH
    count = 0
    while True:
        batch = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == chain, AuditEvent.seq > count)
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        for event in batch:
            if event.seq != count + 1:
                return count, count + 1, f"event {count + 1} is missing"
            problem = _check_event(event, key, prev_hash, legacy_until)
            if problem is not None:
                return count, event.seq, problem
            if (
                pin is not None
                and anchor is not None
                and event.seq == pin.seq
                and (event.hash != pin.hash or event.id != pin.event_id)
            ):
                return count, event.seq, f"event {event.seq} differs from {anchor.described}"
            prev_hash = event.hash
            count += 1
        session.expunge_all()
    if pin is not None and anchor is not None and count < pin.seq:
        return (
            count,
            count + 1,
            f"{describe_chain(chain)} ends at event {count}, but {anchor.described} pins "
            f"event {pin.seq}: events were removed",
        )
    head = session.get(AuditChainHead, chain, populate_existing=True)
    if head is None and count:
        return count, count + 1, "events without a chain head"
    if head is not None and (head.seq != count or (count and head.last_hash != prev_hash)):
        return count, count + 1, f"chain head says {head.seq} events, found {count}"
    return count, None, None


def verify_chain(
    session: Session,
    key: bytes | None = None,
    anchor: Anchor | None = None,
    batch_size: int = 5000,
) -> ChainReport:
    """Recompute every hash of every chain in order under ``key`` (default: the session's);
    report the first event that does not match, or where a chain contradicts ``anchor`` (a
    checkpoint from outside the database: an event it pins changed, a chain cut short
    before it, the legacy boundary moved)."""
    key = key if key is not None else chain_key(session)
    store_chain_head(session)
    shared = session.get(AuditChainHead, SHARED, populate_existing=True)
    legacy_until = shared.legacy_until_seq if shared is not None else 0
    if anchor is not None and anchor.legacy_until_seq != legacy_until:
        return ChainReport(
            0,
            min(anchor.legacy_until_seq, legacy_until) + 1,
            f"the legacy boundary is event {legacy_until}, {anchor.described} says "
            f"{anchor.legacy_until_seq}",
            chain=SHARED,
        )
    chains = set(session.scalars(select(AuditChainHead.chain))) | set(
        session.scalars(select(AuditEvent.chain).distinct())
    )
    pins = anchor.pins if anchor is not None else {}
    total = 0
    for chain in sorted(chains | set(pins)):
        count, broken, reason = _verify_one(
            session,
            key,
            chain,
            legacy_until if chain == SHARED else 0,
            pins.get(chain),
            anchor,
            batch_size,
        )
        total += count
        if broken is not None:
            return ChainReport(total, broken, reason, chain=chain, chains=len(chains))
    anchored = sum(pin.seq for pin in pins.values()) if anchor is not None else None
    return ChainReport(total, None, None, anchored, chains=len(chains))


def history(session: Session, errand: Errand) -> list[AuditEvent]:
    """Every recorded change of the errand, oldest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == "errand", AuditEvent.object_id == str(errand.id))
            .order_by(AuditEvent.id)
        )
    )


_ACTOR = re.compile(r"^(staff|person):(\d+)(?: for (staff|person):(\d+))?$")


def actor_names(session: Session, events: list[AuditEvent]) -> dict[str, str]:
    """Who each event's actor label names: staff and persons by name, the system's parts
    as such (``staff:3 for person:7``, a clerk who typed in a person's paper form, is the
    clerk's name with the person's in brackets)."""
    names: dict[str, str] = {}
    for actor in {event.actor for event in events}:
        match = _ACTOR.match(actor)
        if match is None:
            names[actor] = actor.replace("system:", "system: ")
            continue
        parts = [_name(session, match.group(1), int(match.group(2)))]
        if match.group(3):
            parts.append(_name(session, match.group(3), int(match.group(4) or 0)))
        names[actor] = parts[0] + (f" ({parts[1]})" if len(parts) > 1 else "")
    return names


def _name(session: Session, kind: str, id_: int) -> str:
    if kind == "staff":
        staff = session.get(StaffMember, id_)
        return staff.name if staff else f"staff:{id_}"
    person = session.get(Person, id_)
    return person.full_name if person else f"person:{id_}"
