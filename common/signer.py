"""Vouch for a workflow message's actor: the API after a verified token, operators by command.

The impure half of :mod:`domain.signing` (the clock and a random nonce).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

from domain.signing import Sender, with_proof

M = TypeVar("M", bound=BaseModel)


def vouch(
    message: M,
    secret: str,
    request_id: str,
    name: str,
    *,
    by: Sender = "api",
    operator: str | None = None,
) -> M:
    """``message`` with a fresh, single-use proof that ``by`` (and ``operator``) sent it."""
    return with_proof(
        message,
        secret,
        request_id,
        name,
        by=by,
        issued_at=datetime.now(UTC),
        nonce=secrets.token_hex(16),
        operator=operator,
    )
