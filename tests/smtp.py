"""A real SMTP server for the tests (aiosmtpd on a free port) and what it received.

A test module that checks emails takes the fixtures by name::

    from tests.smtp import (  # noqa: F401 (fixtures: app_settings, smtp, smtp_server)
        app_settings_fixture,
        smtp_fixture,
        smtp_server_fixture,
    )
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage as MimeMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from tests.support import free_port

BASE_URL = "https://behorighet.spv.example"


class SmtpRecorder:
    """aiosmtpd handler keeping every message; answers 550 while ``refuse`` is set."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], MimeMessage]] = []
        self.refuse = False
        self.url = ""
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if self.refuse:
            return "550 5.7.1 Delivery not authorised"
        raw = cast(bytes, envelope.content)
        message = cast(MimeMessage, email.message_from_bytes(raw, policy=email.policy.default))
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture(scope="module", name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    yield recorder
    controller.stop()


@pytest.fixture(autouse=True, name="smtp")
def smtp_fixture(smtp_server: SmtpRecorder) -> SmtpRecorder:
    smtp_server.received.clear()
    smtp_server.refuse = False
    return smtp_server


@pytest.fixture(scope="module", name="app_settings")
def app_settings_fixture(smtp_server: SmtpRecorder) -> dict[str, Any]:
    """MAIL_URL at the module's SMTP server, and the mail sink's page."""
    return {
        "mail_url": smtp_server.url,
        "public_base_url": BASE_URL,
        "plugged": {"mail_sink": True},
    }


def plain_text(message: MimeMessage) -> str:
    """The message's plain-text body."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(cast(MimeMessage, body).get_content())
