"""Notifications: the emails a change calls for, queued in the transaction that makes it.

Every permission change emails the person it affects (rule 5), and a change of an
employer's roles also emails the employer's other orderers. An email is rendered when
it is queued (so it says what was true then), stored as an :class:`EmailMessage` row and
handed to the ``send_email`` actor through the transactional outbox: it is sent only
once the change commits, and never if it rolls back.

Texts are Jinja templates in ``templates/email/`` (plain text, ``<code>.txt``; a block
``subject`` and a block ``body`` under ``_layout.txt``). Their messages are Swedish msgids
translated with the same catalogue as the UI and the PDFs (``app/translations``), so an
English email is the Swedish one through the catalogue and both always say the same.

No Flask here: the pipeline's actors call these functions as well as the views.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from app.access.models import (
    ORDERER_ROLES,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.core.i18n import SOURCE_LANG, SUPPORTED_LANGS, long_date, translations
from app.core.ids import format_orgnr, mask_personnummer_in_text
from app.notifications.models import EmailMessage
from app.registrations.models import Submission, SubmissionKind
from app.staff.models import StaffMember
from workflows.outbox import add_message

log = structlog.get_logger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates" / "email"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
SEND_ACTOR = "send_email"


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is used."""
    return message


ROLE_NAMES = {
    Role.ORDERER: N_("behörig beställare"),
    Role.DELEGATED_ORDERER: N_("delegerad behörig beställare"),
    Role.ADMINISTRATOR: N_("administratör"),
}
SERVICE_NAMES = {
    SelfService.EMPLOYMENT_REPORTING: N_("Anmäla anställning och inkomst"),
    SelfService.INVOICES: N_("Fakturor och fakturaspecifikationer"),
    SelfService.PENSION_CASES: N_("Pensionsärenden"),
    SelfService.STATISTICS: N_("Statistik och rapporter"),
}
KIND_NAMES = {
    SubmissionKind.REGISTRATION: N_("Anmälan – behörig beställare"),
    SubmissionKind.REMOVAL: N_("Ta bort behörig beställare"),
}
ALL_CODES = N_("alla arbetsgivarens arbetsgivarkoder")
ONE_CODE = N_("arbetsgivarkod %(codes)s")
SOME_CODES = N_("arbetsgivarkoderna %(codes)s")

ACCESS_PATH = "/hantera-behorigheter"
ERRANDS_PATH = "/mina-arenden"
CASEWORK_PATH = "/handlaggning"


# --- rendering ------------------------------------------------------------------------


@functools.cache
def environment(lang: str) -> Environment:
    """The Jinja environment for ``lang``: plain text, so no autoescaping."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str


def render_email(template: str, language: str, context: dict[str, Any]) -> RenderedEmail:
    """Subject and plain-text body of ``templates/email/<template>.txt`` in ``language``."""
    tmpl = environment(language).get_template(f"{template}.txt")
    subject = "".join(tmpl.blocks["subject"](tmpl.new_context(context)))
    text = tmpl.render(context)
    # One line, whatever the names in it hold (a header never carries a line break).
    return RenderedEmail(" ".join(subject.split()), _tidy(text))


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


# --- queueing -------------------------------------------------------------------------


def _public_base_url() -> str:
    from workflows import runtime

    try:
        return runtime.current().settings.public_base_url.rstrip("/")
    except RuntimeError:  # no runtime in this process (a script, a unit test)
        return DEFAULT_PUBLIC_BASE_URL


def queue_email(
    session: Session,
    *,
    dedupe_key: str,
    to: str,
    name: str,
    language: str,
    template: str,
    context: dict[str, Any],
    submission_id: int | None = None,
    grant_id: int | None = None,
    service_permission_id: int | None = None,
) -> EmailMessage | None:
    """Render ``template`` and queue it for sending after the current transaction commits.

    Returns ``None`` (and queues nothing) when an email with ``dedupe_key`` exists already.
    ``context`` gets ``name`` (the recipient) and ``base_url`` added.
    """
    if session.scalar(select(EmailMessage.id).where(EmailMessage.dedupe_key == dedupe_key)):
        return None
    language = language if language in SUPPORTED_LANGS else SOURCE_LANG
    rendered = render_email(
        template, language, {"base_url": _public_base_url(), **context, "name": name}
    )
    values = {
        "dedupe_key": dedupe_key,
        "template": template,
        "to_address": to,
        "to_name": name,
        "language": language,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "submission_id": submission_id,
        "role_grant_id": grant_id,
        "service_permission_id": service_permission_id,
    }
    # INSERT … ON CONFLICT DO NOTHING: a twin queued by a concurrent transaction wins and
    # this one gives way, without an error that would undo the caller's change (and
    # without a savepoint, whose release the outbox relay would take for the commit).
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    email_id = session.scalar(
        insert(EmailMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(EmailMessage.id)
    )
    if email_id is None:
        return None
    email = session.get_one(EmailMessage, email_id)
    add_message(session, SEND_ACTOR, email_id=email.id)
    log.info("email.queued", email_id=email.id, template=template, language=language)
    return email


# --- who, where and in which language -----------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    person: Person
    address: str
    is_affected: bool
    """The person whose permission changed (not one of the orderers told about it)."""


def _address(person: Person, grant: RoleGrant | None = None) -> str | None:
    """The work address given for the role, else the person's own."""
    return (grant.contact_email if grant else None) or person.email


