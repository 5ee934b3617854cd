"""Proof of who sent a message: an HMAC that only the API and operators can make.

Anyone who can reach Temporal can send a workflow a signal or an update naming
any actor. So the workflow believes an actor only when the message carries a
:class:`Proof`: an HMAC-SHA256 over the request id, the message name, the
payload, the sender kind (``api`` after a verified bearer token, ``operator``
for the ``approvals signal`` command), the operator's name, the time and a
nonce, keyed with a secret that the API, the worker and operators hold and
Temporal never sees. The workflow checks it through a local activity (the
result is recorded, so replay never needs the secret), refuses a nonce it has
seen, and records anything else as ``ignored``.

Pure: no I/O and no clock; the caller passes ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

MAX_AGE = timedelta(days=1)
"""How long a proof stays valid. A decision sent while no worker runs waits in
Temporal; a day covers any outage worth surviving, and the nonce makes each
proof single-use within that window."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a proof's time may be (the signer's clock runs ahead)."""

Sender = Literal["api", "operator"]


class Proof(BaseModel):
    """Who vouches for a message's actor, and the signature that says so."""

    by: Sender
    operator: str | None = Field(default=None, max_length=128)
    issued_at: datetime
    nonce: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")
    signature: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]+$")


def _signed_bytes(
    request_id: str,
    message: str,
    payload: dict[str, Any],
    by: str,
    operator: str | None,
    issued_at: datetime,
    nonce: str,
) -> bytes:
    canonical = {
        "request_id": request_id,
        "message": message,
        "payload": payload,
        "by": by,
        "operator": operator,
        "issued_at": issued_at.isoformat(),
        "nonce": nonce,
    }
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str).encode()


def payload_of(message: BaseModel) -> dict[str, Any]:
    """The part of a message the proof covers: everything but the proof itself."""
    return message.model_dump(mode="json", exclude={"proof"})


def sign(
    secret: str,
    request_id: str,
    message: str,
    payload: dict[str, Any],
    *,
    by: Sender,
    issued_at: datetime,
    nonce: str,
    operator: str | None = None,
) -> Proof:
    """A proof for ``payload`` sent as ``message`` to request ``request_id``."""
    mac = hmac.new(
        secret.encode(),
        _signed_bytes(request_id, message, payload, by, operator, issued_at, nonce),
        hashlib.sha256,
    )
    return Proof(
        by=by, operator=operator, issued_at=issued_at, nonce=nonce, signature=mac.hexdigest()
    )


def check(
    secret: str,
    request_id: str,
    message: str,
    payload: dict[str, Any],
    proof: Proof | None,
    now: datetime,
) -> str | None:
    """Why the proof does not vouch for ``payload``, or None when it does.

    The nonce's single use is the workflow's to check: it alone knows which
    nonces it has seen.
    """
    if proof is None:
        return (
            "the message carries no proof of its sender "
            "(only the API or a signed operator command may name an actor)"
        )
    expected = sign(
        secret,
        request_id,
        message,
        payload,
        by=proof.by,
        issued_at=proof.issued_at,
        nonce=proof.nonce,
        operator=proof.operator,
    )
    if not hmac.compare_digest(expected.signature, proof.signature):
        return "the message's proof does not match it (wrong secret, or the message was altered)"
    if proof.issued_at > now + CLOCK_SKEW:
        return "the message's proof is dated in the future"
    if now - proof.issued_at > MAX_AGE:
        return "the message's proof has expired"
    return None


M = TypeVar("M", bound=BaseModel)


def with_proof(
    message: M,
    secret: str,
    request_id: str,
    name: str,
    *,
    by: Sender,
    issued_at: datetime,
    nonce: str,
    operator: str | None = None,
) -> M:
    """``message`` carrying a proof for itself, sent as ``name`` to ``request_id``."""
    proof = sign(
        secret,
        request_id,
        name,
        payload_of(message),
        by=by,
        issued_at=issued_at,
        nonce=nonce,
        operator=operator,
    )
    return message.model_copy(update={"proof": proof})
