"""An email rendered and queued, to be sent once the transaction that queued it commits."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.i18n import SOURCE_LANG, SUPPORTED_LANGS
from app.notifications.models import EmailMessage
from app.notifications.render import render_email
from workflows.outbox import add_message

log = structlog.get_logger(__name__)

SEND_ACTOR = "send_email"


def queue_email(
    session: Session,
    *,
    base_url: str,
    dedupe_key: str,
    to: str,
    name: str,
    language: str,
    template: str,
    context: dict[str, Any],
    errand_id: int | None = None,
    grant_id: int | None = None,
    service_permission_id: int | None = None,
    group: list[str] | None = None,
) -> EmailMessage | None:
    """Render ``template`` and queue it for sending after the current transaction commits.

    Returns ``None`` (and queues nothing) when an email with ``dedupe_key`` exists already
    (rendered all the same: a twin is rare, a retried step's, and asking first was one more
    statement for every email).
    ``context`` gets ``name`` (the recipient) and ``base_url`` (the product's public
    address, ``Settings.public_base_url``, that the email's links start with) added.
    ``group``: one email to each of these addresses (in the envelope only), ``name``
    naming the group (``to`` is then empty).
    """
    language = language if language in SUPPORTED_LANGS else SOURCE_LANG
    rendered = render_email(
        template, language, {"base_url": base_url.rstrip("/"), **context, "name": name}
    )
    values = {
        "dedupe_key": dedupe_key,
        "template": template,
        "to_address": "" if group else to,
        "to_name": name,
        "group_addresses": group or None,
        "language": language,
        "subject": rendered.subject,
        "text_body": rendered.text,
        "errand_id": errand_id,
        "role_grant_id": grant_id,
        "service_permission_id": service_permission_id,
    }
    # INSERT … ON CONFLICT DO NOTHING: a twin queued by a concurrent transaction wins and
    # this one gives way, without an error that would undo the caller's change (and
    # without a savepoint, whose release the outbox relay would take for the commit).
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    email = session.scalars(
        insert(EmailMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(EmailMessage)
    ).one_or_none()
    if email is None:
        return None
    add_message(session, SEND_ACTOR, email_id=email.id)
    log.info("email.queued", email_id=email.id, template=template, language=language)
    return email
