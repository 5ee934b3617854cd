"""The development mail catcher: an SMTP server (aiosmtpd) that keeps every mail it is sent.

``make dev`` starts it (``approvals mailcatcher``) and points the e-mail channel at
it, so every message the walk-through produces can be read at ``/dev/mails``
without a real mail server. Each mail is one ``.eml`` file under
``<data dir>/mail``, written whole under a temporary name and then renamed, so
the page never reads half a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("approvals.mailcatcher")

KEEP = 500
"""Mails kept; older ones are removed as new ones arrive."""


class CatchingHandler:
    """Accepts every mail and writes it to ``directory``."""

    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = directory
        self.keep = keep

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        self.directory.mkdir(parents=True, exist_ok=True)
        part = self.directory / f".{name}.part"
        part.write_bytes(raw)
        part.rename(self.directory / f"{name}.eml")
        log.info("caught a mail for %s (%d bytes)", ", ".join(envelope.rcpt_tos), len(raw))
        for old in sorted(self.directory.glob("*.eml"))[: -self.keep]:
            old.unlink(missing_ok=True)
        return "250 Message accepted for delivery"


async def serve(directory: Path, host: str, port: int) -> None:
    """Run the catcher until cancelled."""
    handler = CatchingHandler(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailcatcher.local"), host, port, reuse_address=True
    )
    log.info("mail catcher listening on %s:%d, keeping mails in %s", host, port, directory)
    try:
        await asyncio.Event().wait()
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class CaughtMail:
    name: str
    subject: str
    sender: str
    to: str
    date: str
    message_id: str
    text: str
    html: str | None


def read_mail(path: Path) -> CaughtMail:
    msg = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text_part = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    return CaughtMail(
        name=path.stem,
        subject=str(msg.get("Subject", "")),
        sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        date=str(msg.get("Date", "")),
        message_id=str(msg.get("Message-ID", "")),
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else None,
    )


def caught(directory: Path, limit: int = 100) -> list[CaughtMail]:
    """The newest ``limit`` caught mails, newest first (unreadable files are skipped)."""
    found: list[CaughtMail] = []
    for path in sorted(directory.glob("*.eml"), reverse=True)[:limit]:
        try:
            found.append(read_mail(path))
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", path, exc)
    return found
