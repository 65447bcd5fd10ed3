"""A real SMTP server for the email tests: aiosmtpd on 127.0.0.1, on a port of its own.

``smtp_server`` starts it, points Django's SMTP backend at it and yields it; ``.messages`` are
the messages it received, parsed (``email.message.EmailMessage``), in the order they arrived.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One envelope: who it was sent from and to, and the message's bytes."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SMTPServer:
    host: str
    port: int
    envelopes: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            received = list(self.envelopes)
        return [
            email.message_from_bytes(envelope.data, policy=email.policy.default)
            for envelope in received
        ]

    def clear(self) -> None:
        with self.lock:
            self.envelopes.clear()

    # aiosmtpd's handler hook: called (in the server's thread) for each message's DATA.
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        with self.lock:
            self.envelopes.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    host = "127.0.0.1"
    server = SMTPServer(host, free_port(host))
    controller = Controller(server, hostname=host, port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    try:
        yield server
    finally:
        controller.stop()
