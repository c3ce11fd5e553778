"""Retention (``app.retention``): each rule removes what its setting says is due, and
nothing else; a second run changes nothing; the dry run counts what the run removes; the
audit chain still verifies after the payloads went.

The clock is moved by putting each item just inside or just outside its period before the
run's time (``NOW``), one minute either side."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.access.models import Employer, Person, Role, RoleGrant, SelfService, ServicePermission
from app.api.models import ApiAccessLog, ApiClient
from app.audit import service as audit_service
from app.audit.models import AuditChainHead, AuditEvent
from app.audit.service import (
    GENESIS_HASH,
    KEYED_CHAIN,
    PAYLOAD_DIGEST,
    chain_key,
    chain_of,
    record_errand_event,
    record_event,
    redact_events,
    verify_chain,
)
from app.cli import main
from app.config import Settings
from app.core.agents import Agent, AgentKind
from app.db import utcnow
from app.eid.models import EidOrder, OrderPurpose, OrderStatus
from app.intake.models import (
    BatchSource,
    BatchState,
    PageOutcome,
    PageStatus,
    PaperForm,
    PaperFormState,
    ScanBatch,
    ScanPage,
)
from app.notifications.models import EmailMessage
from app.privacy.models import StaffAccessLog, ViewKind
from app.registrations.models import (
    Channel,
    DocumentKind,
    Errand,
    ErrandComment,
    ErrandDocument,
    ErrandKind,
    VerificationCheck,
)
from app.registrations.service import expire_lapsed, start_draft
from app.retention import service as retention
from tests.conftest import DAVID, INGRID, person_id, staff_id
from workflows import actors
from workflows.outbox import OutboxMessage
from workflows.runtime import Runtime
from workflows.state_machine import DRAFT_LAPSE_INFO, lapse_info
from workflows.states import ErrandState
from workflows.worker import run_maintenance

MINUTE = timedelta(minutes=1)
NOW = utcnow()
SUBJECT = "198507049859"  # written into every errand's audit payload, removed with it


def days(n: int) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def settings(runtime: Runtime) -> Settings:
    """The defaults, two items a batch (so that a run takes several)."""
    return dataclasses.replace(runtime.settings, retention_batch_size=2)


def _out(period_days: int) -> datetime:
    return NOW - days(period_days) - MINUTE


def _in(period_days: int) -> datetime:
    return NOW - days(period_days) + MINUTE


def _employer_id(session: Session) -> int:
    return session.scalars(select(Employer.id).where(Employer.orgnr == "2021004920")).one()


def _person(session: Session, n: int, **fields: Any) -> Person:
    fields.setdefault("created_dt", NOW - days(4000))
    person = Person(
        personnummer=f"1900010{n:05d}",
        given_name="Test",
        family_name=f"Person {n}",
        email=f"person{n}@example.se",
        **fields,
    )
    session.add(person)
    session.flush()
    return person


def _errand(
    session: Session,
    state: ErrandState,
    *,
    ended: datetime | None = None,
    created: datetime | None = None,
    expires: datetime | None = None,
    received: bool = True,
) -> Errand:
    """An errand as a row, with a document, a comment, an email and an audit event."""
    staff = staff_id(session, INGRID)
    decided = state in (ErrandState.CLOSED, ErrandState.REJECTED)
    errand = Errand(
        kind=ErrandKind.REGISTRATION,
        state=state,
        channel=Channel.E_SIGN if received else None,
        employer_id=_employer_id(session),
        subject_personnummer=SUBJECT,
        submitted_by_id=person_id(session, DAVID),
        created_dt=created or NOW - days(5000),
        received_dt=(created or NOW - days(5000)) if received else None,
        decided_dt=ended if decided else None,
        decided_by_staff_id=staff if decided else None,
        ended_dt=ended,
        expires_dt=expires,
    )
    session.add(errand)
    session.flush()
    session.add_all(
        [
            ErrandDocument(
                errand_id=errand.id,
                kind=DocumentKind.SIGNED,
                media_type="application/pdf",
                filename="a.pdf",
                sha256="0" * 64,
                content=b"%PDF",
            ),
            ErrandComment(errand_id=errand.id, staff_id=staff, body="Granskat."),
            _email(f"errand:{errand.id}", NOW, errand_id=errand.id),
        ]
    )
    record_errand_event(session, "system:test", errand.id, "noted", subject=SUBJECT)
    session.flush()
    return errand


def _email(key: str, sent: datetime | None, **fields: Any) -> EmailMessage:
    fields.setdefault("created_dt", sent or NOW)
    return EmailMessage(
        dedupe_key=key,
        template="role_granted",
        to_address="someone@example.se",
        to_name="Someone",
        language="sv",
        subject="Behörighet",
        text_body="Hej Someone, 198507049859",
        html_body="<p>Hej</p>",
        sent_dt=sent,
        attempts=1 if sent else 0,
        **fields,
    )


def _exists(session: Session, model: Any, id_: int) -> bool:
    return session.get(model, id_, populate_existing=True) is not None


def _report(session: Session, settings: Settings) -> dict[str, int]:
    return {due.rule: due.items for due in retention.report(session, settings, NOW)}


def _apply(runtime: Runtime, settings: Settings) -> dict[str, int]:
    return {done.rule: done.items for done in retention.apply(runtime.unit_of_work, settings, NOW)}


NOTHING = {rule.name: 0 for rule in retention.RULES}


@pytest.fixture
def nothing_due_before(session: Session, settings: Settings) -> Iterator[None]:
    """The demo seed has nothing due: every count below is the test's items."""
    assert _report(session, settings) == NOTHING
    yield


