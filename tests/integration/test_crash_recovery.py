"""A process killed with SIGKILL while an errand is in flight loses nothing and applies
nothing twice (DESIGN.md §7): the demo process (in-process broker) in the apply step, and a
worker process (Redis; RabbitMQ for one step) in each pipeline step, reading a scanned batch
included.

Each step is stopped in the middle of its transaction from outside, without hooks in the
product: a lock on a table the step writes to near its end, or a mail server that does not
answer. The worker is killed there, and a new one must finish the step, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from flask import Flask
from psycopg import sql
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.access.models import RoleGrant
from app.audit.models import AuditEvent
from app.audit.service import verify_chain
from app.casework import service as casework
from app.core.agents import Agent
from app.db import Base, utcnow
from app.documents.pki import accepted_seal
from app.intake import queries, reading
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
from app.notifications.sender import message_id
from app.registrations.models import (
    CheckOutcome,
    DocumentKind,
    Errand,
    ErrandDocument,
    VerificationCheck,
)
from devtools.mail_sink.models import SinkMessage
from devtools.mail_sink.sink import MailSink, _Handler
from devtools.plugin import StandIns
from tests import scan_corpus as corpus
from tests.conftest import INGRID, TEST_AUDIT_KEY, TEST_DATABASE_URL
from tests.factories import (
    caseworker,
    claim_and_approve,
    clerk,
    in_review,
    printed,
    printed_for_post,
    public_base_url,
    received_by_esignature,
    registration_draft,
    verifiers,
)
from tests.support import (
    PG_ADMIN_URL,
    PG_TEST_DB,
    RABBITMQ_URL,
    REDIS_URL,
    TEST_PROCESS,
    WebSession,
    free_port,
    require_service,
    wait_for,
)
from workflows import pipeline
from workflows.outbox import OutboxMessage, add_message
from workflows.runtime import Runtime
from workflows.states import ErrandState

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]
BEHORIGHET = str(Path(sys.executable).with_name("behorighet"))
PROVVERKET = "2021004920"


def _errand_in_review(runtime: Runtime) -> Errand:
    with runtime.unit_of_work() as session:
        return in_review(session)


class EmployerLock:
    """Holds Provverket's row lock from outside, as the apply step takes it, so that step
    blocks mid-way."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB)

    def __enter__(self) -> EmployerLock:
        self.conn.execute(
            "SELECT id FROM employer WHERE orgnr = %s FOR NO KEY UPDATE", (PROVVERKET,)
        )
        return self

    def someone_is_waiting(self) -> bool:
        with psycopg.connect(PG_ADMIN_URL) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'",
                (PG_TEST_DB,),
            ).fetchone()
        return bool(row and row[0])

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [BEHORIGHET, *args],
        env={**os.environ, **TEST_PROCESS, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(process)


def _state(session: Session, errand_id: int) -> ErrandState:
    session.expire_all()
    return session.get(Errand, errand_id).state  # type: ignore[union-attr]


def _grants(session: Session, errand_id: int) -> int:
    return (
        session.scalar(
            select(func.count(RoleGrant.id)).where(RoleGrant.source_errand_id == errand_id)
        )
        or 0
    )


def test_demo_killed_while_applying_loses_nothing(
    runtime: Runtime,
    session: Session,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    errand = _errand_in_review(runtime)
    port = free_port()
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "BROKER_URL": "stub://",
        "BEHORIGHET_INSTANCE_DIR": str(tmp_path),
        "MAIL_URL": f"smtp://127.0.0.1:{free_port()}",
        "SECRET_KEY": "crash-test",
        "AUDIT_KEY": TEST_AUDIT_KEY,
    }
    log = tmp_path / "demo.log"
    demo = _spawn(["demo", "--port", str(port)], env, log)
    processes.append(demo)
    web = WebSession(f"http://127.0.0.1:{port}")
    wait_for(lambda: _healthy(web), timeout=30, message="the demo to serve")

    web.login_with_simulated_bankid(INGRID, lambda: _newest_order_ref(session))
    with EmployerLock() as lock:
        web.post(
            f"/handlaggning/{errand.reference}/ta",
            {},
            f"/handlaggning/{errand.reference}",
        )
        web.post(
            f"/handlaggning/{errand.reference}/godkann",
            {},
            f"/handlaggning/{errand.reference}",
        )
        wait_for(lock.someone_is_waiting, message="the apply step to block on the lock")
        _kill(demo)  # SIGKILL in the middle of the apply step
    assert _state(session, errand.id) is ErrandState.APPROVED
    assert _grants(session, errand.id) == 0

    demo = _spawn(["demo", "--port", str(port)], env, log)
    processes.append(demo)
    wait_for(
        lambda: _state(session, errand.id) is ErrandState.APPLIED,
        timeout=30,
        message="the restarted demo to finish the apply step",
    )
    assert _grants(session, errand.id) == 1
    assert verify_chain(session).is_intact


# --- a worker killed in the middle of each pipeline step --------------------------------

KILLED, RESTARTED = "crash-test-killed-worker", "crash-test-restarted-worker"
"""The ``application_name`` (libpq's ``PGAPPNAME``) of each worker's database sessions."""
TEST_DB = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_TEST_DB
SYSTEM = Agent.system("test")


@pytest.fixture
def broker_url(request: pytest.FixtureRequest) -> str:
    url: str = getattr(request, "param", REDIS_URL)
    require_service("RabbitMQ" if url.startswith("amqp") else "Redis")
    return url


def _probe(query: str, *params: object) -> int:
    """``query``'s single number, from a connection of its own."""
    with psycopg.connect(TEST_DB) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _backends(app_name: str, condition: str = "TRUE") -> int:
    return _probe(
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND {condition}",
        app_name,
    )


class TableLock:
    """``LOCK TABLE … IN SHARE MODE`` from outside: a step that writes to the table waits
    there, in the middle of its transaction."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.conn = psycopg.connect(TEST_DB)

    def __enter__(self) -> TableLock:
        self.conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(self.table)))
        return self

    def holds(self, app_name: str) -> bool:
        """A session of ``app_name`` waits for this lock."""
        return bool(
            _probe(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE NOT l.granted AND l.relation = to_regclass(%s) "
                "AND a.application_name = %s",
                self.table,
                app_name,
            )
        )

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


class _StallingHandler(_Handler):
    """The mail sink's SMTP handler; while ``stalling`` it takes a message's DATA and gives
    no answer, like a mail server that hangs."""

    def __init__(self, sink: MailSink) -> None:
        super().__init__(sink)
        self.stalling = threading.Event()
        self.stalled = threading.Event()

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if not self.stalling.is_set():
            return await super().handle_DATA(server, session, envelope)
        self.stalled.set()
        while self.stalling.is_set():
            await asyncio.sleep(0.05)
        return "451 4.3.0 Not taken, try again later"


class StallingMailSink(MailSink):
    """The demo's mail sink (it stores what it takes in ``sink_message``), able to stall."""

    def __init__(self, factory: sessionmaker[Session], port: int) -> None:
        super().__init__(factory, "127.0.0.1", port)
        self.handler = _StallingHandler(self)
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)


