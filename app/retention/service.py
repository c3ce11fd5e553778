"""Retention rules: what goes when its period ran out, in batches, each batch one commit
and one audit event (the rule and the counts, never the data).

Each rule is a :class:`Rule` in :data:`RULES`: its name, the setting that holds its period
in days (``app.config.Settings``), a function that selects the ids of what is due at a
cutoff (oldest first) and one that removes a batch of them. A rule's selection must not
find again what its removal removed, so that a second run changes nothing (a batch that
does is rolled back: :class:`RuleError`). Another rule is added with :func:`register` (its
period a new setting, with a default and a line in the README's retention table), e.g.
``register(Rule("access_log", "retention_access_log_days", "…", due, remove))``.

:data:`RULES` runs in order, each to the end before the next: the persons before the
errands (a person whose last errand goes today is pseudonymised on the next run), the
email bodies and scans before the errands that take their rows with them; so the report
(:func:`report`) counts exactly what :func:`apply` then removes.

The audit log keeps every event; the payload of the events about what goes is removed
(``app.audit.service.redact_events``) where its chain covers only a digest of it (every
event from migration 0024 on), so that ``behorighet audit verify`` still passes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from app.access.models import (
    PermissionRequest,
    Person,
    RoleGrant,
    RoleGrantCode,
    ServicePermission,
)
from app.api.models import ApiAccessLog
from app.audit.service import record_event, redact_events
from app.config import Settings
from app.db import utcnow
from app.eid.models import EidOrder, OrderPurpose
from app.intake.models import BatchState, PageStatus, PaperForm, ScanBatch, ScanPage
from app.notifications.models import EmailMessage
from app.privacy import access_log
from app.privacy.models import StaffAccessLog
from app.registrations.models import (
    CompletionRequest,
    Errand,
    ErrandComment,
    ErrandDocument,
    SigningInvitation,
    VerificationCheck,
)
from workflows.outbox import OutboxMessage
from workflows.states import ErrandState

ACTOR = "system:retention"
Counts = dict[str, int]


@dataclass(frozen=True)
class Rule:
    """One retention rule."""

    name: str
    """How reports and audit events name it (``closed_errands``)."""
    setting: str
    """The :class:`~app.config.Settings` attribute with its period in days."""
    description: str
    """What goes, for the report."""
    due: Callable[[datetime, datetime], Select[int]]
    """The ids of what is due (``due(cutoff, now)``) when what ended up to the cutoff goes,
    oldest first."""
    remove: Callable[[Session, list[int], datetime], Counts]
    """Removes these (due) ids at a time; returns what it removed, counted by kind."""


class RuleError(RuntimeError):
    """A rule's removal left what it removed due (a mistake in the rule)."""


RULES: list[Rule] = []
"""Every rule, in the order they run."""


def register(rule: Rule, *, before: str | None = None) -> Rule:
    """Add ``rule`` (last, or before the rule named ``before``)."""
    if any(r.name == rule.name for r in RULES):
        raise ValueError(f"a retention rule {rule.name!r} is registered already")
    at = next((i for i, r in enumerate(RULES) if r.name == before), len(RULES))
    RULES.insert(at, rule)
    return rule


def rule_named(name: str) -> Rule:
    for rule in RULES:
        if rule.name == name:
            return rule
    raise KeyError(f"no retention rule {name!r}: the rules are {', '.join(r.name for r in RULES)}")


def cutoff_of(rule: Rule, settings: Settings, now: datetime) -> datetime:
    """Everything of ``rule`` up to this time goes."""
    return now - timedelta(days=int(getattr(settings, rule.setting)))


# ---- the errands --------------------------------------------------------------------------


