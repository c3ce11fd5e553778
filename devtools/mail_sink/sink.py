"""The demo's mail sink: an SMTP server that keeps every message it is given.

``behorighet demo`` runs :class:`MailSink` on ``MAIL_URL``'s loopback port (8025), and the
stand-ins plugin serves the page ``/demo/e-post`` (:mod:`devtools.mail_sink.views`).
Messages are stored in the ``sink_message`` table, not in memory, so that every web
process shows the same mail.

A message is acknowledged first and stored right after, by one writer thread: the sender
holds its email's row lock (with SQLite, the database's write lock) until the server has
answered, so storing before answering would wait for the sender, which waits for us.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage as MimeMessage
from typing import Any, cast
from urllib.parse import urlsplit

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work
from devtools.mail_sink.models import SinkMessage

log = structlog.get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025


def parse_message(raw: bytes) -> dict[str, Any]:
    """The columns of a :class:`SinkMessage` for a raw RFC 5322 message."""
    message = cast(MimeMessage, email.message_from_bytes(raw, policy=email.policy.default))
    body = message.get_body(preferencelist=("plain",))
    text = ""
    if body is not None:
        try:
            text = str(cast(MimeMessage, body).get_content())
        except (LookupError, ValueError):
            payload = body.get_payload(decode=True)
            text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return {
        "to_header": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "message_id": str(message["Message-ID"])[:300] if message["Message-ID"] else None,
        "text_body": text,
    }


def store_message(
    factory: sessionmaker[Session], mail_from: str, recipients: list[str], raw: bytes
) -> int:
    """Keep one received message. Returns its id."""
    with unit_of_work(factory) as session:
        row = SinkMessage(
            mail_from=mail_from[:320],
            recipients=", ".join(recipients),
            raw=raw,
            **parse_message(raw),
        )
        session.add(row)
        session.flush()
        return row.id


class _Handler:
    """aiosmtpd's handler: accept every message and hand it to the writer thread."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="replace")
        self.sink.receive(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on ``host:port`` (loopback) that stores what it gets in ``sink_message``."""

    def __init__(
        self, factory: sessionmaker[Session], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        self.factory = factory
        self.host = host
        self.port = port
        self._writer: ThreadPoolExecutor | None = None
        self.controller = Controller(_Handler(self), hostname=host, port=port)

    @classmethod
    def for_settings(cls, settings: Settings, factory: sessionmaker[Session]) -> MailSink:
        """The sink where ``MAIL_URL`` points: ``smtp://`` to a loopback address only."""
        parts = urlsplit(settings.mail_url)
        host = parts.hostname or ""
        try:
            is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            is_loopback = False
        if parts.scheme != "smtp" or not is_loopback:
            raise ValueError(
                "The demo's mail sink listens where MAIL_URL points, which must be "
                f"smtp://127.0.0.1:PORT; it is {parts.scheme}://{host}"
            )
        return cls(factory, host, parts.port or DEFAULT_PORT)

    def receive(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        if self._writer is None:
            raise RuntimeError("the mail sink is not running")
        self._writer.submit(self._store, mail_from, recipients, raw)

    def _store(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        try:
            message_id = store_message(self.factory, mail_from, recipients, raw)
        except Exception:
            log.exception("mail_sink.store_failed", recipients=len(recipients))
            return
        log.info("mail_sink.received", sink_message_id=message_id)

    def start(self) -> None:
        """Listen (raises ``OSError`` when the port is taken)."""
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-sink")
        try:
            self.controller.start()
        except BaseException:
            self._writer.shutdown()
            self._writer = None
            raise
        log.info("mail_sink.listening", host=self.host, port=self.port)

    def stop(self) -> None:
        """Stop listening, then store what was received."""
        self.controller.stop()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
