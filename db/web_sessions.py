"""Web sessions (:class:`db.models.WebSessionRow`): open, find, end."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import WebSessionRow


@dataclass(frozen=True)
class WebSession:
    user_id: str
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, user_id: str, lifetime: timedelta) -> str:
    """A new session of ``user_id``: the cookie's token (never stored as such)."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSessionRow(
            token_sha256=_digest(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=datetime.now(UTC) + lifetime,
        )
    )
    await session.flush()
    return token


async def find_session(session: AsyncSession, token: str) -> WebSession | None:
    """The live session ``token`` names; None if unknown or expired (then removed)."""
    if not token or len(token) > 200:
        return None
    row = await session.get(WebSessionRow, _digest(token))
    if row is None:
        return None
    if row.expires_at <= datetime.now(UTC):
        await session.delete(row)
        return None
    return WebSession(row.user_id, row.csrf_token, row.expires_at)


async def end_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(WebSessionRow).where(WebSessionRow.token_sha256 == _digest(token)))


async def end_expired(session: AsyncSession) -> int:
    """Remove the expired sessions; how many there were."""
    found = await session.execute(
        select(WebSessionRow.token_sha256).where(WebSessionRow.expires_at <= datetime.now(UTC))
    )
    digests = list(found.scalars())
    if digests:
        await session.execute(delete(WebSessionRow).where(WebSessionRow.token_sha256.in_(digests)))
    return len(digests)