def remove_errands(session: Session, ids: list[int], now: datetime) -> Counts:
    """The errands and everything that is theirs: documents, comments, completion requests,
    checks, invitations, e-ID orders, emails, scanned pages and paper forms; the role grants
    they made (ended before, or the rule would not have chosen them) and their mention as
    the errand that ended a grant. The payload of their audit events is removed."""
    counts: Counts = {"errands": len(ids)}
    forms = select(PaperForm.id).where(PaperForm.errand_id.in_(ids))
    counts["scanned_pages"] = _deleted(
        session,
        delete(ScanPage).where(or_(ScanPage.errand_id.in_(ids), ScanPage.paper_form_id.in_(forms))),
    )
    _deleted(session, delete(PaperForm).where(PaperForm.errand_id.in_(ids)))
    counts["documents"] = _deleted(
        session, delete(ErrandDocument).where(ErrandDocument.errand_id.in_(ids))
    )
    for model in (ErrandComment, CompletionRequest, VerificationCheck, SigningInvitation):
        _deleted(session, delete(model).where(model.errand_id.in_(ids)))
    _deleted(session, delete(EidOrder).where(EidOrder.errand_id.in_(ids)))
    _deleted(session, delete(OutboxMessage).where(OutboxMessage.errand_id.in_(ids)))
    grants = list(session.scalars(select(RoleGrant.id).where(RoleGrant.source_errand_id.in_(ids))))
    counts["emails"] = _deleted(
        session,
        delete(EmailMessage).where(
            or_(EmailMessage.errand_id.in_(ids), EmailMessage.role_grant_id.in_(grants))
        ),
    )
    session.execute(
        update(RoleGrant)
        .where(RoleGrant.revoked_by_errand_id.in_(ids))
        .values(revoked_by_errand_id=None)
        .execution_options(synchronize_session=False)
    )
    if grants:
        _deleted(session, delete(RoleGrantCode).where(RoleGrantCode.role_grant_id.in_(grants)))
        counts["role_grants"] = _deleted(session, delete(RoleGrant).where(RoleGrant.id.in_(grants)))
    _deleted(session, delete(Errand).where(Errand.id.in_(ids)))
    counts["audit_payloads"] = redact_events(session, "errand", ids) + redact_events(
        session, "role_grant", grants
    )
    return counts