@pytest.mark.usefixtures("nothing_due_before")
def test_errands_go_when_their_period_ran_out_and_not_before(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    closed, rejected, drafts = (
        settings.retention_closed_days,
        settings.retention_rejected_days,
        settings.retention_drafts_days,
    )
    go = [
        _errand(session, ErrandState.CLOSED, ended=_out(closed)),
        _errand(session, ErrandState.REJECTED, ended=_out(rejected)),
        _errand(session, ErrandState.WITHDRAWN, ended=_out(rejected)),
        # a draft started before the period whose own time ran out, and one that lapsed
        _errand(
            session, ErrandState.DRAFT, created=_out(drafts), expires=NOW - MINUTE, received=False
        ),
        _errand(session, ErrandState.EXPIRED, created=_out(drafts), ended=NOW, received=False),
    ]
    role_gone = _errand(session, ErrandState.CLOSED, ended=_out(closed))
    stay = [
        _errand(session, ErrandState.CLOSED, ended=_in(closed)),
        _errand(session, ErrandState.REJECTED, ended=_in(rejected)),
        _errand(session, ErrandState.WITHDRAWN, ended=_in(rejected)),
        _errand(
            session, ErrandState.DRAFT, created=_in(drafts), expires=NOW - MINUTE, received=False
        ),
        # sent back from a signing: its own time runs again
        _errand(
            session, ErrandState.DRAFT, created=_out(drafts), expires=NOW + MINUTE, received=False
        ),
        _errand(session, ErrandState.IN_REVIEW, created=_out(closed)),
    ]
    role_kept = _errand(session, ErrandState.CLOSED, ended=_out(closed))
    grant = dict(employer_id=_employer_id(session), role=Role.ORDERER)
    ended_grant = RoleGrant(
        person_id=_person(session, 1, created_dt=NOW).id,
        source_errand_id=role_gone.id,
        valid_from_dt=NOW - days(5000),
        valid_to_dt=_out(closed),
        **grant,
    )
    kept_grant = RoleGrant(
        person_id=_person(session, 2, created_dt=NOW).id,
        source_errand_id=role_kept.id,
        valid_from_dt=NOW - days(5000),
        **grant,
    )
    session.add_all([ended_grant, kept_grant])
    session.commit()
    go.append(role_gone)
    stay.append(role_kept)

    due = _report(session, settings)
    assert due == NOTHING | {"drafts": 2, "rejected_withdrawn_errands": 2, "closed_errands": 2}
    applied = _apply(runtime, settings)
    assert applied == due

    for errand in go:
        assert not _exists(session, Errand, errand.id)
    for errand in stay:
        assert _exists(session, Errand, errand.id)
    gone_ids = [e.id for e in go]
    for model in (ErrandDocument, ErrandComment, EmailMessage):
        assert not session.scalar(
            select(func.count()).select_from(model).where(model.errand_id.in_(gone_ids))
        )
    assert not _exists(session, RoleGrant, ended_grant.id)
    assert _exists(session, RoleGrant, kept_grant.id)

    # The audit log keeps every event; the payload of the removed errands' events went.
    events = {
        int(e.object_id): e
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "errand.noted")
        ).all()
    }
    for errand in go:
        assert events[errand.id].data == {} and events[errand.id].redacted_dt is not None
    for errand in stay:
        assert events[errand.id].data == {"subject": SUBJECT}
    batches = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention.applied")
    ).all()
    assert sorted(e.object_id for e in batches) == [
        "closed_errands",
        "drafts",
        "rejected_withdrawn_errands",
    ]
    assert SUBJECT not in str([e.data for e in batches])
    assert verify_chain(session).is_intact

    assert _apply(runtime, settings) == NOTHING
    assert _report(session, settings) == NOTHING