@pytest.fixture
def mail_sink(runtime: Runtime) -> Iterator[StallingMailSink]:
    sink = StallingMailSink(runtime.session_factory, free_port())
    sink.start()
    yield sink
    sink.handler.stalling.clear()
    sink.stop()


class SmtpStall:
    """The mail server stalls: ``send_email`` waits for its answer holding its email's row
    lock, before it can mark the email sent."""

    def __init__(self, sink: StallingMailSink) -> None:
        self.handler = sink.handler

    def __enter__(self) -> SmtpStall:
        self.handler.stalling.set()
        return self

    def holds(self, app_name: str) -> bool:
        """An email is in the sink's hands, and its row is locked (by the sender)."""
        return self.handler.stalled.is_set() and _locked_unsent_emails() == 1

    def __exit__(self, *exc: object) -> None:
        self.handler.stalling.clear()


def _locked_unsent_emails() -> int:
    with psycopg.connect(TEST_DB) as conn:
        unsent = conn.execute("SELECT id FROM email_message WHERE sent_dt IS NULL").fetchall()
        free = conn.execute(
            "SELECT id FROM email_message WHERE sent_dt IS NULL FOR UPDATE SKIP LOCKED"
        ).fetchall()
        conn.rollback()
    return len(unsent) - len(free)


