"""Real receivers on 127.0.0.1 for the channel tests: an SMTP server and an HTTP server.

The SMTP server is aiosmtpd in the test's event loop; the HTTP server is
:mod:`bench.receivers` (shared with the chaos drill, which cannot import tests/).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bench.receivers import Hit, HttpReceiver, http_receiver


@dataclass
class MailBox:
    """What the SMTP server received; ``refuse`` makes it answer RCPT with that line."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: str | None = None
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == b"s3cret":
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@asynccontextmanager
async def smtp_server(
    box: MailBox,
    *,
    tls_context: ssl.SSLContext | None = None,
    auth: bool = False,
    port: int = 0,
    implicit_tls: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    """aiosmtpd on 127.0.0.1 (a free port, yielded); STARTTLS when given a context."""
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            box,
            hostname="mail.test",
            tls_context=tls_context,
            authenticator=box.authenticate if auth else None,
            # aiosmtpd cannot tell an implicit-TLS transport: only STARTTLS needs the check.
            auth_require_tls=tls_context is not None,
        )

    server = await loop.create_server(
        factory, "127.0.0.1", port, reuse_address=True, ssl=implicit_tls
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1, via the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = [
    "Hit",
    "HttpReceiver",
    "MailBox",
    "free_port",
    "http_receiver",
    "self_signed",
    "smtp_server",
]
