"""Mint the action links of a "your decision is needed" message.

The impure half of :mod:`domain.action_links`: the random link ids and the settings.
Which step (stage and round) a person holds is the database's to say
(:func:`db.used_links.make_action_links`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from common.settings import Settings
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