def _deleted(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _unsubmitted_drafts(cutoff: datetime, now: datetime) -> Select[int]:
    """Errands never submitted, started before the cutoff, that lapsed or were withdrawn,
    or whose own time ran out (a draft, or an invitation to sign it, lapses after this
    rule's ``RETENTION_DRAFTS_DAYS``; one sent back from a signing runs again): a draft the
    submitter can still finish stays."""
    return (
        select(Errand.id)
        .where(
            Errand.received_dt.is_(None),
            Errand.created_dt <= cutoff,
            or_(
                Errand.state.in_([ErrandState.EXPIRED, ErrandState.WITHDRAWN]),
                Errand.state.in_([ErrandState.DRAFT, ErrandState.AWAITING_SIGNATORY])
                & (Errand.expires_dt <= now),
            ),
        )
        .order_by(Errand.created_dt, Errand.id)
    )


def _ended_errands(*states: ErrandState) -> Callable[[datetime, datetime], Select[int]]:
    def due(cutoff: datetime, now: datetime) -> Select[int]:
        return (
            select(Errand.id)
            .where(
                Errand.state.in_(states),
                Errand.received_dt.is_not(None),
                Errand.ended_dt <= cutoff,
            )
            .order_by(Errand.ended_dt, Errand.id)
        )

    return due


def _closed_errands(cutoff: datetime, now: datetime) -> Select[int]:
    """Closed before the cutoff, unless a role it registered is in force or ended after
    the cutoff (the errand is that role's evidence)."""
    role_kept = exists().where(
        RoleGrant.source_errand_id == Errand.id,
        or_(RoleGrant.valid_to_dt.is_(None), RoleGrant.valid_to_dt > cutoff),
    )
    return _ended_errands(ErrandState.CLOSED)(cutoff, now).where(~role_kept)


# ---- scans, email bodies, persons -----------------------------------------------------------


def _scanned_originals(cutoff: datetime, now: datetime) -> Select[int]:
    """Batches whose every page is settled before the cutoff: filed in a paper form whose
    archive PDF was stored (confirmed) or set aside; a file that was no scan at all when
    refused before the cutoff."""
    unsettled = exists().where(
        ScanPage.batch_id == ScanBatch.id,
        ~or_(
            (ScanPage.status == PageStatus.DISCARDED) & (ScanPage.resolved_dt <= cutoff),
            (ScanPage.status == PageStatus.FILED)
            & exists().where(
                PaperForm.id == ScanPage.paper_form_id,
                PaperForm.document_id.is_not(None),
                PaperForm.confirmed_dt <= cutoff,
            ),
        ),
    )
    return (
        select(ScanBatch.id)
        .where(
            ScanBatch.content_removed_dt.is_(None),
            ScanBatch.finished_dt <= cutoff,
            or_(
                ScanBatch.state == BatchState.REJECTED,
                (ScanBatch.state == BatchState.DONE) & ~unsettled,
            ),
        )
        .order_by(ScanBatch.finished_dt, ScanBatch.id)
    )


def _remove_originals(session: Session, ids: list[int], now: datetime) -> Counts:
    session.execute(
        update(ScanBatch)
        .where(ScanBatch.id.in_(ids))
        .values(content=b"", content_removed_dt=now)
        .execution_options(synchronize_session=False)
    )
    return {"scanned_files": len(ids)}


def _email_bodies(cutoff: datetime, now: datetime) -> Select[int]:
    return (
        select(EmailMessage.id)
        .where(EmailMessage.body_removed_dt.is_(None), EmailMessage.sent_dt <= cutoff)
        .order_by(EmailMessage.sent_dt, EmailMessage.id)
    )


def _remove_bodies(session: Session, ids: list[int], now: datetime) -> Counts:
    session.execute(
        update(EmailMessage)
        .where(EmailMessage.id.in_(ids))
        .values(text_body="", html_body=None, body_removed_dt=now)
        .execution_options(synchronize_session=False)
    )
    return {"email_bodies": len(ids)}


def _persons_without_ties(cutoff: datetime, now: datetime) -> Select[int]:
    """Persons with no role or permission in force or ended after the cutoff, no errand
    they submitted or that is about them, no permission request open or made after the
    cutoff, and neither added nor logged in after the cutoff."""
    ties = (
        exists().where(
            RoleGrant.person_id == Person.id,
            or_(RoleGrant.valid_to_dt.is_(None), RoleGrant.valid_to_dt > cutoff),
        ),
        exists().where(
            ServicePermission.person_id == Person.id,
            or_(ServicePermission.valid_to_dt.is_(None), ServicePermission.valid_to_dt > cutoff),
        ),
        exists().where(Errand.submitted_by_id == Person.id),
        exists().where(Errand.subject_personnummer == Person.personnummer),
        exists().where(
            PermissionRequest.person_id == Person.id,
            or_(PermissionRequest.decided_dt.is_(None), PermissionRequest.created_dt > cutoff),
        ),
    )
    return (
        select(Person.id)
        .where(
            Person.pseudonymised_dt.is_(None),
            Person.created_dt <= cutoff,
            or_(Person.last_login_dt.is_(None), Person.last_login_dt <= cutoff),
            *(~tie for tie in ties),
        )
        .order_by(Person.id)
    )


def pseudonym(person_id: int) -> str:
    """The personnummer a pseudonymised person is left with: twelve digits that are no
    date of birth (year 00xx, month 00), unique by the id."""
    return f"00{person_id:010d}"


def _pseudonymise(session: Session, ids: list[int], now: datetime) -> Counts:
    """Their personnummer, names, email, login and language go; their ended roles'
    contact emails, their requests' messages, and the addresses and bodies of the emails
    about their roles and permissions too. The ids stay (the history of who had which role
    keeps its shape, without anyone in it). The payload of their audit events goes."""
    for person_id in ids:
        session.execute(
            update(Person)
            .where(Person.id == person_id)
            .values(
                personnummer=pseudonym(person_id),
                given_name="",
                family_name="",
                email=None,
                last_login_dt=None,
                language=None,
                pseudonymised_dt=now,
            )
            .execution_options(synchronize_session=False)
        )
    grants = select(RoleGrant.id).where(RoleGrant.person_id.in_(ids))
    permissions = select(ServicePermission.id).where(ServicePermission.person_id.in_(ids))
    for statement in (
        update(RoleGrant).where(RoleGrant.person_id.in_(ids)).values(contact_email=None),
        update(PermissionRequest).where(PermissionRequest.person_id.in_(ids)).values(message=""),
        update(EmailMessage)
        .where(
            or_(
                EmailMessage.role_grant_id.in_(grants),
                EmailMessage.service_permission_id.in_(permissions),
            )
        )
        .values(to_address="", to_name="", text_body="", html_body=None, body_removed_dt=now),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    return {"persons": len(ids), "audit_payloads": redact_events(session, "person", ids)}


register(
    Rule(
        "persons",
        "retention_persons_days",
        "persons with no role, permission or errand left: pseudonymised",
        _persons_without_ties,
        _pseudonymise,
    )
)
register(
    Rule(
        "email_bodies",
        "retention_email_bodies_days",
        "bodies of sent emails (the headers stay)",
        _email_bodies,
        _remove_bodies,
    )
)


def _login_orders(cutoff: datetime, now: datetime) -> Select[int]:
    """BankID login orders started before the cutoff, whatever became of them (an order
    lives minutes; the login itself stays in the audit log and ``Person.last_login_dt``)."""
    return (
        select(EidOrder.id)
        .where(EidOrder.purpose == OrderPurpose.LOGIN, EidOrder.started_dt <= cutoff)
        .order_by(EidOrder.started_dt, EidOrder.id)
    )


def _remove_login_orders(session: Session, ids: list[int], now: datetime) -> Counts:
    """The orders, with what BankID answered (the person's personnummer, name, signature,
    device address); the payload of their audit events (a failed order's) goes too."""
    return {
        "login_orders": _deleted(session, delete(EidOrder).where(EidOrder.id.in_(ids))),
        "audit_payloads": redact_events(session, "eid_order", ids),
    }


register(
    Rule(
        "eid_login_orders",
        "retention_eid_orders_days",
        "BankID login orders with what BankID answered (the logins stay in the audit log)",
        _login_orders,
        _remove_login_orders,
    )
)
register(
    Rule(
        "scanned_originals",
        "retention_scans_days",
        "scanned batches' original files, their forms' archive PDFs stored",
        _scanned_originals,
        _remove_originals,
    )
)
register(
    Rule(
        "drafts",
        "retention_drafts_days",
        "errands never submitted (drafts), lapsed or withdrawn",
        _unsubmitted_drafts,
        remove_errands,
    )
)
register(
    Rule(
        "rejected_withdrawn_errands",
        "retention_rejected_days",
        "rejected, withdrawn and stopped (paper lock) errands with their documents",
        _ended_errands(ErrandState.REJECTED, ErrandState.WITHDRAWN, ErrandState.STOPPED),
        remove_errands,
    )
)
register(
    Rule(
        "closed_errands",
        "retention_closed_days",
        "closed errands with their documents (none whose role is in force)",
        _closed_errands,
        remove_errands,
    )
)


# ---- the access log (issue 19 item 3) -----------------------------------------------------


def _log_cutoff(cutoff: datetime) -> datetime:
    """The rule's cutoff, but never an entry younger than the log's minimum (real time)."""
    return min(cutoff, utcnow() - access_log.MINIMUM_RETENTION)


def _staff_views(cutoff: datetime, now: datetime) -> Select[int]:
    return (
        select(StaffAccessLog.id)
        .where(StaffAccessLog.viewed_dt < _log_cutoff(cutoff))
        .order_by(StaffAccessLog.id)
    )


def _api_reads(cutoff: datetime, now: datetime) -> Select[int]:
    return (
        select(ApiAccessLog.id)
        .where(ApiAccessLog.created_dt < _log_cutoff(cutoff))
        .order_by(ApiAccessLog.id)
    )


def _just_after(session: Session, column: Any, id_column: Any, ids: list[int]) -> datetime:
    """A moment after the newest of these entries: the oldest ``len(ids)`` entries before it
    are exactly these (they are the oldest of their rule, in id order)."""
    newest = session.scalar(select(func.max(column)).where(id_column.in_(ids)))
    assert newest is not None
    return newest + timedelta(microseconds=1)


def _remove_staff_views(session: Session, ids: list[int], now: datetime) -> Counts:
    before = _just_after(session, StaffAccessLog.viewed_dt, StaffAccessLog.id, ids)
    return {"staff_views": access_log.delete_staff_views_before(session, before, limit=len(ids))}


def _remove_api_reads(session: Session, ids: list[int], now: datetime) -> Counts:
    before = _just_after(session, ApiAccessLog.created_dt, ApiAccessLog.id, ids)
    return {"api_reads": access_log.delete_api_reads_before(session, before, limit=len(ids))}


register(
    Rule(
        "staff_access_log",
        "retention_access_log_days",
        "the access log's entries of staff views of a person's data",
        _staff_views,
        _remove_staff_views,
    )
)
register(
    Rule(
        "api_access_log",
        "retention_access_log_days",
        "the access log's entries of API reads of a person's data",
        _api_reads,
        _remove_api_reads,
    )
)


# ---- running them ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """What a rule would remove now (the dry run)."""

    rule: str
    setting: str
    days: int
    cutoff: datetime
    items: int
    description: str


@dataclass
class Applied:
    """What a rule removed in a run."""

    rule: str
    items: int = 0
    batches: int = 0
    counts: Counts = field(default_factory=dict)


def report(session: Session, settings: Settings, now: datetime | None = None) -> list[Due]:
    """What each rule would remove now; removes nothing."""
    now = now or utcnow()
    due = []
    for rule in RULES:
        cutoff = cutoff_of(rule, settings, now)
        query = rule.due(cutoff, now).order_by(None).subquery()
        count = session.scalar(select(func.count()).select_from(query)) or 0
        due.append(
            Due(rule.name, rule.setting, getattr(settings, rule.setting), cutoff, count,
                rule.description)
        )  # fmt: skip
    return due


def apply_batch(
    session: Session, rule: Rule, settings: Settings, now: datetime | None = None
) -> Counts:
    """Remove one batch of ``rule``'s due items (at most ``retention_batch_size``) and write
    its audit event, in the caller's transaction (one commit per batch). Returns what went
    by kind, ``items`` the rule's (empty: nothing was due)."""
    now = now or utcnow()
    cutoff = cutoff_of(rule, settings, now)
    ids = list(
        session.scalars(
            rule.due(cutoff, now)
            .limit(settings.retention_batch_size)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return {}
    counts = {"items": len(ids), **rule.remove(session, ids, now)}
    due = rule.due(cutoff, now).order_by(None).subquery()
    again = session.scalar(select(func.count()).select_from(due).where(next(iter(due.c)).in_(ids)))
    if again:
        # A rule that finds what it removed would run forever: the batch is rolled back.
        raise RuleError(f"retention rule {rule.name!r} still finds {again} items it removed")
    record_event(
        session,
        actor=ACTOR,
        action="retention.applied",
        object_type="retention_rule",
        object_id=rule.name,
        data={
            "rule": rule.name,
            "days": getattr(settings, rule.setting),
            "cutoff": cutoff.isoformat(),
            **counts,
        },
    )
    return counts


def apply(
    unit_of_work: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    now: datetime | None = None,
    rules: list[Rule] | None = None,
) -> list[Applied]:
    """Every rule (or ``rules``) in order, batch after batch, each batch in its own unit of
    work (committed), until nothing is due. Safe to run anywhere at once (a batch skips
    rows another holds) and to run again (nothing is due the second time)."""
    now = now or utcnow()
    applied = []
    for rule in rules or RULES:
        done = Applied(rule.name)
        while True:
            with unit_of_work() as session:
                counts = apply_batch(session, rule, settings, now)
            if not counts:
                break
            done.items += counts["items"]
            done.batches += 1
            for kind, count in counts.items():
                if kind != "items":
                    done.counts[kind] = done.counts.get(kind, 0) + count
        applied.append(done)
    return applied
