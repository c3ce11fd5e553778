"""The notifications: who is told what when a role, a permission or an errand changes.

Each takes ``base_url``, the product's public address (``Settings.public_base_url``) that
the email's links start with, from its caller's settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import (
    ORDERER_ROLES,
    Employer,
    EmployerCode,
    PermissionRequest,
    Person,
    Role,
    RoleGrant,
    SelfService,
    ServicePermission,
)
from app.core.i18n import SOURCE_LANG, long_date, long_day, swedish_time, translations
from app.core.ids import format_orgnr, mask_personnummer_in_text
from app.notifications.audience import Recipient, grant_audience, language_for
from app.notifications.models import EmailMessage
from app.notifications.queue import queue_email
from app.registrations.models import Errand, ErrandKind
from app.staff.models import StaffMember

log = structlog.get_logger(__name__)


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
    ErrandKind.REGISTRATION: N_("Anmälan – behörig beställare"),
    ErrandKind.REMOVAL: N_("Ta bort behörig beställare"),
    ErrandKind.SIGNATORY_CHANGE: N_("Ändrad firmatecknare – granska behörig beställare"),
}
ALL_CODES = N_("alla arbetsgivarens arbetsgivarkoder")
ONE_CODE = N_("arbetsgivarkod %(codes)s")
SOME_CODES = N_("arbetsgivarkoderna %(codes)s")

ACCESS_PATH = "/hantera-behorigheter"
ERRANDS_PATH = "/mina-arenden"
CASEWORK_PATH = "/handlaggning"


def _orgnr(orgnr: str) -> str:
    return format_orgnr(orgnr) if len(orgnr) == 10 and orgnr.isdigit() else orgnr


def _codes_text(grant: RoleGrant, lang: str) -> str:
    gettext = translations(lang).gettext
    codes = sorted(grant.codes, key=lambda c: c.code)
    if grant.is_all_codes or not codes:
        return gettext(ALL_CODES)
    listed = ", ".join(f"{c.code} ({c.name})" for c in codes)
    return gettext(ONE_CODE if len(codes) == 1 else SOME_CODES) % {"codes": listed}


def _code_text(code: EmployerCode, lang: str) -> str:
    return translations(lang).gettext(ONE_CODE) % {"codes": f"{code.code} ({code.name})"}


def _errand(session: Session, errand_id: int | None) -> Errand | None:
    return session.get(Errand, errand_id) if errand_id is not None else None


ORDERERS_OF = N_("Behöriga beställare hos %(employer)s")
"""How an email to an employer's orderers together names them."""


def _role_change(
    session: Session,
    grant: RoleGrant,
    *,
    template: str,
    errand: Errand | None,
    by: Person | None,
    base_url: str,
    change_key: str = "",
    by_review: bool = False,
    ended_on: date | None = None,
) -> list[EmailMessage]:
    """The person affected is told in an email of their own; the employer's other orderers
    in one email per language together (one each only when they are one), so that a change
    is two emails however many orderers the employer has."""
    employer = grant.employer
    audience = grant_audience(session, grant)
    emails: list[tuple[list[Recipient], str]] = []
    groups: dict[str, list[Recipient]] = {}
    for recipient in audience:
        lang = language_for(recipient.person, errand)
        if recipient.is_affected:
            emails.append(([recipient], lang))
        else:
            groups.setdefault(lang, []).append(recipient)
    emails.extend((group, lang) for lang, group in groups.items())
    queued = []
    for recipients, lang in emails:
        gettext = translations(lang).gettext
        (one,) = recipients if len(recipients) == 1 else (None,)
        email = queue_email(
            session,
            base_url=base_url,
            dedupe_key=(
                f"{template}:{grant.id}:{one.person.id}{change_key}"
                if one is not None
                else f"{template}:{grant.id}:orderers:{lang}{change_key}"
            ),
            to=one.address if one is not None else "",
            name=(
                one.person.full_name
                if one is not None
                else gettext(ORDERERS_OF) % {"employer": employer.name}
            ),
            language=lang,
            template=template,
            context={
                "is_affected": one is not None and one.is_affected,
                "person": grant.person.full_name,
                "role": gettext(ROLE_NAMES[grant.role]),
                "is_orderer_role": grant.role in ORDERER_ROLES,
                "employer": employer.name,
                "orgnr": _orgnr(employer.orgnr),
                "codes": _codes_text(grant, lang),
                "actor": by.full_name if by else None,
                "by_review": by_review,
                "reference": errand.reference if errand else None,
                "path": ACCESS_PATH,
                "ends_on": long_day(grant.ends_on, lang),
                "ended_on": long_day(ended_on, lang),
            },
            errand_id=errand.id if errand else None,
            grant_id=grant.id,
            group=[r.address for r in recipients] if one is None else None,
        )
        if email is not None:
            queued.append(email)
    return queued