@pytest.mark.usefixtures("nothing_due_before")
def test_persons_with_nothing_left_are_pseudonymised_after_the_period(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    period = settings.retention_persons_days
    employer = _employer_id(session)
    code_id = session.execute(
        text("SELECT id FROM employer_code WHERE employer_id = :e LIMIT 1"), {"e": employer}
    ).scalar_one()
    orderer = person_id(session, DAVID)

    def with_grant(n: int, valid_to: datetime | None) -> Person:
        person = _person(session, n)
        session.add(
            RoleGrant(
                person_id=person.id,
                employer_id=employer,
                role=Role.ADMINISTRATOR,
                granted_by_person_id=orderer,
                contact_email="work@example.se",
                valid_from_dt=NOW - days(4000),
                valid_to_dt=valid_to,
            )
        )
        return person

    logged_in_long_ago = _person(session, 10, last_login_dt=_out(period))
    role_ended_long_ago = with_grant(11, _out(period))
    logged_in_lately = _person(session, 20, last_login_dt=_in(period))
    role_ended_lately = with_grant(21, _in(period))
    role_in_force = with_grant(22, None)
    with_permission = _person(session, 23)
    session.add(
        ServicePermission(
            person_id=with_permission.id,
            employer_code_id=code_id,
            service=SelfService.INVOICES,
            valid_from_dt=NOW - days(4000),
        )
    )
    submitter = _person(session, 24)
    errand = _errand(session, ErrandState.IN_REVIEW)
    errand.submitted_by_id = submitter.id
    record_event(
        session,
        actor="system:test",
        action="person.noted",
        object_type="person",
        object_id=logged_in_long_ago.id,
        data={"personnummer": logged_in_long_ago.personnummer},
    )
    session.commit()

    assert _report(session, settings) == NOTHING | {"persons": 2}
    assert _apply(runtime, settings) == NOTHING | {"persons": 2}

    for person in (logged_in_long_ago, role_ended_long_ago):
        session.refresh(person)
        assert person.pseudonymised_dt is not None
        assert person.personnummer == retention.pseudonym(person.id)
        assert (person.given_name, person.family_name, person.email) == ("", "", None)
    grant = session.scalars(
        select(RoleGrant).where(RoleGrant.person_id == role_ended_long_ago.id)
    ).one()
    assert grant.contact_email is None  # the history stays, without the person in it
    for person in (logged_in_lately, role_ended_lately, role_in_force, with_permission, submitter):
        session.refresh(person)
        assert person.pseudonymised_dt is None and person.family_name.startswith("Person")
    noted = session.scalars(select(AuditEvent).where(AuditEvent.action == "person.noted")).one()
    assert noted.data == {}
    assert verify_chain(session).is_intact

    assert _apply(runtime, settings) == NOTHING


@pytest.mark.usefixtures("nothing_due_before")
def test_email_bodies_and_scanned_originals_go_after_their_periods(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    emails, scans = settings.retention_email_bodies_days, settings.retention_scans_days
    old_mail = _email("old", _out(emails))
    new_mail = _email("new", _in(emails))
    unsent = _email("unsent", None, created_dt=NOW - days(400))
    session.add_all([old_mail, new_mail, unsent])

    staff = staff_id(session, INGRID)
    errand = _errand(session, ErrandState.IN_REVIEW)
    document_id = session.scalars(
        select(ErrandDocument.id).where(ErrandDocument.errand_id == errand.id)
    ).one()

    def batch(n: int, state: BatchState, finished: datetime) -> ScanBatch:
        scanned = ScanBatch(
            sha256=f"{n:064x}",
            filename=f"scan{n}.pdf",
            size_bytes=4,
            source=BatchSource.UPLOAD,
            state=state,
            error_code="not_a_scan" if state is BatchState.REJECTED else None,
            finished_dt=finished,
            content=b"scan",
        )
        session.add(scanned)
        session.flush()
        return scanned

    def filed(scanned: ScanBatch, confirmed: datetime) -> None:
        form = PaperForm(
            errand_id=errand.id,
            state=PaperFormState.CONFIRMED,
            signature_present=True,
            signer_is_named=True,
            confirmed_by_staff_id=staff,
            confirmed_dt=confirmed,
            document_id=document_id,
        )
        session.add(form)
        session.flush()
        session.add(_page(scanned, PageStatus.FILED, errand_id=errand.id, paper_form_id=form.id))

    archived_long_ago = batch(1, BatchState.DONE, _out(scans))
    filed(archived_long_ago, _out(scans))
    archived_lately = batch(2, BatchState.DONE, _out(scans))
    filed(archived_lately, _in(scans))
    waiting_for_clerk = batch(3, BatchState.DONE, _out(scans))
    session.add(_page(waiting_for_clerk, PageStatus.NEEDS_CLERK))
    refused_long_ago = batch(4, BatchState.REJECTED, _out(scans))
    refused_lately = batch(5, BatchState.REJECTED, _in(scans))
    session.commit()

    assert _report(session, settings) == NOTHING | {"email_bodies": 1, "scanned_originals": 2}
    assert _apply(runtime, settings) == NOTHING | {"email_bodies": 1, "scanned_originals": 2}

    session.refresh(old_mail)
    assert (old_mail.text_body, old_mail.html_body) == ("", None)
    assert (old_mail.to_address, old_mail.subject) == ("someone@example.se", "Behörighet")
    for mail in (new_mail, unsent):
        session.refresh(mail)
        assert mail.text_body.startswith("Hej") and mail.body_removed_dt is None

    def content(scanned: ScanBatch) -> bytes:
        return session.scalars(select(ScanBatch.content).where(ScanBatch.id == scanned.id)).one()

    for gone in (archived_long_ago, refused_long_ago):
        assert content(gone) == b""
    for kept in (archived_lately, waiting_for_clerk, refused_lately):
        assert content(kept) == b"scan"
    assert _exists(session, ErrandDocument, document_id)  # the archive PDF stays
    assert _apply(runtime, settings) == NOTHING


def _page(scanned: ScanBatch, status: PageStatus, **fields: Any) -> ScanPage:
    return ScanPage(
        batch_id=scanned.id,
        page_index=0,
        outcome=PageOutcome.MATCHED if status is PageStatus.FILED else PageOutcome.NO_QR_CODE,
        status=status,
        form_page=1,
        form_pages=1,
        preview=b"jpeg",
        **fields,
    )


def test_a_rejected_errand_goes_with_all_it_gathered_two_years_on(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    """An errand made by the product's own steps (signed with BankID, verified, rejected
    with an email) and a clock moved past its period: it goes with every row it gathered."""
    from app.casework import service as casework
    from tests.factories import caseworker, in_review, public_base_url

    errand = in_review(session)
    agent = caseworker(session, INGRID)
    casework.claim(session, agent, errand)
    casework.reject_errand(
        session, agent, errand, casework.RejectionReason.OTHER, "Nej.", base_url=public_base_url()
    )
    session.commit()
    assert errand.ended_dt is not None
    rule = retention.rule_named("rejected_withdrawn_errands")
    just_inside = errand.ended_dt + days(settings.retention_rejected_days) - MINUTE
    cutoff = retention.cutoff_of(rule, settings, just_inside)
    assert errand.id not in session.scalars(rule.due(cutoff, just_inside)).all()

    later = errand.ended_dt + days(settings.retention_rejected_days) + MINUTE
    due = retention.report(session, settings, later)
    [applied] = retention.apply(runtime.unit_of_work, settings, later, rules=[rule])
    assert applied.items == next(d.items for d in due if d.rule == rule.name) >= 1
    assert not _exists(session, Errand, errand.id)
    for model in (ErrandDocument, EmailMessage, EidOrder, VerificationCheck, OutboxMessage):
        assert not session.scalar(
            select(func.count()).select_from(model).where(model.errand_id == errand.id)
        )
    assert verify_chain(session).is_intact


def test_a_removed_payload_is_the_only_change_the_audit_log_allows(session: Session) -> None:
    event = record_event(
        session, actor="system:test", action="t.e", object_type="t", object_id=1, data={"a": 1}
    )
    session.commit()
    for change in ("actor = 'x'", "data = '{\"a\": 2}'", "hash = 'x'"):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(f"UPDATE audit_event SET {change} WHERE id = {event.id}"))
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(f"DELETE FROM audit_event WHERE id = {event.id}"))
    assert redact_events(session, "t", [1]) == 1
    assert redact_events(session, "t", [1]) == 0
    session.commit()
    assert verify_chain(session).is_intact


def test_events_chained_before_the_digest_keep_their_payload_and_verify(
    session: Session,
) -> None:
    """Migration 0024: an event hashed over its payload (``key_version`` 2) keeps it, the
    trigger refuses its removal, and the chain goes on with digests and verifies."""
    chain, errand_id = chain_of(424242), 424242
    old = AuditEvent(
        chain=chain,
        seq=1,
        occurred_dt=NOW,
        actor="system:old",
        action="errand.noted",
        object_type="errand",
        object_id=str(errand_id),
        data={"subject": SUBJECT},
        prev_hash=GENESIS_HASH,
        key_version=KEYED_CHAIN,
    )
    old.hash = audit_service._keyed_digest(chain_key(session), GENESIS_HASH, old)
    session.add_all([old, AuditChainHead(chain=chain, seq=1, last_hash=old.hash)])
    session.flush()
    newer = record_event(
        session,
        actor="system:test",
        action="errand.noted",
        object_type="errand",
        object_id=errand_id,
        data={"subject": SUBJECT},
        employer_id=424242,
    )
    assert (newer.chain, newer.seq, newer.key_version) == (chain, 2, PAYLOAD_DIGEST)
    session.commit()

    assert redact_events(session, "errand", [errand_id]) == 1  # the newer one only
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(
            text("UPDATE audit_event SET data = '{}', data_salt = NULL, redacted_dt = now()"
                 " WHERE id = :i"),
            {"i": old.id},
        )  # fmt: skip
    session.commit()
    session.refresh(old)
    assert old.data == {"subject": SUBJECT}
    assert verify_chain(session).is_intact


def test_the_worker_schedules_retention_and_the_commands_report_and_apply(
    app: Flask, runtime: Runtime, session: Session
) -> None:
    errand = _errand(session, ErrandState.REJECTED, ended=_out(730) - days(1))
    session.commit()
    run_maintenance(runtime, apply_retention=True)
    queued = session.scalars(select(OutboxMessage.actor_name)).all()
    assert "apply_retention" in queued

    info = ScriptInfo(create_app=lambda: app)
    with app.app_context():
        report = CliRunner().invoke(main, ["retention", "report"], obj=info)
    assert report.exit_code == 0, report.output
    assert "rejected_withdrawn_errands" in report.output and "1 due" in report.output
    assert _exists(session, Errand, errand.id)  # a dry run

    actors.apply_retention()  # as the worker runs it
    assert not _exists(session, Errand, errand.id)
    with app.app_context():
        applied = CliRunner().invoke(main, ["retention", "apply"], obj=info)
        verified = CliRunner().invoke(main, ["audit", "verify"], obj=info)
    assert applied.exit_code == 0 and "In all 0 removed" in applied.output
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output


def test_a_retention_period_must_be_a_day_at_least() -> None:
    with pytest.raises(ValueError, match="RETENTION_CLOSED_DAYS must be at least 1"):
        Settings(retention_closed_days=0)


def test_a_rule_that_leaves_what_it_removed_due_changes_nothing(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    """A rule added later that forgets to remove stops at its first batch, rolled back."""
    errand = _errand(session, ErrandState.REJECTED, ended=_out(settings.retention_rejected_days))
    session.commit()
    real = retention.rule_named("rejected_withdrawn_errands")
    forgetful = dataclasses.replace(real, remove=lambda s, ids, now: {"errands": 0})
    with pytest.raises(retention.RuleError, match="still finds 1 items"):
        retention.apply(runtime.unit_of_work, settings, NOW, rules=[forgetful])
    assert _exists(session, Errand, errand.id)
    assert not session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "retention.applied")
    )