def _language(person: Person, submission: Submission | None) -> str:
    """The submitter's language for the submitter; Swedish for everyone else."""
    if submission is not None and submission.submitted_by_id == person.id:
        return submission.language
    return SOURCE_LANG


def _orgnr(orgnr: str) -> str:
    return format_orgnr(orgnr) if len(orgnr) == 10 and orgnr.isdigit() else orgnr


def _grant_audience(session: Session, grant: RoleGrant) -> list[_Recipient]:
    """The person of ``grant``, then the employer's other active orderers (once each)."""
    recipients: list[_Recipient] = []
    seen = {grant.person_id}
    address = _address(grant.person, grant)
    if address:
        recipients.append(_Recipient(grant.person, address, True))
    else:
        log.warning("email.no_address", person_id=grant.person_id, grant_id=grant.id)
    orderers = session.scalars(
        select(RoleGrant)
        .where(
            RoleGrant.employer_id == grant.employer_id,
            RoleGrant.role.in_(ORDERER_ROLES),
            RoleGrant.valid_to_dt.is_(None),
        )
        .options(selectinload(RoleGrant.person))
        .order_by(RoleGrant.id)
    )
    for other in orderers:
        if other.person_id in seen:
            continue
        seen.add(other.person_id)
        address = _address(other.person, other)
        if address:
            recipients.append(_Recipient(other.person, address, False))
        else:
            log.warning("email.no_address", person_id=other.person_id, grant_id=grant.id)
    return recipients


def _codes_text(grant: RoleGrant, lang: str) -> str:
    gettext = translations(lang).gettext
    codes = sorted(grant.codes, key=lambda c: c.code)
    if grant.is_all_codes or not codes:
        return gettext(ALL_CODES)
    listed = ", ".join(f"{c.code} ({c.name})" for c in codes)
    return gettext(ONE_CODE if len(codes) == 1 else SOME_CODES) % {"codes": listed}


def _submission(session: Session, submission_id: int | None) -> Submission | None:
    return session.get(Submission, submission_id) if submission_id is not None else None


def _role_change(
    session: Session,
    grant: RoleGrant,
    *,
    template: str,
    submission: Submission | None,
    by: Person | None,
) -> list[EmailMessage]:
    employer = grant.employer
    queued = []
    for recipient in _grant_audience(session, grant):
        lang = _language(recipient.person, submission)
        gettext = translations(lang).gettext
        email = queue_email(
            session,
            dedupe_key=f"{template}:{grant.id}:{recipient.person.id}",
            to=recipient.address,
            name=recipient.person.full_name,
            language=lang,
            template=template,
            context={
                "is_affected": recipient.is_affected,
                "person": grant.person.full_name,
                "role": gettext(ROLE_NAMES[grant.role]),
                "is_orderer_role": grant.role in ORDERER_ROLES,
                "employer": employer.name,
                "orgnr": _orgnr(employer.orgnr),
                "codes": _codes_text(grant, lang),
                "actor": by.full_name if by else None,
                "reference": submission.reference if submission else None,
                "path": ACCESS_PATH,
            },
            submission_id=submission.id if submission else None,
            grant_id=grant.id,
        )
        if email is not None:
            queued.append(email)
    return queued


# --- the notifications ----------------------------------------------------------------


def notify_role_granted(
    session: Session, grant: RoleGrant, *, by: Person | None = None
) -> list[EmailMessage]:
    """Email the person given a role, and the employer's other orderers.

    Who did it: ``by`` when given; else the orderer who appointed an administrator; else
    (an orderer from an approved registration) SPV, naming the errand.
    """
    submission = _submission(session, grant.source_submission_id)
    if by is None and grant.granted_by_person_id is not None:
        by = session.get(Person, grant.granted_by_person_id)
    return _role_change(session, grant, template="role_granted", submission=submission, by=by)


def notify_role_ended(
    session: Session, grant: RoleGrant, *, by: Person | None = None
) -> list[EmailMessage]:
    """Email the person whose role ended, and the employer's other (still active) orderers.

    Who did it: ``by`` when given; else SPV, naming the removal errand.
    """
    submission = _submission(session, grant.revoked_by_submission_id)
    return _role_change(session, grant, template="role_ended", submission=submission, by=by)


