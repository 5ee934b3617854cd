"""Real receivers on 127.0.0.1 for the channel tests: an SMTP server and an HTTP server.

The SMTP server is aiosmtpd in the test's event loop; the HTTP server is the
standard library's, in a thread, answering as each test tells it (status,
body, a delay to play a hanging receiver).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


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


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A web server that records every POST and answers ``status``/``answer`` after ``delay``."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    status: int = 200
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    delay: float = 0.0
    most_at_once: int = 0
    """The most POSTs it was answering at the same time."""
    _at_once: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self) -> None:
        with self._lock:
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)

    def _leave(self) -> None:
        with self._lock:
            self._at_once -= 1


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    recv = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            recv.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            recv._enter()
            try:
                if recv.delay:
                    time.sleep(recv.delay)
            finally:
                recv._leave()
            data = json.dumps(recv.answer).encode()
            try:
                self.send_response(recv.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (the hanging-receiver tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recv.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()