# What the errand needs before the step under test; each runs here in its own transaction.


def _receipt(s: Session, errand_id: int) -> None:
    pipeline.issue_receipt(s, errand_id)


def _verify(s: Session, errand_id: int) -> None:
    pipeline.verify(s, errand_id, SYSTEM, verifiers(s))


def _approve(s: Session, errand_id: int) -> None:
    assert claim_and_approve(s, s.get_one(Errand, errand_id))


def _apply(s: Session, errand_id: int) -> None:
    pipeline.apply(s, errand_id, SYSTEM, base_url=public_base_url())


def _archive(s: Session, errand_id: int) -> None:
    pipeline.archive(s, errand_id, SYSTEM)


def _claim_due_tomorrow(s: Session, errand_id: int) -> None:
    errand = s.get_one(Errand, errand_id)
    assert casework.claim(s, caseworker(s), errand)
    errand.due_dt = utcnow() + timedelta(days=1)


def _schedule_deadline_watch(s: Session, errand_id: int) -> None:
    add_message(s, "watch_deadlines")  # as the sweeper schedules it


def _prepared_errand(*steps: Callable[[Session, int], None]) -> Callable[[Runtime], int]:
    """David's registration, signed with BankID and received (which queues the receipt and
    verify steps), then ``steps``, each committed (which queues what the next state needs)."""

    def prepare(runtime: Runtime) -> int:
        with runtime.unit_of_work() as s:
            errand_id = received_by_esignature(s, registration_draft(s)).id
        for step in steps:
            with runtime.unit_of_work() as s:
                step(s, errand_id)
        return errand_id

    return prepare


def _posted_and_scanned(runtime: Runtime) -> int:
    """David's registration printed for the post, then its 2 pages back in the mailroom's
    scan, each after a blank sheet (one 4-page PDF), received (which queues its reading)."""
    with runtime.unit_of_work() as s:
        errand_id = printed_for_post(s, registration_draft(s)).id
    with runtime.unit_of_work() as s:
        pages = corpus.scan_pdf(printed(s.get_one(Errand, errand_id)), ["rotated+1", "bilevel-200"])
        blanks = [corpus.blank_page(seed=seed).image for seed in (1, 2)]
        data = corpus.as_pdf([blanks[0], pages[0], blanks[1], pages[1]])
        reading.receive_file(s, clerk(s), data, "post.pdf", BatchSource.UPLOAD)
    return errand_id


# Counting what is committed.


def _count(session: Session, model: type[Base], *where: ColumnElement[bool]) -> int:
    session.rollback()  # a fresh look
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _documents(session: Session, errand_id: int, kind: DocumentKind) -> int:
    return _count(
        session,
        ErrandDocument,
        ErrandDocument.errand_id == errand_id,
        ErrandDocument.kind == kind,
    )


def _events(session: Session, action: str) -> int:
    return _count(session, AuditEvent, AuditEvent.action == action)


def _emails(session: Session, template: str) -> int:
    return _count(session, EmailMessage, EmailMessage.template == template)


def _errand(session: Session, errand_id: int) -> Errand:
    session.rollback()
    return session.get_one(Errand, errand_id)


def _checks(session: Session, errand_id: int) -> list[tuple[str, CheckOutcome]]:
    session.rollback()
    rows = session.execute(
        select(VerificationCheck.name, VerificationCheck.outcome).where(
            VerificationCheck.errand_id == errand_id
        )
    )
    return sorted((name, outcome) for name, outcome in rows)


def _settled(session: Session) -> bool:
    """Every outbox message done, every email sent and in the sink."""
    return (
        _count(session, OutboxMessage, OutboxMessage.done_dt.is_(None)) == 0
        and _count(session, EmailMessage, EmailMessage.sent_dt.is_(None)) == 0
        and _count(session, SinkMessage) >= _count(session, EmailMessage)
    )


def _each_email_sent_once(session: Session, mail_from: str) -> None:
    """Each email went to the mail server once, at its first (committed) attempt."""
    session.rollback()
    emails = session.scalars(select(EmailMessage)).all()
    assert [(e.id, e.attempts, e.last_error) for e in emails if e.attempts != 1] == []
    received = Counter(session.scalars(select(SinkMessage.message_id)))
    assert received == Counter(message_id(e, mail_from) for e in emails)