def notify_role_granted(
    session: Session, grant: RoleGrant, *, base_url: str, by: Person | None = None
) -> list[EmailMessage]:
    """Email the person given a role, and the employer's other orderers.

    Who did it: ``by`` when given; else the orderer who appointed an administrator; else
    (an orderer from an approved registration) SPV, naming the errand.
    """
    errand = _errand(session, grant.source_errand_id)
    if by is None and grant.granted_by_person_id is not None:
        by = session.get(Person, grant.granted_by_person_id)
    return _role_change(
        session, grant, template="role_granted", errand=errand, by=by, base_url=base_url
    )


def notify_role_ended(
    session: Session,
    grant: RoleGrant,
    *,
    base_url: str,
    by: Person | None = None,
    review: bool = False,
    ended_on: date | None = None,
) -> list[EmailMessage]:
    """Email the person whose role ended, and the employer's other (still active) orderers.

    Who did it: ``by`` when given; else SPV, naming the removal errand; ``review``: the
    recurring review, nobody having confirmed the role; ``ended_on``: the role was
    time-limited and ended on that day (``app.access.mandates``).
    """
    errand = _errand(session, grant.revoked_by_errand_id)
    return _role_change(
        session,
        grant,
        template="role_ended",
        errand=errand,
        by=by,
        base_url=base_url,
        by_review=review,
        ended_on=ended_on,
    )


def notify_role_changed(
    session: Session, grant: RoleGrant, *, base_url: str, by: Person, change_id: int
) -> list[EmailMessage]:
    """Email the administrator whose scope changed, and the employer's orderers.

    ``change_id`` (the audit event of the change) tells one change from the next."""
    return _role_change(
        session,
        grant,
        template="role_changed",
        errand=None,
        by=by,
        base_url=base_url,
        change_key=f":{change_id}",
    )


def _permission_lines(changes: list[tuple[SelfService, EmployerCode]], lang: str) -> list[str]:
    gettext = translations(lang).gettext
    return [
        f"{gettext(SERVICE_NAMES[service])}, {code.code} ({code.name})"
        for service, code in sorted(changes, key=lambda c: (c[1].code, c[0].value))
    ]


def _to_user(
    session: Session,
    person: Person,
    *,
    template: str,
    dedupe_key: str,
    employer: Employer,
    by: Person | None,
    context: Callable[[str], dict[str, Any]],
    base_url: str,
) -> EmailMessage | None:
    """An email to a user about their own permissions, in their language, naming who
    acted (``None``: the recurring review ended it); ``context`` gives the template's
    values in a language."""
    if not person.email:
        log.warning("email.no_address", person_id=person.id, template=template)
        return None
    lang = language_for(person, None)
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=dedupe_key,
        to=person.email,
        name=person.full_name,
        language=lang,
        template=template,
        context={
            "employer": employer.name,
            "orgnr": _orgnr(employer.orgnr),
            "actor": by.full_name if by else None,
            "by_review": by is None,
            "reference": None,
            "path": ACCESS_PATH,
            **context(lang),
        },
    )