def _submitter_email(
    session: Session,
    submission: Submission,
    *,
    template: str,
    dedupe_key: str,
    context: dict[str, Any],
) -> EmailMessage | None:
    submitter = submission.submitted_by
    if not submitter.email:
        log.warning("email.no_address", person_id=submitter.id, submission_id=submission.id)
        return None
    employer = submission.employer
    lang = _language(submitter, submission)
    return queue_email(
        session,
        dedupe_key=dedupe_key,
        to=submitter.email,
        name=submitter.full_name,
        language=lang,
        template=template,
        context={
            "reference": submission.reference,
            "kind": translations(lang).gettext(KIND_NAMES[submission.kind]),
            "employer": employer.name if employer else "",
            "orgnr": _orgnr(employer.orgnr) if employer else "",
            "path": f"{ERRANDS_PATH}/{submission.reference}",
            **context,
        },
        submission_id=submission.id,
    )


def notify_rejected(
    session: Session, submission: Submission, reason_text: str
) -> EmailMessage | None:
    """Tell the submitter that SPV rejected the errand, and why."""
    return _submitter_email(
        session,
        submission,
        template="submission_rejected",
        dedupe_key=f"submission_rejected:{submission.id}",
        context={"reason": mask_personnummer_in_text(reason_text.strip())},
    )


def notify_completion_requested(
    session: Session, submission: Submission, message: str
) -> EmailMessage | None:
    """Tell the submitter what SPV needs to go on with the errand, and by when.

    Call it after the transition (an errand may be asked for more than once; each request
    is a new version of the submission).
    """
    lang = _language(submission.submitted_by, submission)
    return _submitter_email(
        session,
        submission,
        template="completion_requested",
        dedupe_key=f"completion_requested:{submission.id}:{submission.version}",
        context={
            "message": mask_personnummer_in_text(message.strip()),
            "deadline": long_date(submission.expires_dt, lang),
        },
    )


def notify_deadline(
    session: Session, submission: Submission, staff: StaffMember, *, passed: bool
) -> EmailMessage | None:
    """Remind a caseworker that an errand's due date is near, or escalate an overdue one
    to a team lead. Once per errand, person, due date and kind of notice."""
    employer = submission.employer
    assert submission.due_dt is not None and employer is not None
    template = "deadline_passed" if passed else "deadline_near"
    lang = SOURCE_LANG
    holder = submission.assigned_staff
    return queue_email(
        session,
        dedupe_key=f"{template}:{submission.id}:{staff.id}:{submission.due_dt.isoformat()}",
        to=staff.email,
        name=staff.name,
        language=lang,
        template=template,
        context={
            "reference": submission.reference,
            "kind": translations(lang).gettext(KIND_NAMES[submission.kind]),
            "employer": employer.name,
            "orgnr": _orgnr(employer.orgnr),
            "due": long_date(submission.due_dt, lang),
            "assigned": holder.name if holder else None,
            "to_holder": holder is not None and holder.id == staff.id,
            "path": f"{CASEWORK_PATH}/{submission.reference}",
        },
        submission_id=submission.id,
    )


def notify_service_permission_changed(
    session: Session, permission: ServicePermission, granted: bool, *, by: Person | None = None
) -> EmailMessage | None:
    """Email the user whose permission to use a self-service was granted or ended.

    Who did it: ``by`` when given; else, for a grant, the administrator who granted it.
    """
    person = permission.person
    if not person.email:
        log.warning("email.no_address", person_id=person.id, permission_id=permission.id)
        return None
    if by is None and granted and permission.granted_by_person_id is not None:
        by = session.get(Person, permission.granted_by_person_id)
    code = permission.employer_code
    employer = code.employer
    template = "service_permission_granted" if granted else "service_permission_ended"
    lang = SOURCE_LANG
    return queue_email(
        session,
        dedupe_key=f"{template}:{permission.id}:{person.id}",
        to=person.email,
        name=person.full_name,
        language=lang,
        template=template,
        context={
            "service": translations(lang).gettext(SERVICE_NAMES[permission.service]),
            "code": f"{code.code} ({code.name})",
            "employer": employer.name,
            "orgnr": _orgnr(employer.orgnr),
            "actor": by.full_name if by else None,
            "reference": None,
            "path": ACCESS_PATH,
        },
        service_permission_id=permission.id,
    )


def unsent(session: Session, limit: int = 100) -> list[EmailMessage]:
    """Emails not sent yet, oldest first (for operators and tests)."""
    return list(
        session.scalars(
            select(EmailMessage)
            .where(EmailMessage.sent_dt.is_(None))
            .order_by(EmailMessage.created_dt, EmailMessage.id)
            .limit(limit)
        )
    )
