"""Group robots of DingTalk, WeCom (企业微信) and Feishu (飞书): formats and signing.

Each is one incoming-webhook URL (configuration), posting into a group chat, so
what it posts never holds a decision link (anyone in the group could use it):

* DingTalk: ``msgtype: markdown``; with a secret the URL gets ``timestamp`` (ms)
  and ``sign`` = base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")).
* WeCom: ``msgtype: markdown`` with ``content``; the key is in the URL, no signing.
* Feishu: ``msg_type: interactive`` (a card with a markdown element); with a
  secret the body gets ``timestamp`` (s) and ``sign`` = base64(HMAC-SHA256(
  key="timestamp\\nsecret", msg="")).

They answer HTTP 200 with an error JSON (``errcode`` / ``code`` != 0) when they
refuse a message; that is a failure. None of them accepts an idempotency key,
so a message sent again after a crash shows twice; the window is one send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from notify.message import Audience, Rendered, SendError, check_shareable


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_body(rendered: Rendered) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"title": rendered.subject, "text": rendered.markdown},
    }


def wecom_body(rendered: Rendered) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"content": rendered.markdown},
    }


def feishu_body(rendered: Rendered) -> dict[str, Any]:
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": rendered.markdown}]
    return {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": rendered.subject}},
            "elements": elements,
        },
    }


@dataclass(frozen=True)
class RobotConfig:
    kind: str
    """``dingtalk``, ``wecom`` or ``feishu``."""
    url: str
    secret: str | None = None
    timeout: float = 10.0


class RobotChannel:
    """Posts one rendered notice into one robot's group."""

    audience = Audience.GROUP
    """Everyone in the group reads it: never a decision link (see :func:`check_shareable`)."""

    def __init__(self, config: RobotConfig) -> None:
        self.config = config
        self.name = config.kind

    @property
    def timeout(self) -> float:
        return self.config.timeout

    def request(self, rendered: Rendered, now: float | None = None) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body to post, signed when a secret is configured.

        Raises:
            SendError: permanent, when ``rendered`` was made for one person.
        """
        check_shareable(rendered, f"{self.name} robot")
        c = self.config
        now = time.time() if now is None else now
        url = c.url
        if c.kind == "dingtalk":
            body = dingtalk_body(rendered)
            if c.secret:
                ts = int(now * 1000)
                sep = "&" if "?" in url else "?"
                url = f"{url}{sep}timestamp={ts}&sign={quote_plus(dingtalk_sign(c.secret, ts))}"
        elif c.kind == "wecom":
            body = wecom_body(rendered)
        elif c.kind == "feishu":
            body = feishu_body(rendered)
            if c.secret:
                ts = int(now)
                body = {"timestamp": str(ts), "sign": feishu_sign(c.secret, ts), **body}
        else:  # pragma: no cover - settings allow only the three
            raise SendError(f"unknown robot kind {c.kind!r}", permanent=True)
        return url, body

    async def send(self, rendered: Rendered) -> None:
        url, body = self.request(rendered)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise SendError(f"{self.name} robot: no answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise SendError(f"{self.name} robot: {type(exc).__name__}: {exc}") from exc
        if not answer.is_success:
            raise SendError(
                f"{self.name} robot answered {answer.status_code}: {answer.text[:200]}",
                permanent=400 <= answer.status_code < 500 and answer.status_code != 429,
            )
        try:
            data = answer.json()
        except ValueError:
            data = {}
        code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
        if code not in (0, None):
            message = data.get("errmsg", data.get("msg", data.get("StatusMessage", "")))
            raise SendError(f"{self.name} robot refused: {code} {message}")