def notify_permissions_changed(
    session: Session,
    person: Person,
    employer: Employer,
    *,
    granted: list[tuple[SelfService, EmployerCode]],
    revoked: list[tuple[SelfService, EmployerCode]],
    by: Person | None,
    change_id: int,
    base_url: str,
    reason: str = "",
) -> EmailMessage | None:
    """One email to the user for every permission one action granted or ended (rule 5),
    with the reason given, if any.

    ``change_id`` is the audit event that recorded the change."""
    return _to_user(
        session,
        person,
        template="permissions_changed",
        dedupe_key=f"permissions_changed:{change_id}:{person.id}",
        employer=employer,
        by=by,
        context=lambda lang: {
            "granted": _permission_lines(granted, lang),
            "revoked": _permission_lines(revoked, lang),
            "reason": mask_personnummer_in_text(reason.strip()),
        },
        base_url=base_url,
    )


def notify_permission_requested(
    session: Session,
    request: PermissionRequest,
    recipients: list[tuple[Person, str]],
    *,
    base_url: str,
) -> list[EmailMessage]:
    """Email the administrators (person, address) that a user asks for a permission."""
    code = request.employer_code
    employer = code.employer
    queued = []
    for recipient, address in recipients:
        lang = language_for(recipient, None)
        email = queue_email(
            session,
            base_url=base_url,
            dedupe_key=f"permission_requested:{request.id}:{recipient.id}",
            to=address,
            name=recipient.full_name,
            language=lang,
            template="permission_requested",
            context={
                "person": request.person.full_name,
                "service": translations(lang).gettext(SERVICE_NAMES[request.service]),
                "code": f"{code.code} ({code.name})",
                "employer": employer.name,
                "orgnr": _orgnr(employer.orgnr),
                "message": mask_personnummer_in_text(request.message.strip()),
                "path": ACCESS_PATH + "/forfragningar",
            },
        )
        if email is not None:
            queued.append(email)
    return queued


def notify_permission_request_declined(
    session: Session, request: PermissionRequest, *, by: Person, base_url: str
) -> EmailMessage | None:
    """Tell the user that an administrator declined their request."""
    code = request.employer_code
    return _to_user(
        session,
        request.person,
        template="permission_request_declined",
        dedupe_key=f"permission_request_declined:{request.id}",
        employer=code.employer,
        by=by,
        context=lambda lang: {
            "service": translations(lang).gettext(SERVICE_NAMES[request.service]),
            "code": f"{code.code} ({code.name})",
        },
        base_url=base_url,
    )


def _submitter_email(
    session: Session,
    errand: Errand,
    *,
    template: str,
    dedupe_key: str,
    context: dict[str, Any],
    base_url: str,
) -> EmailMessage | None:
    submitter = errand.submitted_by
    if not submitter.email:
        log.warning("email.no_address", person_id=submitter.id, errand_id=errand.id)
        return None
    employer = errand.employer
    lang = language_for(submitter, errand)
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=dedupe_key,
        to=submitter.email,
        name=submitter.full_name,
        language=lang,
        template=template,
        context={
            "reference": errand.reference,
            "kind": translations(lang).gettext(KIND_NAMES[errand.kind]),
            "employer": employer.name if employer else "",
            "orgnr": _orgnr(employer.orgnr) if employer else "",
            "path": f"{ERRANDS_PATH}/{errand.reference}",
            **context,
        },
        errand_id=errand.id,
    )


def notify_rejected(
    session: Session, errand: Errand, reason_text: str, *, base_url: str
) -> EmailMessage | None:
    """Tell the submitter that SPV rejected the errand, and why."""
    return _submitter_email(
        session,
        errand,
        template="errand_rejected",
        dedupe_key=f"errand_rejected:{errand.id}",
        context={"reason": mask_personnummer_in_text(reason_text.strip())},
        base_url=base_url,
    )


def notify_completion_requested(
    session: Session, errand: Errand, message: str, *, base_url: str
) -> EmailMessage | None:
    """Tell the submitter what SPV needs to go on with the errand, and by when.

    Call it after the transition (an errand may be asked for more than once; each request
    is a new version of the errand).
    """
    lang = language_for(errand.submitted_by, errand)
    return _submitter_email(
        session,
        errand,
        template="completion_requested",
        dedupe_key=f"completion_requested:{errand.id}:{errand.version}",
        context={
            "message": mask_personnummer_in_text(message.strip()),
            "deadline": long_date(errand.expires_dt, lang),
        },
        base_url=base_url,
    )


