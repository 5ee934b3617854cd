"""Signed, expiring action links: decide a step from a message, without signing in.

A link carries one decision (``approve``, ``return`` or ``reject``) of one user on
one round of their step on one stage of one request, until it expires. The round
is the instant the user became eligible on that step (``Actor.since``, the
assignments' ``eligible_since``): a return and resubmission, a transfer or a
reassignment starts a new round, and a link of an older one no longer acts (it
would decide on terms its holder never saw). Its token is
``<body>.<signature>``: the body is the claims as compact JSON in unpadded
base64url, the signature an HMAC-SHA256 over the body *as sent*, keyed with a
key of its own (:func:`derive_key`), in unpadded base64url. Verification
compares the signature text in constant time before it reads anything in the
body, so a changed character anywhere in a token is refused as ``tampered``,
never read.

Single use is not this module's business (it needs the database): the link id
is random and unique, and the web layer records it when the link is used.

Pure: no I/O, no clock and no randomness; the caller passes ``now`` and the link id.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from domain.inbound import InboundError, check_id

Action = Literal["approve", "return", "reject"]
ACTIONS: tuple[Action, ...] = get_args(Action)

VERSION = 2
"""2: bound to the round of the step (``n``). Tokens of version 1 name no round, so
they are refused as :attr:`Refusal.OUTDATED`."""
MAX_TOKEN_LENGTH = 1024
"""No token this module makes comes near it; longer text is not read at all."""

_KEY_LABEL = b"approvals/action-links/v1"
_FORM_LABEL = b"approvals/action-links/form/v1."
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MAX_STAGE = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_MICROS = 2**53


class Refusal(enum.StrEnum):
    """Why a token was refused, each with its own page."""

    MALFORMED = "malformed"
    """Not a token this service makes (cut short, wrong characters, too long)."""
    TAMPERED = "tampered"
    """Shaped like a token, but its signature does not match its content."""
    EXPIRED = "expired"
    """Genuine, but past its expiry."""
    OUTDATED = "outdated"
    """Genuine, but of an older version that names no round of its step: whether its
    step is still the one it was made for cannot be told, so it never acts."""


class LinkRefused(ValueError):
    """A token that must not be acted on; ``reason`` says why."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


class _Outdated(Exception):
    """A genuine token of an older version (see :data:`VERSION`)."""


@dataclass(frozen=True)
class ActionLink:
    """What a token grants: ``user_id`` may take ``action`` on one stage, until ``expires_at``."""

    link_id: str
    user_id: str
    request_id: str
    stage_index: int
    step_since: datetime
    """The round of the step: when ``user_id`` became eligible on it (to the microsecond)."""
    action: Action
    expires_at: datetime
    """Whole seconds, UTC."""


def derive_key(secret: str) -> bytes:
    """The links' own HMAC key, derived from ``secret`` (never the secret itself).

    A signature made for links is then never valid for another use of the same
    secret (workflow message proofs, bearer tokens), nor the other way round.
    """
    return hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def _check_claims(link: ActionLink) -> None:
    """Raises ValueError when ``link`` holds what no real link holds."""
    if _LINK_ID.fullmatch(link.link_id) is None:
        raise ValueError("the link id must be 16 to 64 base64url characters")
    try:
        check_id(link.user_id)
    except InboundError as exc:
        raise ValueError(f"user id {exc}") from None
    if _UUID.fullmatch(link.request_id) is None:
        raise ValueError("the request id must be a lower-case UUID")
    if (
        not isinstance(link.stage_index, int)
        or isinstance(link.stage_index, bool)
        or not 0 <= link.stage_index < _MAX_STAGE
    ):
        raise ValueError("the stage index must be a small non-negative integer")
    if not isinstance(link.step_since, datetime) or link.step_since.tzinfo is None:
        raise ValueError("the step's round must be a timezone-aware instant")
    if not 0 <= _micros(link.step_since) < _MAX_MICROS:
        raise ValueError("the step's round is out of range")
    if link.action not in ACTIONS:
        raise ValueError(f"the action must be one of {ACTIONS}")
    if link.expires_at.tzinfo is None:
        raise ValueError("the expiry must be timezone-aware")