def test_the_access_log_goes_after_its_period_and_never_within_a_month(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    period = settings.retention_access_log_days
    client = ApiClient(name="retention-test", scopes="persons", token_sha256="1" * 64)
    session.add(client)
    session.flush()

    def view(at: datetime) -> StaffAccessLog:
        return StaffAccessLog(
            staff_id=staff_id(session, INGRID),
            subject_hash="0" * 64,
            what=ViewKind.ERRAND,
            viewed_dt=at,
        )

    def read(at: datetime) -> ApiAccessLog:
        return ApiAccessLog(client_id=client.id, endpoint="persons", created_dt=at)

    old_views = [view(_out(period)) for _ in range(3)]
    kept_view, old_read, kept_read = view(_in(period)), read(_out(period)), read(_in(period))
    session.add_all([*old_views, kept_view, old_read, kept_read])
    session.commit()

    expected = {"staff_access_log": 3, "api_access_log": 1}
    assert _report(session, settings) == NOTHING | expected
    assert _apply(runtime, settings) == NOTHING | expected  # in batches of two
    assert [_exists(session, StaffAccessLog, v.id) for v in old_views] == [False] * 3
    assert _exists(session, StaffAccessLog, kept_view.id)
    assert not _exists(session, ApiAccessLog, old_read.id)
    assert _exists(session, ApiAccessLog, kept_read.id)
    assert _apply(runtime, settings) == NOTHING

    # A day's setting takes all but a month: the entries kept above go, a recent one stays.
    recent = view(NOW - days(10))
    session.add(recent)
    session.commit()
    one_day = dataclasses.replace(settings, retention_access_log_days=1)
    assert _apply(runtime, one_day) == NOTHING | {"staff_access_log": 1, "api_access_log": 1}
    assert _exists(session, StaffAccessLog, recent.id)
    assert not _exists(session, StaffAccessLog, kept_view.id)


def test_a_draft_lapses_and_goes_after_the_one_setting(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    """``RETENTION_DRAFTS_DAYS`` says both when a draft lapses and when it is removed."""
    # The app's sessions carry the setting.
    assert runtime.session_factory.kw["info"][DRAFT_LAPSE_INFO] == days(
        runtime.settings.retention_drafts_days
    )
    ten_days = dataclasses.replace(settings, retention_drafts_days=10)
    with runtime.session_factory(info=lapse_info(ten_days)) as ours:
        david = Agent(AgentKind.PERSON, person_id(ours, DAVID))
        started = utcnow()
        draft = start_draft(ours, david, ErrandKind.REGISTRATION, "2021004920")
        assert draft.expires_dt is not None
        assert started + days(10) <= draft.expires_dt <= utcnow() + days(10)
        # The clock moved on ten days and a minute: it lapses, and the same rule removes it.
        draft.created_dt -= days(10) + MINUTE
        draft.expires_dt -= days(10) + MINUTE
        ours.commit()
        assert expire_lapsed(ours) >= 1
        ours.commit()
        assert draft.state is ErrandState.EXPIRED
        due = retention.rule_named("drafts").due(
            retention.cutoff_of(retention.rule_named("drafts"), ten_days, utcnow()), utcnow()
        )
        assert draft.id in ours.scalars(due).all()
        # Under the default (30 days) neither would have happened yet.
        assert (
            draft.id
            not in ours.scalars(
                retention.rule_named("drafts").due(utcnow() - days(30), utcnow())
            ).all()
        )


def _order(
    session: Session, purpose: OrderPurpose, started: datetime, errand_id: int | None = None
) -> EidOrder:
    order = EidOrder(
        purpose=purpose,
        order_ref=f"order-{purpose.value}-{started.timestamp()}-{errand_id}",
        auto_start_token="a",
        qr_start_token="q",
        qr_start_secret="s",
        browser_binding="b" * 64,
        status=OrderStatus.USED,
        started_dt=started,
        errand_id=errand_id,
        completion={"user": {"personalNumber": SUBJECT, "name": "Fredrik"}},
    )
    session.add(order)
    session.flush()
    return order


@pytest.mark.usefixtures("nothing_due_before")
def test_login_orders_go_after_their_period_and_nothing_else(
    session: Session, runtime: Runtime, settings: Settings
) -> None:
    period = settings.retention_eid_orders_days
    go = [
        _order(session, OrderPurpose.LOGIN, _out(period)),
        _order(session, OrderPurpose.LOGIN, _out(period) - days(400)),
    ]
    failed = go[1]
    failed.status = OrderStatus.FAILED
    record_event(
        session, actor="system:bankid", action="eid.order_failed", object_type="eid_order",
        object_id=failed.id, data={"purpose": "login", "hint_code": "userCancel"},
    )  # fmt: skip
    errand = _errand(session, ErrandState.IN_REVIEW)
    stay = [
        _order(session, OrderPurpose.LOGIN, _in(period)),
        # a signing's order goes with its errand, not after this period
        _order(session, OrderPurpose.SIGN, _out(period), errand.id),
    ]
    session.commit()

    due = _report(session, settings)
    assert due == NOTHING | {"eid_login_orders": 2}
    assert _apply(runtime, settings) == due
    for order in go:
        assert not _exists(session, EidOrder, order.id)
    for order in stay:
        assert _exists(session, EidOrder, order.id)
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.object_type == "eid_order", AuditEvent.object_id == str(failed.id)
        )
    ).one()
    assert event.data == {} and event.redacted_dt is not None
    [batch] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "retention.applied", AuditEvent.object_id == "eid_login_orders"
        )
    ).all()
    assert batch.data["login_orders"] == 2 and SUBJECT not in str(batch.data)
    assert verify_chain(session).is_intact
    assert _apply(runtime, settings) == NOTHING
