"""Sending a queued email over SMTP, once.

:func:`send_email` locks the email's row, hands the message to the mail server and sets
``sent_dt`` in the same transaction, so a sent email is never sent again, however often
its message is delivered or however many workers hold it. A failure is recorded
(``attempts``, ``last_error``) and raised, so the ``send_email`` actor is retried.

If the process dies after the server accepted a message and before the commit, the
message goes again on the next run; its ``Message-ID`` is the same every time, so a
receiving system can tell the copies apart. That is the at-least-once of email.
"""

from __future__ import annotations

import email.message
import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address, Group
from email.utils import format_datetime, parseaddr
from typing import Protocol
from urllib.parse import unquote, urlsplit

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.core.ids import mask_personnummer_in_text
from app.db import utcnow
from app.notifications.models import EmailMessage

log = structlog.get_logger(__name__)

SMTP_TIMEOUT_S = 15.0
"""Seconds to wait for the mail server to connect or answer."""

SEND_ERRORS = (smtplib.SMTPException, OSError, ValueError)
"""What a failed delivery raises: the server said no, the network failed, a bad address."""


class EmailNotSent(Exception):
    """The mail server did not take the email; the actor tries again later."""

    def __init__(self, email_id: int, reason: str) -> None:
        super().__init__(f"email {email_id} not sent: {reason}")
        self.email_id = email_id
        self.reason = reason


class Mailer(Protocol):
    """Something that delivers a message or raises one of :data:`SEND_ERRORS`."""

    @property
    def mail_from(self) -> str:
        """The ``From`` header and envelope sender."""
        ...

    def send(self, message: email.message.EmailMessage, recipients: Sequence[str]) -> None:
        """Deliver ``message`` to ``recipients`` (the envelope's: a group's are not in its
        headers)."""
        ...


@dataclass(frozen=True)
class SmtpMailer:
    """Delivery to one SMTP server with the standard library's ``smtplib``.

    ``security``: ``plain`` (``smtp://``), ``starttls`` (``smtp+starttls://``) or ``tls``
    (``smtps://``); the certificate is checked against the system's CAs.
    """

    host: str
    port: int
    mail_from: str
    security: str = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = SMTP_TIMEOUT_S

    SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}

    @classmethod
    def from_url(cls, url: str, mail_from: str, timeout: float = SMTP_TIMEOUT_S) -> SmtpMailer:
        """``smtp://host:port``, ``smtp+starttls://user:pass@host:587``, ``smtps://…@host:465``."""
        parts = urlsplit(url)
        if parts.scheme not in cls.SCHEMES or not parts.hostname:
            raise ValueError(
                "MAIL_URL must be smtp://host:port, smtp+starttls://user:pass@host:port or "
                f"smtps://user:pass@host:port, not {_without_password(url)!r}"
            )
        security, default_port = cls.SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            mail_from=mail_from,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )

    def send(self, message: email.message.EmailMessage, recipients: Sequence[str]) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            refused = smtp.send_message(message, to_addrs=list(recipients))
        if refused:  # some recipients refused, the others taken: recorded as not sent
            raise smtplib.SMTPRecipientsRefused(refused)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def mailer_for(settings: Settings) -> SmtpMailer:
    return SmtpMailer.from_url(settings.mail_url, settings.mail_from)


def message_id(email_row: EmailMessage, mail_from: str) -> str:
    """``<email-42.1f2e…@spv.example>``: the same for every attempt to send one email."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(email_row.dedupe_key.encode()).hexdigest()[:16]
    return f"<email-{email_row.id}.{digest}@{domain}>"


def recipients_of(email_row: EmailMessage) -> list[str]:
    """Whom the email goes to: its recipient, or each address of its group."""
    return list(email_row.group_addresses or [email_row.to_address])


def build_message(email_row: EmailMessage, mail_from: str) -> email.message.EmailMessage:
    """The MIME message: plain text (and HTML, when there is one), UTF-8."""
    message = email.message.EmailMessage()
    message["From"] = mail_from
    if email_row.group_addresses:  # one email to a group: its addresses in the envelope only
        message["To"] = Group(display_name=email_row.to_name)
    else:
        message["To"] = Address(display_name=email_row.to_name, addr_spec=email_row.to_address)
    message["Subject"] = email_row.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id(email_row, mail_from)
    message["Content-Language"] = email_row.language
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    # Quoted-printable: 7-bit safe for any server, still readable as source.
    message.set_content(email_row.text_body, cte="quoted-printable")
    if email_row.html_body:
        message.add_alternative(email_row.html_body, subtype="html", cte="quoted-printable")
    return message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        detail = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        text = f"{type(exc).__name__}: {exc.smtp_code} {detail}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(
            f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for code, reply in exc.recipients.values()
        )
        text = f"{type(exc).__name__}: {answers}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return mask_personnummer_in_text(text)[:1000]


def send_email(factory: sessionmaker[Session], email_id: int, mailer: Mailer) -> bool:
    """Send email ``email_id`` unless it was sent already. True when sent now.

    Raises :class:`EmailNotSent` (after recording the attempt) when the server or the
    network failed.
    """
    with factory() as session:
        row = session.scalars(
            select(EmailMessage).where(EmailMessage.id == email_id).with_for_update()
        ).one_or_none()
        if row is None:
            log.warning("email.unknown", email_id=email_id)
            return False
        if row.sent_dt is not None:
            return False
        row.attempts += 1
        try:
            mailer.send(build_message(row, mailer.mail_from), recipients_of(row))
        except SEND_ERRORS as exc:
            row.last_error = _describe(exc)
            session.commit()
            log.warning(
                "email.send_failed", email_id=email_id, attempts=row.attempts, error=row.last_error
            )
            raise EmailNotSent(email_id, row.last_error) from exc
        row.sent_dt = utcnow()
        row.last_error = None
        session.commit()
    log.info("email.sent", email_id=email_id, template=row.template, attempts=row.attempts)
    return True
