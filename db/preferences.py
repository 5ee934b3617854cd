"""Each user's notice preferences: read with defaults, set by the user, synced from the org file."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import UserPreferenceRow
from notify.preferences import DEFAULT_CHANNELS, Preferences

_ORG_COLUMNS = ("channels", "locale", "time_zone")


async def get_preferences(
    session: AsyncSession, user_id: str, default_locale: str, default_time_zone: str
) -> Preferences:
    """The user's preferences; what they (or the org file) left unset comes from the defaults."""
    row = await session.get(UserPreferenceRow, user_id)
    return Preferences.model_validate(
        {
            "channels": row.channels
            if row is not None and row.channels is not None
            else list(DEFAULT_CHANNELS),
            "locale": (row.locale if row is not None else None) or default_locale,
            "time_zone": (row.time_zone if row is not None else None) or default_time_zone,
        }
    )


async def set_preferences(session: AsyncSession, user_id: str, prefs: Preferences) -> None:
    """Store the user's own choice; later org-file loads leave it alone."""
    values = {
        "channels": list(prefs.channels),
        "locale": prefs.locale,
        "time_zone": prefs.time_zone,
        "source": "user",
    }
    stmt = insert(UserPreferenceRow).values(user_id=user_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[UserPreferenceRow.user_id], set_=values)
    )


async def sync_org_preferences(session: AsyncSession, wanted: Iterable[dict[str, Any]]) -> None:
    """Write the org file's preferences (``user_id``, ``channels``, ``locale``, ``time_zone``).

    Rows a user set themselves are never overwritten; org rows of users whose
    entry no longer states preferences are removed (the defaults apply again).
    """
    rows = list(wanted)
    listed = [r["user_id"] for r in rows]
    await session.execute(
        delete(UserPreferenceRow).where(
            UserPreferenceRow.source == "org", UserPreferenceRow.user_id.not_in(listed)
        )
    )
    if not rows:
        return
    stmt = insert(UserPreferenceRow).values([{**r, "source": "org"} for r in rows])
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[UserPreferenceRow.user_id],
            set_={c: stmt.excluded[c] for c in _ORG_COLUMNS},
            # Only the org's own rows, and only when they differ: a repeated load writes nothing.
            where=(UserPreferenceRow.source == "org")
            & tuple_(*(UserPreferenceRow.__table__.c[c] for c in _ORG_COLUMNS)).is_distinct_from(
                tuple_(*(stmt.excluded[c] for c in _ORG_COLUMNS))
            ),
        )
    )
