"""The in-app notices of one person: a page newest first, the unread count, read markers.

Every transition writes its notices to ``notifications``; the in-app ones
(channel ``inbox``) are what ``GET /v1/notifications`` shows their recipient.
Nobody reads, or marks, anyone else's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import NotificationRow

IN_APP_CHANNEL = "inbox"
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True)
class NoticeCursor:
    """Where a page ended: the last notice's ``(created_at, id)``, newest first."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> NoticeCursor:
        """Parse a cursor made by :meth:`encode` (only that gets through).

        Raises:
            ValueError: the text is not a cursor this service made.
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, row_id = json.loads(raw)
            if not isinstance(at, str):
                raise TypeError("not a timestamp")
            created = datetime.fromisoformat(at)
            if created.tzinfo is None or created.utcoffset() is None:
                raise ValueError("naive timestamp")
            created = created.astimezone(UTC)
            if not isinstance(row_id, int) or isinstance(row_id, bool):
                raise TypeError("not a row id")
            if not 0 < row_id <= MAX_ROW_ID:
                raise ValueError("not a row id")
        except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
            raise ValueError("not a valid cursor") from exc
        return cls(created_at=created, id=row_id)


def _mine(user_id: str) -> ColumnElement[bool]:
    return and_(NotificationRow.recipient == user_id, NotificationRow.channel == IN_APP_CHANNEL)


async def page(
    session: AsyncSession, user_id: str, *, after: NoticeCursor | None, limit: int
) -> tuple[Sequence[NotificationRow], NoticeCursor | None]:
    """One page of my notices, newest first, and the cursor of the next one."""
    query = select(NotificationRow).where(_mine(user_id))
    if after is not None:
        query = query.where(
            tuple_(NotificationRow.created_at, NotificationRow.id)
            < tuple_(after.created_at, after.id)
        )
    query = query.order_by(NotificationRow.created_at.desc(), NotificationRow.id.desc())
    rows = (await session.execute(query.limit(limit + 1))).scalars().all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, NoticeCursor(created_at=rows[-1].created_at, id=rows[-1].id)


async def unread_count(session: AsyncSession, user_id: str) -> int:
    total = await session.scalar(
        select(func.count())
        .select_from(NotificationRow)
        .where(_mine(user_id), NotificationRow.read_at.is_(None))
    )
    return int(total or 0)


async def mark_read(session: AsyncSession, user_id: str, notice_id: int) -> NotificationRow | None:
    """Mark my notice read (once: a second call keeps the first time); None if not mine."""
    row = (
        await session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notice_id, _mine(user_id))
            .values(read_at=func.coalesce(NotificationRow.read_at, func.now()))
            .returning(NotificationRow)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    return row


async def mark_all_read(session: AsyncSession, user_id: str) -> int:
    """Mark every unread notice of mine read; how many were."""
    result = await session.execute(
        update(NotificationRow)
        .where(_mine(user_id), NotificationRow.read_at.is_(None))
        .values(read_at=func.now())
        .returning(NotificationRow.id)
    )
    return len(result.all())
