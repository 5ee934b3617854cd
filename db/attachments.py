"""The ``attachments`` table: uploads, their claim by a message, reading them back.

An upload is unattached until a submission, decision or comment names it; the API
claims it then (one ``UPDATE``: it exists, the caller uploaded it, nothing else has
it) and releases it again when the process refuses the message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AttachmentRow
from domain.attachments import UNATTACHED_FOR

CHUNK = 256 * 1024
"""Bytes read from PostgreSQL per query while a download streams."""


@dataclass(frozen=True)
class AttachmentMeta:
    """An attachment without its bytes."""

    id: str
    uploader: str
    file_name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    request_id: str | None
    attached_as: str | None


_META = (
    AttachmentRow.id,
    AttachmentRow.uploader,
    AttachmentRow.file_name,
    AttachmentRow.content_type,
    AttachmentRow.size,
    AttachmentRow.sha256,
    AttachmentRow.created_at,
    AttachmentRow.request_id,
    AttachmentRow.attached_as,
)


def _meta(row: object) -> AttachmentMeta:
    return AttachmentMeta(**{c.key: getattr(row, c.key) for c in _META})


async def store(session: AsyncSession, row: AttachmentRow) -> AttachmentMeta:
    session.add(row)
    await session.flush()
    return _meta(row)


async def get_meta(session: AsyncSession, attachment_id: str) -> AttachmentMeta | None:
    found = (
        await session.execute(select(*_META).where(AttachmentRow.id == attachment_id))
    ).one_or_none()
    return None if found is None else _meta(found)


async def claim(
    session: AsyncSession,
    ids: list[str],
    uploader: str,
    request_id: str,
    attached_as: str,
    key: str,
) -> dict[str, str] | list[str]:
    """Attach ``ids`` to the request: their hashes by id, or the ids that cannot be.

    An id can be when it exists, ``uploader`` uploaded it and it is unattached, or
    already attached under this same ``key`` (the same call, retried). All or none.
    """
    if not ids:
        return {}
    rows = (
        await session.execute(
            update(AttachmentRow)
            .where(
                AttachmentRow.id.in_(ids),
                AttachmentRow.uploader == uploader,
                or_(
                    AttachmentRow.request_id.is_(None),
                    and_(AttachmentRow.request_id == request_id, AttachmentRow.claim == key),
                ),
            )
            .values(
                request_id=request_id,
                attached_as=attached_as,
                claim=key,
                attached_at=func.now(),
            )
            .returning(AttachmentRow.id, AttachmentRow.sha256)
        )
    ).all()
    hashes = {r.id: r.sha256 for r in rows}
    missing = [i for i in ids if i not in hashes]
    if missing:
        await session.rollback()
        return missing
    return hashes


async def release(session: AsyncSession, ids: list[str], key: str) -> None:
    """Unattach ``ids`` claimed under ``key`` (the message they were for was refused)."""
    if ids:
        await session.execute(
            update(AttachmentRow)
            .where(AttachmentRow.id.in_(ids), AttachmentRow.claim == key)
            .values(request_id=None, attached_as=None, claim=None, attached_at=None)
        )


async def of_request(session: AsyncSession, request_id: str) -> Sequence[AttachmentMeta]:
    """Every file attached to the request, oldest first."""
    rows = await session.execute(
        select(*_META)
        .where(AttachmentRow.request_id == request_id)
        .order_by(AttachmentRow.attached_at, AttachmentRow.id)
    )
    return [_meta(r) for r in rows]


async def chunks(
    sessions: async_sessionmaker[AsyncSession], attachment_id: str, size: int
) -> AsyncIterator[bytes]:
    """The bytes of an attachment, :data:`CHUNK` at a time, each read on its own."""
    for offset in range(0, size, CHUNK):
        async with sessions() as session:
            part = (
                await session.execute(
                    select(func.substring(AttachmentRow.content, offset + 1, CHUNK)).where(
                        AttachmentRow.id == attachment_id
                    )
                )
            ).scalar_one_or_none()
        if part is None:
            return
        yield bytes(part)


async def delete_stale(session: AsyncSession, now: datetime) -> int:
    """Delete uploads nobody attached within a day (:data:`UNATTACHED_FOR`); how many."""
    result = await session.execute(
        delete(AttachmentRow)
        .where(AttachmentRow.request_id.is_(None), AttachmentRow.created_at <= now - UNATTACHED_FOR)
        .returning(AttachmentRow.id)
    )
    return len(result.all())