# The steps.


@dataclass(frozen=True)
class Step:
    prepare: Callable[[Runtime], int]
    """An errand where only this step is left to do (earlier steps' messages are no-ops)."""
    lock: str | None
    """The table whose ``SHARE`` lock stops the step mid-transaction; ``None``: the mail
    server stalls instead."""
    untouched: Callable[[Session, int], None]
    """Nothing of the step is committed (but the progress it commits as it goes: a scan
    batch's reading lease and the pages read)."""
    done: Callable[[Session, int], bool]
    once: Callable[[Session, int], None]
    """The step's effects are there, once."""
    time_passes: Callable[[], None] = lambda: None
    """What time does, after the kill, before another worker may take the step up."""


def _receipt_untouched(s: Session, sid: int) -> None:
    assert _documents(s, sid, DocumentKind.RECEIPT) == 0
    assert _errand(s, sid).state is ErrandState.IN_REVIEW


def _receipt_once(s: Session, sid: int) -> None:
    assert _documents(s, sid, DocumentKind.RECEIPT) == 1


def _verify_untouched(s: Session, sid: int) -> None:
    assert _errand(s, sid).state is ErrandState.RECEIVED
    assert _checks(s, sid) == []
    assert _events(s, "errand.start_verification") == 0


def _verify_once(s: Session, sid: int) -> None:
    assert _checks(s, sid) == [
        (name, CheckOutcome.PASSED)
        for name in sorted(("conflicts", "employer", "id_numbers", "signatory", "signature"))
    ]
    assert _events(s, "errand.start_verification") == 1
    assert _events(s, "errand.finish_verification") == 1


def _apply_untouched(s: Session, sid: int) -> None:
    assert _errand(s, sid).state is ErrandState.APPROVED
    assert _grants(s, sid) == 0
    assert _events(s, "role_grant.created") == 0
    assert _emails(s, "role_granted") == 0


def _applied(s: Session, sid: int) -> bool:
    return _errand(s, sid).state in (ErrandState.APPLIED, ErrandState.CLOSED)


def _apply_once(s: Session, sid: int) -> None:
    assert _grants(s, sid) == 1
    assert _events(s, "role_grant.created") == 1
    assert _events(s, "errand.apply") == 1
    assert _emails(s, "role_granted") == 2  # Fredrik, and Provverket's orderer David


def _archive_untouched(s: Session, sid: int) -> None:
    assert _errand(s, sid).state is ErrandState.APPLIED
    assert _documents(s, sid, DocumentKind.DECISION) == 0
    assert _events(s, "errand.close") == 0


def _archive_once(s: Session, sid: int) -> None:
    assert _errand(s, sid).state is ErrandState.CLOSED
    assert _documents(s, sid, DocumentKind.DECISION) == 1
    assert _events(s, "errand.close") == 1


def _send_untouched(s: Session, sid: int) -> None:
    s.rollback()
    emails = s.scalars(select(EmailMessage)).all()
    assert [(e.sent_dt, e.attempts) for e in emails] == [(None, 0)] * 2  # as _apply_once
    assert _count(s, SinkMessage) == 0


def _deadline_untouched(s: Session, sid: int) -> None:
    assert _errand(s, sid).reminded_dt is None
    assert _emails(s, "deadline_digest") == 0
    assert _events(s, "errand.deadline_reminder") == 0


def _deadline_once(s: Session, sid: int) -> None:
    assert _emails(s, "deadline_digest") == 1
    assert _events(s, "errand.deadline_reminder") == 1


SCANNED = [  # _posted_and_scanned's 4 pages as read: (outcome, status)
    (PageOutcome.BLANK_SHEET, PageStatus.DISCARDED),
    (PageOutcome.MATCHED, PageStatus.WAITING),
    (PageOutcome.BLANK_SHEET, PageStatus.DISCARDED),
    (PageOutcome.MATCHED, PageStatus.WAITING),
]
FILED = [(o, PageStatus.FILED if s is PageStatus.WAITING else s) for o, s in SCANNED]
"""… and once the matched pages are filed as the errand's paper form."""


def _batch(s: Session) -> ScanBatch:
    s.rollback()
    return s.scalars(select(ScanBatch)).one()


