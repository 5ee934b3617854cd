"""Webhooks: JSON events to subscriber URLs, signed per Standard Webhooks.

Each subscriber (a YAML file, ``APPROVALS_WEBHOOKS_FILE``) has a URL, a secret
``whsec_<base64>`` and optionally the notice kinds it wants. Every request
carries ``webhook-id`` (the delivery's dedupe id: a receiver that saw it before
drops it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), as
https://www.standardwebhooks.com specifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from notify.message import Audience, SendError

SECRET_PREFIX = "whsec_"


class Subscriber(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    secret: Annotated[str, StringConstraints(pattern=r"^whsec_[A-Za-z0-9+/=]{16,}$")]
    events: tuple[str, ...] | None = None
    """Notice kinds to send (``assigned``, ``approved``, ...); None: every kind."""

    def wants(self, kind: str) -> bool:
        return self.events is None or kind in self.events


class WebhookFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscribers: list[Subscriber] = Field(default_factory=list)


def load_subscribers(path: Path | None) -> list[Subscriber]:
    """The subscribers of the webhook file; none without a file.

    Raises:
        ValueError: the file cannot be read or is invalid (naming the field).
    """
    if path is None:
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        subs = WebhookFile.model_validate(data).subscribers
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid webhook subscribers file: {exc}") from exc
    names = [s.name for s in subs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate subscriber names")
    return subs


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise SendError("webhook secret is not whsec_<base64>", permanent=True) from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: does any ``v1`` signature in the header match?"""
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    given = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, g) for g in given)


class WebhookChannel:
    """Posts one event to one subscriber."""

    name = "webhook"
    audience = Audience.GROUP
    """Another system and whoever reads it: never a decision link."""

    def __init__(self, subscribers: list[Subscriber], timeout: float = 10.0) -> None:
        self.subscribers = {s.name: s for s in subscribers}
        self.timeout = timeout

    async def send(self, subscriber: str, event: dict[str, Any], dedupe_id: str) -> None:
        """POST the event; 2xx is delivered, 408/429/5xx/timeouts are retried, other 4xx not."""
        sub = self.subscribers.get(subscriber)
        if sub is None:
            raise SendError(f"webhook subscriber {subscriber!r} is no longer configured")
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": dedupe_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(sub.secret, dedupe_id, ts, body),
            "user-agent": "approvals-webhooks/1",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(sub.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SendError(f"webhook {sub.name}: no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise SendError(f"webhook {sub.name}: {type(exc).__name__}: {exc}") from exc
        if answer.is_success:
            return
        permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
        raise SendError(
            f"webhook {sub.name} answered {answer.status_code}: {answer.text[:200]}",
            permanent=permanent,
        )