DEADLINE_DIGEST = "deadline_digest"


def deadline_digest_key(day: date, staff_id: int) -> str:
    """The one due-date digest of a member of staff on a day."""
    return f"{DEADLINE_DIGEST}:{day.isoformat()}:{staff_id}"


def deadline_digests_of(session: Session, day: date) -> set[int]:
    """The staff (ids) who have had their due-date digest on ``day``."""
    prefix = f"{DEADLINE_DIGEST}:{day.isoformat()}:"
    keys = session.scalars(
        select(EmailMessage.dedupe_key).where(EmailMessage.dedupe_key.startswith(prefix))
    )
    return {int(key.removeprefix(prefix)) for key in keys}


def _deadline_item(errand: Errand, staff: StaffMember, lang: str) -> dict[str, Any]:
    employer = errand.employer
    assert errand.due_dt is not None and employer is not None
    holder = errand.assigned_staff
    return {
        "reference": errand.reference,
        "kind": translations(lang).gettext(KIND_NAMES[errand.kind]),
        "employer": employer.name,
        "orgnr": _orgnr(employer.orgnr),
        "due": long_date(errand.due_dt, lang),
        "assigned": holder.name if holder else None,
        "to_holder": holder is not None and holder.id == staff.id,
    }


def notify_deadline_digest(
    session: Session,
    staff: StaffMember,
    *,
    near: Sequence[Errand],
    passed: Sequence[Errand],
    now: datetime,
    base_url: str,
) -> EmailMessage | None:
    """One email to a caseworker or team lead for the day (Swedish time) of ``now``: the
    errands whose due date is near (reminders) and those past it (escalations). ``None``
    when they had it already that day."""
    lang = SOURCE_LANG
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=deadline_digest_key(swedish_time(now).date(), staff.id),
        to=staff.email,
        name=staff.name,
        language=lang,
        template=DEADLINE_DIGEST,
        context={
            "today": long_date(now, lang),
            "near": [_deadline_item(errand, staff, lang) for errand in near],
            "passed": [_deadline_item(errand, staff, lang) for errand in passed],
            "path": CASEWORK_PATH,
        },
    )


def notify_service_permission_changed(
    session: Session,
    permission: ServicePermission,
    granted: bool,
    *,
    base_url: str,
    by: Person | None = None,
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
    lang = language_for(person, None)
    return queue_email(
        session,
        base_url=base_url,
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


class MarkedUser(Protocol):
    """A user in the inactivity summary (``app.access.inactivity.ReviewedUser``)."""

    @property
    def name(self) -> str: ...
    @property
    def last_login(self) -> datetime | None: ...
    @property
    def mark(self) -> str: ...


REVIEW_PATH = f"{ACCESS_PATH}/granska"
NEVER_SEEN = N_("har aldrig loggat in")
LAST_SEEN = N_("loggade senast in %(date)s")


def notify_inactivity_summary(
    session: Session,
    grant: RoleGrant,
    users: Sequence[MarkedUser],
    *,
    month: str,
    base_url: str,
) -> EmailMessage | None:
    """The month's summary of inactive users (rule 11) to an orderer or administrator of
    the employer; once per employer, recipient and ``month`` (YYYY-MM). Nothing when
    ``users`` is empty."""
    person = grant.person
    address = grant.contact_email or person.email
    if not users or not address:
        return None
    employer = grant.employer
    lang = language_for(person, None)
    gettext = translations(lang).gettext
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=f"inactivity_summary:{employer.id}:{month}:{person.id}",
        to=address,
        name=person.full_name,
        language=lang,
        template="inactivity_summary",
        context={
            "employer": employer.name,
            "orgnr": _orgnr(employer.orgnr),
            "users": [
                {
                    "name": u.name,
                    "seen": gettext(LAST_SEEN) % {"date": long_date(u.last_login, lang)}
                    if u.last_login
                    else gettext(NEVER_SEEN),
                    "long": u.mark == "long_inactive",
                }
                for u in users
            ],
            "path": f"{REVIEW_PATH}/{employer.id}",
        },
        grant_id=grant.id,
    )


SIGNING_PATH = "/underskrift"
"""Where an invited signatory opens the errand (``/underskrift/<token>``)."""


def notify_signing_invitation(
    session: Session,
    errand: Errand,
    *,
    token: str,
    to: str,
    reminder: bool,
    base_url: str,
    name: str | None = None,
) -> EmailMessage | None:
    """Email the signatory named in the form (``name``: the second of two who sign jointly)
    a link to read and sign it with their own e-ID (the invitation, or a reminder with a
    link of its own)."""
    employer = errand.employer
    signatory = errand.data.signatory
    lang = SOURCE_LANG
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=f"signing_invitation:{hashlib.sha256(token.encode()).hexdigest()}",
        to=to,
        name=name or signatory.name,
        language=lang,
        template="signing_invitation",
        context={
            "reminder": reminder,
            "submitter": errand.submitted_by.full_name,
            "reference": errand.reference,
            "kind": translations(lang).gettext(KIND_NAMES[errand.kind]),
            "employer": employer.name if employer else "",
            "orgnr": _orgnr(employer.orgnr) if employer else "",
            "deadline": long_date(errand.expires_dt, lang),
            "path": f"{SIGNING_PATH}/{token}",
        },
        errand_id=errand.id,
    )