def _micros(at: datetime) -> int:
    """``at`` as whole microseconds since the epoch: exact, unlike a float timestamp."""
    return (at - _EPOCH) // _MICROSECOND


def mint(key: bytes, link: ActionLink) -> str:
    """The token of ``link`` (its expiry is cut to whole seconds).

    Raises:
        ValueError: ``link`` holds something no link may (see :class:`ActionLink`).
    """
    _check_claims(link)
    claims = {
        "v": VERSION,
        "l": link.link_id,
        "u": link.user_id,
        "r": link.request_id,
        "s": link.stage_index,
        "n": _micros(link.step_since),
        "a": link.action,
        "e": int(link.expires_at.timestamp()),
    }
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_sign(key, body)}"


def _claims(body: str) -> ActionLink:
    """The link in a body whose signature matched; ValueError if it holds no link."""
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a claims object")
    version = data.get("v")
    if isinstance(version, int) and not isinstance(version, bool) and 0 < version < VERSION:
        raise _Outdated
    if version != VERSION:
        raise ValueError("not a claims object of this version")
    expiry = data.get("e")
    if not isinstance(expiry, int) or isinstance(expiry, bool) or not 0 < expiry < 2**40:
        raise ValueError("no expiry")
    since = data.get("n")
    if not isinstance(since, int) or isinstance(since, bool) or not 0 <= since < _MAX_MICROS:
        raise ValueError("no round")
    link = ActionLink(
        link_id=data.get("l"),  # type: ignore[arg-type]  # checked below
        user_id=data.get("u"),  # type: ignore[arg-type]
        request_id=data.get("r"),  # type: ignore[arg-type]
        stage_index=data.get("s"),  # type: ignore[arg-type]
        step_since=_EPOCH + since * _MICROSECOND,
        action=data.get("a"),  # type: ignore[arg-type]
        expires_at=datetime.fromtimestamp(expiry, UTC),
    )
    if not all(isinstance(v, str) for v in (link.link_id, link.user_id, link.request_id)):
        raise ValueError("ids must be strings")
    _check_claims(link)
    return link


def verify(key: bytes, token: object, now: datetime) -> ActionLink:
    """The link ``token`` grants at ``now``.

    Raises:
        LinkRefused: ``malformed`` (not shaped like a token), ``tampered`` (the
            signature does not match), ``outdated`` (genuine but of an older version),
            ``expired`` (genuine but at or past its expiry).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise LinkRefused(Refusal.MALFORMED)
    body, dot, signature = token.partition(".")
    if (
        not dot
        or _B64URL.fullmatch(body) is None
        or _B64URL.fullmatch(signature) is None
        or len(signature) != 43  # 32 bytes, unpadded
    ):
        raise LinkRefused(Refusal.MALFORMED)
    # The signature's text, not its decoded bytes: base64 lets a last character
    # change without changing the bytes, and a changed token must never pass.
    if not hmac.compare_digest(_sign(key, body), signature):
        raise LinkRefused(Refusal.TAMPERED)
    try:
        link = _claims(body)
    except _Outdated:
        raise LinkRefused(Refusal.OUTDATED) from None
    except ValueError:
        # Signed by us yet unreadable: only a leaked key makes this; never act on it.
        raise LinkRefused(Refusal.TAMPERED) from None
    if now >= link.expires_at:
        raise LinkRefused(Refusal.EXPIRED)
    return link


def form_nonce(key: bytes, token: str) -> str:
    """The hidden value the confirmation form sends back with ``token``.

    Only a page this service rendered for the token holds it, so a POST made
    elsewhere (a cross-site form that somehow learnt the token) also needs the page.
    """
    return _b64(hmac.new(key, _FORM_LABEL + token.encode("utf-8"), hashlib.sha256).digest())


def check_form_nonce(key: bytes, token: str, nonce: object) -> bool:
    """Whether ``nonce`` is :func:`form_nonce` of ``token`` (constant time)."""
    if not isinstance(nonce, str) or len(nonce) > 100 or not nonce.isascii():
        return False
    return hmac.compare_digest(form_nonce(key, token), nonce)