def _scan_pages(s: Session) -> list[tuple[PageOutcome, PageStatus]]:
    """Every recorded page, in page order (asserting one row per page index)."""
    s.rollback()
    rows = s.execute(
        select(ScanPage.page_index, ScanPage.outcome, ScanPage.status).order_by(ScanPage.page_index)
    ).all()
    assert [index for index, _, _ in rows] == list(range(len(rows)))
    return [(outcome, status) for _, outcome, status in rows]


def _read_untouched(s: Session, sid: int) -> None:
    """The killed reader's lease and the pages it read are committed, nothing is filed."""
    batch = _batch(s)
    assert (batch.state, batch.pages_read, batch.read_attempts) == (BatchState.READING, 4, 1)
    assert batch.reader_until_dt is not None and batch.reader_until_dt > utcnow()
    assert _scan_pages(s) == SCANNED
    assert _count(s, PaperForm) == 0
    assert _events(s, "paper_form.assembled") == 0
    assert _events(s, "scan_batch.read") == 0


def _read_once(s: Session, sid: int) -> None:
    batch = _batch(s)
    assert (batch.state, batch.pages_read, batch.page_count) == (BatchState.DONE, 4, 4)
    assert batch.read_attempts == 2  # the dead reader's, and the one that finished
    assert _scan_pages(s) == FILED
    forms = s.scalars(select(PaperForm)).all()
    assert [(f.errand_id, f.state) for f in forms] == [(sid, PaperFormState.AWAITING_CONFIRMATION)]
    assert [(p.form_page, p.status) for p in forms[0].pages] == [
        (1, PageStatus.FILED),
        (2, PageStatus.FILED),
    ]
    assert queries.manual_queue(s) == []
    assert [p.page_index for p in queries.set_aside(s)] == [2, 0]  # the blank sheets, once each
    assert _events(s, "scan_page.discarded") == 2
    assert _errand(s, sid).state is ErrandState.AWAITING_POST  # till a clerk confirms
    assert _events(s, "paper_form.assembled") == 1
    assert _events(s, "scan_batch.read") == 1


def _read_lease_runs_out() -> None:
    """What time does: the dead reader's lease on the batch runs out (``READ_LEASE``, 2
    minutes after its last recorded page). Until then no worker reads the batch, nor does
    the maintenance sweep queue it again (``resume_stalled_batches``)."""
    with psycopg.connect(TEST_DB) as conn:
        expired = conn.execute(
            "UPDATE scan_batch SET reader_until_dt = now() - interval '1 second' "
            "WHERE state = 'reading' AND reader_until_dt > now()"
        ).rowcount
    assert expired == 1


STEPS = {
    "issue_receipt": Step(
        _prepared_errand(_verify),
        "errand_document",
        _receipt_untouched,
        lambda s, sid: _documents(s, sid, DocumentKind.RECEIPT) > 0,
        _receipt_once,
    ),
    "verify_errand": Step(
        _prepared_errand(_receipt),
        "verification_check",
        _verify_untouched,
        lambda s, sid: _errand(s, sid).state is ErrandState.IN_REVIEW,
        _verify_once,
    ),
    "apply_errand": Step(
        _prepared_errand(_receipt, _verify, _approve),
        "email_message",  # the emails are queued last, after the grant and its audit event
        _apply_untouched,
        _applied,
        _apply_once,
    ),
    "archive_errand": Step(
        _prepared_errand(_receipt, _verify, _approve, _apply),
        "audit_event",  # the closing's event comes after the decision letter
        _archive_untouched,
        lambda s, sid: _errand(s, sid).state is ErrandState.CLOSED,
        _archive_once,
    ),
    "send_email": Step(
        _prepared_errand(_receipt, _verify, _approve, _apply, _archive),
        None,
        _send_untouched,
        lambda s, sid: _count(s, EmailMessage, EmailMessage.sent_dt.is_(None)) == 0,
        lambda s, sid: None,  # _each_email_sent_once, as for every step
    ),
    "watch_deadlines": Step(
        _prepared_errand(_receipt, _verify, _claim_due_tomorrow, _schedule_deadline_watch),
        "audit_event",  # the reminder's event comes after its email and reminded_dt
        _deadline_untouched,
        lambda s, sid: _errand(s, sid).reminded_dt is not None,
        _deadline_once,
    ),
    "read_scan_batch": Step(
        _posted_and_scanned,
        "paper_form",  # every page is recorded; the matched ones are filed as a paper form
        _read_untouched,
        lambda s, sid: _batch(s).state is BatchState.DONE,
        _read_once,
        _read_lease_runs_out,
    ),
}


