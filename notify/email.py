"""E-mail over SMTP (aiosmtplib): plain, STARTTLS or implicit TLS, optional login.

The ``Message-ID`` is the delivery's dedupe id, so a message sent again after a
crash (between the SMTP server's 250 and our record of it) carries the same id,
and mail clients and archives show it once.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from notify.message import Audience, Rendered, SendError


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "none"
    """``none``, ``starttls`` or ``tls`` (implicit TLS, usually port 465)."""
    username: str | None = None
    password: str | None = None
    sender: str = "approvals@localhost"
    timeout: float = 15.0
    tls_context: ssl.SSLContext | None = None
    """For tests and private CAs; default: the system's trust store."""


def message_id(dedupe_id: str, sender: str) -> str:
    """An RFC 5322 Message-ID made of the dedupe id and the sender's domain."""
    domain = sender.rpartition("@")[2].strip(">") or "approvals"
    return f"<{dedupe_id}@{domain}>"


def build_email(rendered: Rendered, to: str, sender: str, dedupe_id: str) -> EmailMessage:
    """A multipart/alternative message: the text part first, the HTML part preferred."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(dedupe_id, sender)
    # set_content() clears every Content-* header of the message it fills, and
    # add_alternative() moves them into the first part: each part says its language as
    # it is made, and the multipart says it once it exists.
    language = [f"Content-Language: {rendered.locale}"]
    msg.set_content(rendered.text, headers=language)
    msg.add_alternative(rendered.html, subtype="html", headers=language)
    msg["Content-Language"] = rendered.locale
    return msg


class EmailChannel:
    """Sends one rendered notice to one address."""

    name = "email"
    audience = Audience.PERSON
    """The recipient's own mailbox: the one channel their decision links may go to."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @property
    def timeout(self) -> float:
        return self.config.timeout

    async def send(self, rendered: Rendered, to: str, dedupe_id: str) -> None:
        """Send, or raise :class:`SendError` (permanent for a 5xx answer)."""
        c = self.config
        msg = build_email(rendered, to, c.sender, dedupe_id)
        try:
            await aiosmtplib.send(
                msg,
                hostname=c.host,
                port=c.port,
                username=c.username,
                password=c.password,
                use_tls=c.security == "tls",
                start_tls=True if c.security == "starttls" else False,
                tls_context=c.tls_context,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            permanent = all(r.code >= 500 for r in exc.recipients)
            raise SendError(f"SMTP refused {to}: {refused}", permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(
                f"SMTP answered {exc.code} {exc.message}", permanent=exc.code >= 500
            ) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise SendError(
                f"SMTP server {c.host}:{c.port} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        except aiosmtplib.SMTPException as exc:
            # E.g. no STARTTLS or AUTH offered: a configuration problem, retried in case the
            # server is fixed meanwhile.
            raise SendError(f"SMTP error at {c.host}:{c.port}: {exc}") from exc
