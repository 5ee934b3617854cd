"""Idempotency-Keys of actions (decide, resubmit, …), scoped to caller and request.

A key is the caller's own: ``(request_id, user_id, key)`` remembers which
action and which body it was first used for, and which Temporal update id that
call was given. The API sends the same update id again for the same caller,
key and body (Temporal applies it once), and refuses another body or action
under the key. Another caller's key never meets this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ActionKeyRow


@dataclass(frozen=True)
class ActionKey:
    """What a key was first used for."""

    action: str
    body_hash: str
    update_id: str
    first_use: bool
    """True when this call recorded the key; False when it was there already."""


async def claim(
    session: AsyncSession,
    *,
    request_id: str,
    user_id: str,
    key: str,
    action: str,
    body_hash: str,
    update_id: str,
) -> ActionKey:
    """Record the key for this action and body unless it is known; answer what it is for.

    Safe under concurrency: of two callers racing with one key, one records it and
    the other waits for that commit and reads the winner's row (READ COMMITTED).
    The caller commits.
    """
    inserted = (
        await session.execute(
            insert(ActionKeyRow)
            .values(
                request_id=request_id,
                user_id=user_id,
                idempotency_key=key,
                action=action,
                body_hash=body_hash,
                update_id=update_id,
            )
            .on_conflict_do_nothing(index_elements=["request_id", "user_id", "idempotency_key"])
            .returning(ActionKeyRow.update_id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return ActionKey(action, body_hash, update_id, first_use=True)
    row = (
        await session.execute(
            select(ActionKeyRow).where(
                ActionKeyRow.request_id == request_id,
                ActionKeyRow.user_id == user_id,
                ActionKeyRow.idempotency_key == key,
            )
        )
    ).scalar_one()
    return ActionKey(row.action, row.body_hash, row.update_id, first_use=False)