def _wait(predicate: Callable[[], object], log: Path, message: str, timeout: float = 30) -> None:
    try:
        wait_for(predicate, timeout=timeout, interval=0.1, message=message)
    except AssertionError as exc:
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise AssertionError(f"{exc}\n--- worker log (tail) ---\n{tail}") from None


@pytest.mark.parametrize(
    ("actor", "broker_url"),
    [
        *(pytest.param(actor, REDIS_URL, id=f"{actor}-redis") for actor in STEPS),
        pytest.param("verify_errand", RABBITMQ_URL, id="verify_errand-rabbitmq"),
    ],
    indirect=["broker_url"],
)
def test_worker_killed_mid_step_loses_nothing_and_applies_nothing_twice(
    actor: str,
    broker_url: str,
    app: Flask,
    runtime: Runtime,
    session: Session,
    mail_sink: StallingMailSink,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    step = STEPS[actor]
    errand_id = step.prepare(runtime)
    settings = runtime.settings
    test_root = StandIns.of(app).pki.root_certificate_file
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "BROKER_URL": broker_url,
        "OUTBOX_RESEND_AFTER_S": "2",
        "SECRET_KEY": settings.secret_key,
        "AUDIT_KEY": TEST_AUDIT_KEY,
        "MAIL_URL": f"smtp://127.0.0.1:{mail_sink.port}",
        # A production worker: it trusts the test PKI's root for the seal and for BankID
        # signatures, as the verify step checks them.
        "SEAL_TRUST_ROOTS_FILE": str(test_root),
        "SEAL_CERT_FINGERPRINTS": ",".join(accepted_seal(settings).fingerprints),
        "BANKID_TRUST_ROOTS_FILE": str(test_root),
    }
    log = tmp_path / "worker.log"
    worker = ["worker", "--queues", "steps=1,email=1,intake=1,scheduled=1"]  # one at a time

    blocker = TableLock(step.lock) if step.lock else SmtpStall(mail_sink)
    with blocker:
        killed = _spawn(worker, {**env, "PGAPPNAME": KILLED}, log)
        processes.append(killed)
        _wait(lambda: blocker.holds(KILLED), log, f"the worker to stop inside {actor}")
        assert _backends(KILLED, "backend_xid IS NOT NULL"), "its transaction has written"
        _kill(killed)
    _wait(lambda: not _backends(KILLED), log, "the killed worker's transaction to end")
    step.untouched(session, errand_id)
    step.time_passes()
    stuck = session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.actor_name == actor, OutboxMessage.done_dt.is_(None)
        )
    ).all()
    assert stuck, "the step's message is kept, to be sent again"

    restarted = _spawn(worker, {**env, "PGAPPNAME": RESTARTED}, log)
    processes.append(restarted)
    _wait(
        lambda: step.done(session, errand_id) and _settled(session),
        log,
        f"the restarted worker to finish {actor} and every message",
        timeout=40,
    )
    step.once(session, errand_id)
    _each_email_sent_once(session, settings.mail_from)
    assert verify_chain(session).is_intact
    if broker_url.startswith("redis"):
        # Redis gives a dead worker's message back only after its heartbeat times out
        # (15 s): the restarted worker's sweeper sent it again.
        sends = session.scalars(
            select(OutboxMessage.send_count).where(OutboxMessage.id.in_(stuck))
        ).all()
        assert max(sends) >= 2, sends
    _kill(restarted)  # its work is checked; quicker than a graceful stop (~1 s)


def _newest_order_ref(session: Session) -> str:
    from app.eid.models import EidOrder

    session.expire_all()
    ref = session.scalars(select(EidOrder.order_ref).order_by(EidOrder.id.desc())).first()
    assert ref is not None
    return ref


def _healthy(web: WebSession) -> bool:
    try:
        return "ok" in web.get("/healthz")
    except OSError:
        return False
