"""Bearer tokens: HS256 JWTs whose subject is a directory user id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from common.settings import Settings
from domain.inbound import InboundError, check_id

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing a claim, badly signed, malformed or expired."""


def issue_token(settings: Settings, user_id: str) -> str:
    """A signed token for ``user_id``, valid for ``settings.token_ttl_hours``."""
    now = datetime.now(UTC)
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(hours=settings.token_ttl_hours),
    }
    return jwt.encode(claims, settings.token_secret, algorithm=ALGORITHM)


def user_id_from_token(settings: Settings, token: str) -> str:
    """The user id a valid token names.

    Raises:
        InvalidToken: with a reason safe to show the caller.
    """
    try:
        claims = jwt.decode(
            token,
            settings.token_secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("the token is not valid") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("the token names no user")
    try:
        return check_id(sub)
    except InboundError as exc:
        raise InvalidToken("the token's subject is not a user id") from exc
