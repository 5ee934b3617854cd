"""Each user's notice preferences: read with defaults, set by the user, synced from the org file.

Each value is the user's own (named in ``user_fields``), else the org file's, else NULL
(the default). A user's write makes the values it carries their own; a load of the org
file rewrites the others only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    any_,
    case,
    delete,
    func,
    literal,
    literal_column,
    tuple_,
    update,
)
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


async def saved_locale(session: AsyncSession, user_id: str) -> str | None:
    """The locale saved for the user (their own, else the org file's); None: none is."""
    row = await session.get(UserPreferenceRow, user_id)
    return row.locale if row is not None else None


async def set_preferences(session: AsyncSession, user_id: str, prefs: Preferences) -> None:
    """Store the user's own choice of all three; later org-file loads leave it alone."""
    await update_preferences(
        session,
        user_id,
        {"channels": list(prefs.channels), "locale": prefs.locale, "time_zone": prefs.time_zone},
    )


async def update_preferences(session: AsyncSession, user_id: str, given: dict[str, Any]) -> None:
    """Store the ``given`` values as the user's own; the others stay as they are."""
    if not given:
        return
    unknown = set(given) - set(_ORG_COLUMNS)
    if unknown:
        raise ValueError(f"not a preference: {sorted(unknown)}")
    stmt = insert(UserPreferenceRow).values(
        user_id=user_id, **given, user_fields=sorted(given), source="user"
    )
    # The fields named before and now, each once, in order.
    owned: ColumnElement[list[str]] = literal_column(
        "ARRAY(SELECT DISTINCT f FROM unnest(user_preferences.user_fields"
        " || excluded.user_fields) AS f ORDER BY f)"
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[UserPreferenceRow.user_id],
            set_={**{c: stmt.excluded[c] for c in given}, "user_fields": owned, "source": "user"},
        )
    )


def _unless_owned(column: str, value: Any) -> ColumnElement[Any]:
    """``value``, or the column as it is where the user chose it themselves."""
    return case(
        (
            literal(column) == any_(UserPreferenceRow.user_fields),
            UserPreferenceRow.__table__.c[column],
        ),
        else_=value,
    )


async def sync_org_preferences(session: AsyncSession, wanted: Iterable[dict[str, Any]]) -> None:
    """Write the org file's preferences (``user_id``, ``channels``, ``locale``, ``time_zone``).

    The values a user chose themselves are never overwritten; the org file's values of
    users whose entry no longer states preferences are removed (the defaults apply again,
    and a row the user chose nothing in goes).
    """
    rows = list(wanted)
    listed = [r["user_id"] for r in rows]
    gone = UserPreferenceRow.user_id.not_in(listed)
    await session.execute(
        delete(UserPreferenceRow).where(gone, func.cardinality(UserPreferenceRow.user_fields) == 0)
    )
    cleared = {c: _unless_owned(c, None) for c in _ORG_COLUMNS}
    await session.execute(
        update(UserPreferenceRow)
        .where(gone, _current().is_distinct_from(tuple_(*cleared.values())))
        .values(cleared)
        .execution_options(synchronize_session=False)
    )
    if not rows:
        return
    stmt = insert(UserPreferenceRow).values(
        [{**r, "source": "org", "user_fields": []} for r in rows]
    )
    merged = {c: _unless_owned(c, stmt.excluded[c]) for c in _ORG_COLUMNS}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[UserPreferenceRow.user_id],
            set_=merged,
            # Only when something changes: a repeated load writes nothing.
            where=_current().is_distinct_from(tuple_(*merged.values())),
        )
    )


def _current() -> ColumnElement[Any]:
    return tuple_(*(UserPreferenceRow.__table__.c[c] for c in _ORG_COLUMNS))
