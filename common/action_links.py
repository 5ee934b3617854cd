"""Mint the action links of a "your decision is needed" message.

The impure half of :mod:`domain.action_links`: the random link ids, the settings,
and the database (which step, stage and round, the person holds).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.settings import Settings
from db.used_links import pending_step
from domain.action_links import ACTIONS, ActionLink, derive_key, mint

ACT_PATH = "/act/"


def link_key(settings: Settings) -> bytes:
    """The links' HMAC key: from APPROVALS_ACTION_LINK_SECRET, else the signing secret."""
    return derive_key(settings.action_link_secret or settings.signing_secret)


def link_urls(
    settings: Settings,
    user_id: str,
    request_id: str,
    stage_index: int,
    step_since: datetime,
    now: datetime,
) -> dict[str, str]:
    """``{"approve": url, "return": url, "reject": url}`` for that round of that step, each
    its own link."""
    key = link_key(settings)
    expires = now + timedelta(hours=settings.action_link_ttl_hours)
    base = settings.public_base_url.rstrip("/")
    urls: dict[str, str] = {}
    for action in ACTIONS:
        link = ActionLink(
            link_id=secrets.token_urlsafe(16),
            user_id=user_id,
            request_id=request_id,
            stage_index=stage_index,
            step_since=step_since,
            action=action,
            expires_at=expires,
        )
        urls[action] = f"{base}{ACT_PATH}{mint(key, link)}"
    return urls


def decision_links(settings: Settings) -> Callable[[str, str, int, datetime], dict[str, str]]:
    """The link maker the notifier asks for a "your decision is needed" message.

    The delivery activity finds the step (stage and round) the recipient holds when
    it sends, so a message sent after the step moved on carries no links, and one
    sent for an older round carries links that no longer act.
    """

    def make(
        user_id: str, request_id: str, stage_index: int, step_since: datetime
    ) -> dict[str, str]:
        return link_urls(settings, user_id, request_id, stage_index, step_since, datetime.now(UTC))

    return make


async def make_action_links(
    settings: Settings,
    db: AsyncSession | async_sessionmaker[AsyncSession],
    user_id: str,
    request_id: str,
    now: datetime,
) -> dict[str, str] | None:
    """The approve/return/reject links of ``user_id``'s pending step on ``request_id``.

    Args:
        settings: gives the base URL (APPROVALS_PUBLIC_BASE_URL), the lifetime
            (APPROVALS_ACTION_LINK_TTL_HOURS) and the key.
        db: a session (only read, never committed: the caller's transaction is
            its own) or a session factory (a session of its own is opened).
        user_id: who will act; the links act as this user only.
        request_id: the request (a UUID string).
        now: an aware datetime; the links expire a TTL after it.

    Returns:
        ``{"approve": url, "return": url, "reject": url}``, or None when the user
        holds no pending step on the request (nothing to decide, so no links).
    """
    if isinstance(db, AsyncSession):
        step = await pending_step(db, user_id, request_id)
    else:
        async with db() as session:
            step = await pending_step(session, user_id, request_id)
    if step is None:
        return None
    return link_urls(settings, user_id, request_id, step.stage_index, step.since, now)