def notify_signatory_answered(
    session: Session, errand: Errand, *, declined_reason: str | None, base_url: str
) -> EmailMessage | None:
    """Tell the submitter that the invited signatory signed the form (it is on its way to
    SPV) or declined it (with the reason)."""
    template = "signing_declined" if declined_reason is not None else "signed_by_signatory"
    return _submitter_email(
        session,
        errand,
        template=template,
        dedupe_key=f"{template}:{errand.id}:{errand.version}",
        context={
            "signatory": errand.data.signatory.name,
            "reason": mask_personnummer_in_text((declined_reason or "").strip()),
        },
        base_url=base_url,
    )


# ---- mandates that end (``app.access.mandates``) ---------------------------------------


def role_lines(grant: RoleGrant, lang: str) -> list[str]:
    """A role as the one line of a mandate email: the role and its codes."""
    gettext = translations(lang).gettext
    return [f"{gettext(ROLE_NAMES[grant.role])}, {_codes_text(grant, lang)}"]


def permission_lines(permissions: Sequence[ServicePermission], lang: str) -> list[str]:
    return _permission_lines([(p.service, p.employer_code) for p in permissions], lang)


def notify_mandate(
    session: Session,
    template: str,
    recipient: Person,
    *,
    subject_person: Person,
    employer: Employer,
    lines: Callable[[str], list[str]],
    day: date | None,
    dedupe_key: str,
    base_url: str,
    path: str = ACCESS_PATH,
    address: str | None = None,
    extra: dict[str, Any] | None = None,
) -> EmailMessage | None:
    """One email about a time-limited role or set of permissions (``mandate_ending``: it
    ends on ``day``; ``mandate_ended``: it ended; ``mandate_extended``: it now ends on
    ``day``, None: until further notice), to the person it is about (``is_affected``) or
    to whoever granted it. ``lines`` gives the role or permissions in a language."""
    to = address or recipient.email
    if not to:
        log.warning("email.no_address", person_id=recipient.id, template=template)
        return None
    lang = language_for(recipient, None)
    return queue_email(
        session,
        base_url=base_url,
        dedupe_key=dedupe_key,
        to=to,
        name=recipient.full_name,
        language=lang,
        template=template,
        context={
            "is_affected": recipient.id == subject_person.id,
            "person": subject_person.full_name,
            "employer": employer.name,
            "orgnr": _orgnr(employer.orgnr),
            "lines": lines(lang),
            "day": long_day(day, lang),
            "path": path,
            **(extra or {}),
        },
    )
