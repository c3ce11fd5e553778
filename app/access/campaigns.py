"""The recurring review (issue 18 item 4): once every ``REVIEW_INTERVAL_DAYS`` each
employer's orderers get a campaign asking them to confirm or remove each administrator
and each user's service permissions.

The campaign's clock, from its start (``Schedule``, from the settings):

- **start**: the items (every active service permission and administrator's role at the
  employer) are recorded and the orderers emailed;
- **reminders** ``REVIEW_REMINDER_DAYS`` before the deadline, while something is open;
- **escalation** at the deadline (``REVIEW_PERIOD_DAYS``): the employer's signatories
  (signatory register) and orderers are told what is still open;
- **final warning** ``REVIEW_FINAL_WARNING_DAYS`` before the ending: to the same, and to
  each person whose permissions or role would end;
- **ending** ``REVIEW_GRACE_DAYS`` after the deadline (never sooner than the final
  warning's notice after it): what nobody confirmed ends through the same revoke path as
  a removal by hand (``app.access.management``: audit, change log, an email to the person).

A campaign closes once nothing is open (confirmed, or removed by hand anywhere). The
scheduled step (``run_campaigns``) locks each employer or campaign it works on and checks
again under the lock, so a run twice, or at once in two workers, does everything once; at
most one open campaign per employer is also a unique index. Plain functions, no Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.sql.elements import ColumnElement

from app.access import inactivity, management
from app.access import service as access
from app.access.models import (
    ORDERER_ROLES,
    Employer,
    EmployerCode,
    Person,
    ReviewCampaign,
    ReviewDecision,
    ReviewItem,
    ReviewItemKind,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.audit.service import record_event
from app.config import Settings
from app.core.agents import Agent
from app.core.i18n import SOURCE_LANG, long_date, translations
from app.core.ids import format_orgnr
from app.db import utcnow
from app.notifications.notices import N_, SERVICE_NAMES
from app.notifications.queue import queue_email
from app.registers.service import LocalSignatoryRegister
from app.safeguards.models import PaperLock

log = structlog.get_logger(__name__)

COMPONENT = management.REVIEW_CAMPAIGN
"""The system actor that starts campaigns and ends what nobody confirmed."""
BATCH = 200
"""Employers started, and campaigns moved on, per run; the next run takes the rest."""
REVIEW_PATH = "/hantera-behorigheter/granska"
ADMINISTRATOR_ROLE = N_("Rollen som administratör")
_Held = tuple[SelfService | None, str]
"""A service (None: the administrator's role) and its code."""


def campaign_path(employer_id: int) -> str:
    return f"{REVIEW_PATH}/{employer_id}/arlig"


@dataclass(frozen=True)
class Schedule:
    interval: timedelta
    period: timedelta
    reminders: tuple[timedelta, ...]
    """Before the deadline, longest first."""
    grace: timedelta
    final_warning: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(
            interval=timedelta(days=settings.review_interval_days),
            period=timedelta(days=settings.review_period_days),
            reminders=tuple(
                timedelta(days=d) for d in sorted(set(settings.review_reminder_days), reverse=True)
            ),
            grace=timedelta(days=settings.review_grace_days),
            final_warning=timedelta(days=settings.review_final_warning_days),
        )


# ---- what is open ---------------------------------------------------------------------


def _still_held() -> ColumnElement[bool]:
    """The item's permission or role is still in force."""
    held = aliased(ServicePermission)
    role = aliased(RoleGrant)
    return or_(
        select(held.id)
        .where(held.id == ReviewItem.service_permission_id, held.valid_to_dt.is_(None))
        .correlate(ReviewItem)
        .exists(),
        select(role.id)
        .where(role.id == ReviewItem.role_grant_id, role.valid_to_dt.is_(None))
        .correlate(ReviewItem)
        .exists(),
    )


def _open() -> ColumnElement[bool]:
    return and_(ReviewItem.decision.is_(None), _still_held())


@dataclass(frozen=True)
class Progress:
    total: int = 0
    confirmed: int = 0
    removed: int = 0
    """Removed by hand while the campaign ran (or ended otherwise)."""
    ended: int = 0
    """Ended by the campaign, nobody having confirmed them."""
    open: int = 0

    @property
    def done_share(self) -> float:
        return 1.0 if not self.total else (self.total - self.open) / self.total


def progress_of(session: Session, campaign_ids: Collection[int]) -> dict[int, Progress]:
    """Each campaign's items by outcome, counted by the database."""
    if not campaign_ids:
        return {}
    decided = ReviewItem.decision
    removed = or_(decided == ReviewDecision.GONE, and_(decided.is_(None), ~_still_held()))
    rows = session.execute(
        select(
            ReviewItem.campaign_id,
            func.count(),
            func.sum(case((decided == ReviewDecision.CONFIRMED, 1), else_=0)),
            func.sum(case((removed, 1), else_=0)),
            func.sum(case((decided == ReviewDecision.ENDED, 1), else_=0)),
            func.sum(case((_open(), 1), else_=0)),
        )
        .where(ReviewItem.campaign_id.in_(sorted(campaign_ids)))
        .group_by(ReviewItem.campaign_id)
    )
    return {row[0]: Progress(*(int(v or 0) for v in row[1:])) for row in rows}


def open_campaign(session: Session, employer_id: int) -> ReviewCampaign | None:
    return session.scalar(
        select(ReviewCampaign).where(
            ReviewCampaign.employer_id == employer_id, ReviewCampaign.closed_dt.is_(None)
        )
    )


def latest_campaign(session: Session, employer_id: int) -> ReviewCampaign | None:
    return session.scalar(
        select(ReviewCampaign)
        .where(ReviewCampaign.employer_id == employer_id)
        .order_by(ReviewCampaign.started_dt.desc(), ReviewCampaign.id.desc())
        .limit(1)
    )


# ---- starting -------------------------------------------------------------------------


def _holds_a_role(roles: Collection[Role]) -> ColumnElement[bool]:
    return exists().where(
        RoleGrant.employer_id == Employer.id,
        RoleGrant.role.in_(list(roles)),
        RoleGrant.valid_to_dt.is_(None),
    )


def _due_employers(session: Session, now: datetime, schedule: Schedule) -> list[Employer]:
    """Employers added ``interval`` ago or more, with an orderer and something to review,
    whose last campaign started ``interval`` ago or more and is closed; those another run
    holds are skipped."""
    recent = exists().where(
        ReviewCampaign.employer_id == Employer.id,
        or_(
            ReviewCampaign.closed_dt.is_(None),
            ReviewCampaign.started_dt > now - schedule.interval,
        ),
    )
    has_users = exists().where(
        EmployerCode.employer_id == Employer.id,
        ServicePermission.employer_code_id == EmployerCode.id,
        ServicePermission.valid_to_dt.is_(None),
    )
    return list(
        session.scalars(
            select(Employer)
            .where(
                Employer.created_dt <= now - schedule.interval,
                ~recent,
                _holds_a_role(ORDERER_ROLES),
                or_(has_users, _holds_a_role({Role.ADMINISTRATOR})),
            )
            .order_by(Employer.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True, key_share=True)
        )
    )


def start_campaign(
    session: Session, employer: Employer, now: datetime, schedule: Schedule, *, base_url: str
) -> ReviewCampaign:
    """A campaign for the employer from ``now``: its items recorded, its orderers emailed.
    The caller holds the employer's lock and has checked none is open."""
    campaign = ReviewCampaign(
        employer_id=employer.id,
        started_dt=now,
        deadline_dt=now + schedule.period,
        ends_dt=now + schedule.period + schedule.grace,
    )
    session.add(campaign)
    session.flush()
    session.execute(
        insert(ReviewItem).from_select(
            ["campaign_id", "kind", "person_id", "service_permission_id", "employer_code_id"],
            select(
                literal(campaign.id),
                literal(ReviewItemKind.SERVICE_PERMISSION.value),
                ServicePermission.person_id,
                ServicePermission.id,
                ServicePermission.employer_code_id,
            )
            .join(EmployerCode, EmployerCode.id == ServicePermission.employer_code_id)
            .where(
                EmployerCode.employer_id == employer.id, ServicePermission.valid_to_dt.is_(None)
            ),
        )
    )
    session.execute(
        insert(ReviewItem).from_select(
            ["campaign_id", "kind", "person_id", "role_grant_id"],
            select(
                literal(campaign.id),
                literal(ReviewItemKind.ADMINISTRATOR.value),
                RoleGrant.person_id,
                RoleGrant.id,
            ).where(
                RoleGrant.employer_id == employer.id,
                RoleGrant.role == Role.ADMINISTRATOR,
                RoleGrant.valid_to_dt.is_(None),
            ),
        )
    )
    progress = progress_of(session, [campaign.id]).get(campaign.id, Progress())
    _audit(session, campaign, "review_campaign.started", items=progress.total)
    _email_reviewers(
        session, campaign, "review_started", "start", progress, base_url, signatories=False
    )
    return campaign


def start_due(
    session: Session, schedule: Schedule, now: datetime | None = None, *, base_url: str
) -> int:
    """Start the campaigns due now (none when the interval is 0). Returns how many."""
    now = now or utcnow()
    if schedule.interval <= timedelta(0):
        return 0
    started = 0
    for employer in _due_employers(session, now, schedule):
        start_campaign(session, employer, now, schedule, base_url=base_url)
        started += 1
    session.flush()
    return started


# ---- moving on ------------------------------------------------------------------------


def advance(
    session: Session,
    campaign: ReviewCampaign,
    schedule: Schedule,
    now: datetime,
    *,
    base_url: str,
) -> None:
    """Whatever of the campaign's clock is due at ``now``: a reminder, the escalation, the
    final warning, the ending; or it closes when nothing is open. Each once (the caller
    holds the campaign's row)."""
    progress = progress_of(session, [campaign.id]).get(campaign.id, Progress())
    if progress.open == 0:
        _close(session, campaign, now, progress)
        return
    if now < campaign.deadline_dt:
        due = sum(1 for before in schedule.reminders if now >= campaign.deadline_dt - before)
        if due > campaign.reminders_sent:
            campaign.reminders_sent = due
            _email_reviewers(
                session, campaign, "review_reminder", f"reminder{due}", progress, base_url
            )
            _audit(session, campaign, "review_campaign.reminded", open=progress.open)
        return
    if campaign.escalated_dt is None:
        campaign.escalated_dt = now
        _email_reviewers(
            session, campaign, "review_escalation", "escalation", progress, base_url, True
        )
        _audit(session, campaign, "review_campaign.escalated", open=progress.open)
    if campaign.final_warning_dt is None:
        if now < campaign.ends_dt - schedule.final_warning:
            return
        campaign.final_warning_dt = now
        campaign.ends_dt = max(campaign.ends_dt, now + schedule.final_warning)
        _email_reviewers(
            session, campaign, "review_final_warning", "final", progress, base_url, True
        )
        _warn_people(session, campaign, base_url)
        _audit(session, campaign, "review_campaign.final_warning", open=progress.open)
    if now >= campaign.ends_dt:
        campaign.ended_count = _end_unconfirmed(session, campaign, now, base_url)
        _close(session, campaign, now, progress_of(session, [campaign.id])[campaign.id])


def _close(session: Session, campaign: ReviewCampaign, now: datetime, progress: Progress) -> None:
    session.execute(
        update(ReviewItem)
        .where(
            ReviewItem.campaign_id == campaign.id,
            ReviewItem.decision.is_(None),
            ~_still_held(),
        )
        .values(decision=ReviewDecision.GONE, decided_dt=now)
        .execution_options(synchronize_session=False)
    )
    campaign.closed_dt = now
    session.flush()
    _audit(
        session,
        campaign,
        "review_campaign.closed",
        confirmed=progress.confirmed,
        removed=progress.removed,
        ended=progress.ended,
    )


def run_campaigns(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Scheduled: start the campaigns due, then move each open one on. Safe to run anywhere
    at once and twice. Returns how many campaigns it started."""
    now = now or utcnow()
    schedule = Schedule.from_settings(settings)
    base_url = settings.public_base_url
    started = start_due(session, schedule, now, base_url=base_url)
    campaigns = session.scalars(
        select(ReviewCampaign)
        .where(ReviewCampaign.closed_dt.is_(None), ReviewCampaign.started_dt < now)
        .order_by(ReviewCampaign.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for campaign in campaigns:
        advance(session, campaign, schedule, now, base_url=base_url)
    session.flush()
    return started


def _end_unconfirmed(
    session: Session, campaign: ReviewCampaign, now: datetime, base_url: str
) -> int:
    """End every open item, one change (and one email) per person, as a removal by hand
    would, by the system. Returns how many permissions and roles ended."""
    items = session.scalars(
        select(ReviewItem).where(ReviewItem.campaign_id == campaign.id, _open())
    ).all()
    if not items:
        return 0
    actor = management.system_actor(session, campaign.employer_id, COMPONENT, base_url)
    permissions = {
        p.id: p
        for p in session.scalars(
            select(ServicePermission).where(
                ServicePermission.id.in_([i.service_permission_id for i in items])
            )
        )
    }
    by_person: dict[int, list[tuple[SelfService, int]]] = {}
    ended = 0
    for item in items:
        if item.service_permission_id is not None:
            permission = permissions[item.service_permission_id]
            by_person.setdefault(item.person_id, []).append(
                (permission.service, permission.employer_code_id)
            )
        elif item.role_grant_id is not None:
            management.remove_administrator(session, actor, item.role_grant_id)
            ended += 1
        item.decision = ReviewDecision.ENDED
        item.decided_dt = now
    for person_id, revoke in sorted(by_person.items()):
        _, gone = management.change_permissions(session, actor, person_id, revoke=revoke)
        ended += len(gone)
    session.flush()
    _audit(session, campaign, "review_campaign.ended", ended=ended)
    return ended


# ---- the reviewer's page and actions --------------------------------------------------


@dataclass
class ReviewRow:
    person_id: int
    name: str
    personnummer: str
    grant_id: int | None
    """An administrator's role under review (shown to orderers only)."""
    open: list[_Held]
    """What is still to confirm: services with their codes (the role: no service)."""
    confirmed: int = 0
    removed: int = 0
    ended: int = 0

    @property
    def is_administrator(self) -> bool:
        return self.grant_id is not None


def _visible_items(
    campaign: ReviewCampaign, code_ids: Collection[int] | None, orderer: bool
) -> ColumnElement[bool]:
    """The items a reviewer sees: the permissions on their codes; administrators' roles
    to orderers only (rule 2)."""
    permissions: ColumnElement[bool] = ReviewItem.kind == ReviewItemKind.SERVICE_PERMISSION
    if code_ids is not None:
        permissions = and_(permissions, ReviewItem.employer_code_id.in_(sorted(code_ids)))
    if orderer:
        permissions = or_(permissions, ReviewItem.kind == ReviewItemKind.ADMINISTRATOR)
    return and_(ReviewItem.campaign_id == campaign.id, permissions)


def review_rows(
    session: Session, campaign: ReviewCampaign, code_ids: Collection[int] | None, orderer: bool
) -> list[ReviewRow]:
    """The people the reviewer reviews in the campaign (administrators first, then users,
    by name), each with what is still open and what was done."""
    code = aliased(EmployerCode)
    rows: dict[tuple[int, bool], ReviewRow] = {}
    query = (
        select(ReviewItem, Person, ServicePermission.service, code.code, _still_held())
        .join(Person, Person.id == ReviewItem.person_id)
        .outerjoin(ServicePermission, ServicePermission.id == ReviewItem.service_permission_id)
        .outerjoin(code, code.id == ReviewItem.employer_code_id)
        .where(_visible_items(campaign, code_ids, orderer))
        .order_by(
            ReviewItem.kind == ReviewItemKind.SERVICE_PERMISSION,
            Person.family_name,
            Person.given_name,
            Person.id,
            code.code,
            ServicePermission.service,
        )
    )
    for item, person, service, code_text, held in session.execute(query):
        is_role = item.kind is ReviewItemKind.ADMINISTRATOR
        row = rows.setdefault(
            (person.id, is_role),
            ReviewRow(
                person.id,
                person.full_name,
                person.personnummer,
                item.role_grant_id if is_role else None,
                [],
            ),
        )
        if item.decision is ReviewDecision.CONFIRMED:
            row.confirmed += 1
        elif item.decision is ReviewDecision.ENDED:
            row.ended += 1
        elif item.decision is ReviewDecision.GONE or not held:
            row.removed += 1
        else:
            row.open.append((None if is_role else service, code_text or ""))
    return list(rows.values())


def confirm(
    session: Session,
    agent: Agent,
    campaign: ReviewCampaign,
    *,
    code_ids: Collection[int] | None,
    orderer: bool,
    person_ids: Iterable[int] = (),
    grant_ids: Iterable[int] = (),
) -> int:
    """The reviewer confirms that the users still need their permissions (those on the
    reviewer's codes) and, an orderer, that the administrators still need their role.
    Nobody confirms their own. A user's confirmation also clears their inactivity mark
    (``inactivity.confirm_still_needed``). Returns how many items were confirmed."""
    assert agent.id is not None
    people, grants = sorted(set(person_ids)), sorted(set(grant_ids))
    if grants and not orderer:
        raise NotAReviewer()
    now = utcnow()
    confirmed = 0
    if people:
        inactivity.confirm_still_needed(
            session, agent, campaign.employer_id, people, code_ids=code_ids
        )
        confirmed += _decide(
            session,
            campaign,
            agent.id,
            now,
            and_(
                ReviewItem.person_id.in_(people),
                _visible_items(campaign, code_ids, orderer=False),
            ),
        )
    if grants:
        holders = set(
            session.scalars(
                select(ReviewItem.person_id).where(
                    ReviewItem.campaign_id == campaign.id, ReviewItem.role_grant_id.in_(grants)
                )
            )
        )
        if agent.id in holders:
            raise inactivity.NotYourOwn()
        if len(holders) != len(grants):
            raise inactivity.NotAUser()
        if not _within_scope(session, grants, code_ids):
            raise NotAReviewer()
        confirmed += _decide(session, campaign, agent.id, now, ReviewItem.role_grant_id.in_(grants))
    if confirmed:
        _audit(
            session,
            campaign,
            "review_campaign.confirmed",
            actor=agent.audit_label,
            person_ids=people,
            grant_ids=grants,
            items=confirmed,
        )
    return confirmed


class NotAReviewer(Exception):
    """Only an orderer confirms an administrator (rule 2)."""


def _within_scope(session: Session, grant_ids: list[int], code_ids: Collection[int] | None) -> bool:
    """An orderer on chosen codes confirms only administrators whose codes are all among
    them, as only they may change or remove them (``Authority.may_manage_administrator``)."""
    if code_ids is None:
        return True
    grants = session.scalars(
        select(RoleGrant).where(RoleGrant.id.in_(grant_ids)).options(selectinload(RoleGrant.codes))
    )
    return all(not g.is_all_codes and {c.id for c in g.codes} <= set(code_ids) for g in grants)


def _decide(session: Session, campaign: ReviewCampaign, by: int, now: datetime, which: Any) -> int:
    items = session.scalars(
        select(ReviewItem).where(ReviewItem.campaign_id == campaign.id, _open(), which)
    ).all()
    for item in items:
        item.decision = ReviewDecision.CONFIRMED
        item.decided_dt = now
        item.decided_by_person_id = by
    session.flush()
    return len(items)


# ---- SPV's overview -------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    employer_id: int
    orgnr: str
    name: str
    campaign: ReviewCampaign
    progress: Progress

    @property
    def stage(self) -> str:
        """started, reminded, escalated, final_warning, closed."""
        c = self.campaign
        if c.closed_dt is not None:
            return "closed"
        if c.final_warning_dt is not None:
            return "final_warning"
        if c.escalated_dt is not None:
            return "escalated"
        return "reminded" if c.reminders_sent else "started"


def campaigns_by_employer(
    session: Session, *, limit: int | None = None
) -> tuple[int, list[CampaignRow]]:
    """Each employer's latest campaign with its progress: the open ones first (the
    nearest deadline first), then the closed ones (the latest first). Returns the number
    of employers and the first ``limit`` rows."""
    latest = (
        select(func.max(ReviewCampaign.id)).group_by(ReviewCampaign.employer_id).scalar_subquery()
    )
    query = (
        select(ReviewCampaign, Employer)
        .join(Employer, Employer.id == ReviewCampaign.employer_id)
        .where(ReviewCampaign.id.in_(latest))
        .order_by(
            ReviewCampaign.closed_dt.is_not(None),
            case((ReviewCampaign.closed_dt.is_(None), ReviewCampaign.deadline_dt)),
            ReviewCampaign.closed_dt.desc(),
            Employer.name,
        )
    )
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    found = session.execute(query.limit(limit)).all()
    progress = progress_of(session, [c.id for c, _ in found])
    return total, [
        CampaignRow(e.id, e.orgnr, e.name, c, progress.get(c.id, Progress())) for c, e in found
    ]


# ---- audit and emails ------------------------------------------------------------------


def _audit(
    session: Session, campaign: ReviewCampaign, action: str, *, actor: str = "", **data: Any
) -> None:
    record_event(
        session,
        actor=actor or Agent.system(COMPONENT).audit_label,
        action=action,
        object_type="review_campaign",
        object_id=campaign.id,
        data={"employer_id": campaign.employer_id, **data},
    )


@dataclass(frozen=True)
class _Recipient:
    address: str
    name: str
    language: str


def _orderers(session: Session, employer_id: int) -> list[_Recipient]:
    found = []
    for grant in access.active_grants(session, employer_id):
        if grant.role not in ORDERER_ROLES:
            continue
        address = grant.contact_email or grant.person.email
        if address:
            found.append(
                _Recipient(address, grant.person.full_name, grant.person.language or SOURCE_LANG)
            )
        else:
            log.warning("email.no_address", person_id=grant.person_id, grant_id=grant.id)
    return found


def _signatories(session: Session, employer: Employer) -> list[_Recipient]:
    """The employer's signatories (signatory register) SPV has an address for: those known
    as people with an email, and the address given with the employer's paper lock."""
    numbers = [s.personnummer for s in LocalSignatoryRegister(session).signatories(employer.orgnr)]
    found = [
        _Recipient(p.email, p.full_name, p.language or SOURCE_LANG)
        for p in session.scalars(select(Person).where(Person.personnummer.in_(numbers)))
        if p.email
    ]
    lock = session.get(PaperLock, employer.id)
    if lock is not None and lock.contact_email:
        found.append(_Recipient(lock.contact_email, lock.locked_by.full_name, SOURCE_LANG))
    if not found:
        log.warning("review_campaign.no_signatory_address", employer_id=employer.id)
    return found


def _email_each(
    session: Session,
    campaign: ReviewCampaign,
    recipients: list[_Recipient],
    template: str,
    step: str,
    context: Callable[[str], dict[str, object]],
    base_url: str,
) -> int:
    seen: set[str] = set()
    employer = campaign.employer
    queued = 0
    for recipient in recipients:
        if recipient.address.lower() in seen:
            continue
        seen.add(recipient.address.lower())
        lang = recipient.language
        email = queue_email(
            session,
            base_url=base_url,
            dedupe_key=f"{template}:{campaign.id}:{step}:{recipient.address.lower()}",
            to=recipient.address,
            name=recipient.name,
            language=lang,
            template=template,
            context={
                "employer": employer.name,
                "orgnr": format_orgnr(employer.orgnr),
                "deadline": long_date(campaign.deadline_dt, lang),
                "ends": long_date(campaign.ends_dt, lang),
                "path": campaign_path(employer.id),
                **context(lang),
            },
        )
        queued += email is not None
    return queued


def _email_reviewers(
    session: Session,
    campaign: ReviewCampaign,
    template: str,
    step: str,
    progress: Progress,
    base_url: str,
    signatories: bool = False,
) -> int:
    """The orderers (and, at the escalation and the final warning, the signatories)."""
    recipients = _orderers(session, campaign.employer_id)
    if signatories:
        recipients += _signatories(session, campaign.employer)
    return _email_each(
        session,
        campaign,
        recipients,
        template,
        step,
        lambda _lang: {"total": progress.total, "open": progress.open},
        base_url,
    )


def _warn_people(session: Session, campaign: ReviewCampaign, base_url: str) -> int:
    """The final warning to each person whose permissions or role would end: what, and
    when, so that they can ask their employer to confirm them."""
    items = session.execute(
        select(ReviewItem, Person, ServicePermission.service, EmployerCode, RoleGrant)
        .join(Person, Person.id == ReviewItem.person_id)
        .outerjoin(ServicePermission, ServicePermission.id == ReviewItem.service_permission_id)
        .outerjoin(EmployerCode, EmployerCode.id == ReviewItem.employer_code_id)
        .outerjoin(RoleGrant, RoleGrant.id == ReviewItem.role_grant_id)
        .where(ReviewItem.campaign_id == campaign.id, _open())
        .order_by(Person.id, EmployerCode.code, ServicePermission.service)
    )
    people: dict[int, tuple[Person, str | None, list[_Held]]] = {}
    for _item, person, service, code, grant in items:
        address = (grant.contact_email if grant else None) or person.email
        entry = people.setdefault(person.id, (person, address, []))
        entry[2].append((service, f"{code.code} ({code.name})" if code else ""))
    queued = 0
    for person, address, what in people.values():
        if not address:
            log.warning("email.no_address", person_id=person.id)
            continue

        def lines(
            lang: str, what: list[tuple[SelfService | None, str]] = what
        ) -> dict[str, object]:
            gettext = translations(lang).gettext
            return {
                "path": "/hantera-behorigheter",
                "lines": [
                    f"{gettext(SERVICE_NAMES[s])}, {c}" if s else gettext(ADMINISTRATOR_ROLE)
                    for s, c in what
                ],
            }

        queued += _email_each(
            session,
            campaign,
            [_Recipient(address, person.full_name, person.language or SOURCE_LANG)],
            "review_final_warning_person",
            "final",
            lines,
            base_url,
        )
    return queued
