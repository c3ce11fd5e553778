"""dramatiq actors: take ids, open their own transaction, safe to run twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from app.access import campaigns, inactivity, mandates
from app.audit import anchor
from app.casework import deadlines
from app.core.agents import Agent
from app.documents.pki import accepted_seal, seal_material, trust_roots
from app.intake.reading import read_batch
from app.notifications import sender
from app.registrations import archive, invitations
from app.retention import service as retention
from app.safeguards import service as safeguards
from workflows import pipeline, runtime
from workflows.broker import EMAIL, INTAKE, SCHEDULED, pipeline_actor
from workflows.verification import verifiers_for


@pipeline_actor(step="verify")
def verify_errand(errand_id: int) -> None:
    current = runtime.current()
    with current.unit_of_work() as session:
        verifiers = verifiers_for(session, current.settings)
        pipeline.verify(session, errand_id, Agent.system("verify_errand"), verifiers)


@pipeline_actor(step="apply")
def apply_errand(errand_id: int) -> None:
    current = runtime.current()
    with current.unit_of_work() as session:
        pipeline.apply(
            session,
            errand_id,
            Agent.system("apply_errand"),
            base_url=current.settings.public_base_url,
        )


@pipeline_actor(step="archive")
def archive_errand(errand_id: int) -> None:
    with runtime.current().unit_of_work() as session:
        pipeline.archive(session, errand_id, Agent.system("archive_errand"))


@pipeline_actor(step="receipt")
def issue_receipt(errand_id: int) -> None:
    with runtime.current().unit_of_work() as session:
        pipeline.issue_receipt(session, errand_id)


@pipeline_actor(step="waiting")
def start_waiting_period(errand_id: int) -> None:
    """An approved posted registration starts its waiting period (``app.safeguards``)."""
    current = runtime.current()
    with current.unit_of_work() as session:
        safeguards.start_waiting_period(
            session,
            errand_id,
            period=timedelta(days=current.settings.paper_waiting_days),
            base_url=current.settings.public_base_url,
        )


@pipeline_actor(step="stopped", queue=EMAIL)
def notify_stopped(errand_id: int) -> None:
    """A posted form stopped by its employer's lock: its people are told why."""
    current = runtime.current()
    with current.unit_of_work() as session:
        safeguards.notify_stopped(session, errand_id, base_url=current.settings.public_base_url)


@pipeline_actor(step="notify", queue=EMAIL)
def send_email(email_id: int) -> None:
    """Send one queued email. No ``errand_id``: a mail failure never fails an errand."""
    current = runtime.current()
    sender.send_email(current.session_factory, email_id, sender.mailer_for(current.settings))


@pipeline_actor(step="deadlines", queue=SCHEDULED, max_retries=2)
def watch_deadlines() -> None:
    """Scheduled: the SLA reminders and escalations due now (``app.casework.deadlines``)."""
    current = runtime.current()
    with current.unit_of_work() as session:
        deadlines.watch_deadlines(session, base_url=current.settings.public_base_url)


@pipeline_actor(step="inactivity", queue=SCHEDULED, max_retries=2)
def summarise_inactivity() -> None:
    """Scheduled: the month's summary of inactive users to each employer's administrators
    (``app.access.inactivity``); once per employer, recipient and month."""
    current = runtime.current()
    with current.unit_of_work() as session:
        inactivity.send_inactivity_summaries(session, base_url=current.settings.public_base_url)


@pipeline_actor(step="review_campaigns", queue=SCHEDULED, max_retries=2)
def run_review_campaigns() -> None:
    """Scheduled: start the recurring reviews due and move the open ones on (reminders,
    escalation, final warning, ending; ``app.access.campaigns``). One campaign per
    employer at a time, each step once, however often it runs."""
    current = runtime.current()
    with current.unit_of_work() as session:
        campaigns.run_campaigns(session, current.settings)


@pipeline_actor(step="signing_reminders", queue=SCHEDULED, max_retries=2)
def remind_signatories() -> None:
    """Scheduled: remind each invited signatory once before the invitation expires
    (``app.registrations.invitations.remind_before_expiry``)."""
    current = runtime.current()
    with current.unit_of_work() as session:
        invitations.remind_before_expiry(session, base_url=current.settings.public_base_url)


@pipeline_actor(step="waiting_periods", queue=SCHEDULED, max_retries=2)
def apply_waiting_periods() -> None:
    """Scheduled: the posted registrations whose waiting period is over go on to be applied
    (``app.safeguards.service.take_effect_due``); each once, however often it runs."""
    with runtime.current().unit_of_work() as session:
        safeguards.take_effect_due(session, Agent.system("apply_waiting_periods"))


@pipeline_actor(step="mandates", queue=SCHEDULED, max_retries=2)
def end_mandates() -> None:
    """Scheduled: remind of the time-limited roles and permissions that end within
    ``MANDATE_REMINDER_DAYS``, and end those whose day has come (``app.access.mandates``);
    each reminder and each end once, however often it runs."""
    current = runtime.current()
    settings = current.settings
    base_url = settings.public_base_url
    mandates.end_due(current.unit_of_work, base_url=base_url)
    mandates.remind_before_end(
        current.unit_of_work, base_url=base_url, days=settings.mandate_reminder_days
    )


@pipeline_actor(step="audit", queue=SCHEDULED, max_retries=2)
def checkpoint_audit_chain() -> None:
    """Scheduled: pin the audit chain's head outside the database with a timestamp from the
    seal's TSA (``app.audit.anchor``), when it moved; nothing without a checkpoint folder."""
    current = runtime.current()
    directory = current.settings.audit_checkpoint_dir
    if not directory:
        return
    timestamper = seal_material(current.settings).timestamper
    with current.unit_of_work() as session:
        anchor.write_checkpoint(
            session, Path(directory), timestamper, trust_roots(current.settings)
        )


@pipeline_actor(
    step="archive_timestamps", queue=SCHEDULED, max_retries=2, time_limit=30 * 60 * 1000
)
def keep_archive_valid() -> None:
    """Scheduled: check the PDFs stored since the last run and re-timestamp the sealed ones
    whose newest timestamp's TSA certificate ends within ``ARCHIVE_RETIMESTAMP_MARGIN_DAYS``
    (``app.registrations.archive``); one commit per document, safe to run twice."""
    current = runtime.current()
    settings = current.settings
    sources = archive.ArchiveSources(
        material=seal_material(settings),
        trust_roots=trust_roots(settings),
        seal_identity=accepted_seal(settings),
    )
    archive.keep_archive_valid(
        current.session_factory, sources, margin=settings.archive_retimestamp_margin
    )


@pipeline_actor(step="retention", queue=SCHEDULED, max_retries=2)
def apply_retention() -> None:
    """Scheduled: remove what the retention rules say is due (``app.retention``), batch
    after batch, each batch its own commit and audit event; nothing the second time."""
    current = runtime.current()
    retention.apply(current.unit_of_work, current.settings)


@pipeline_actor(step="intake", queue=INTAKE, time_limit=30 * 60 * 1000)
def read_scan_batch(batch_id: int) -> None:
    """Read a scanned batch page by page and file what matched (``app.intake.reading``)."""
    current = runtime.current()
    read_batch(current.session_factory, batch_id, current.settings.qr_key)
