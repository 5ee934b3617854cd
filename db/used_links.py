"""Action links that were used, and the step a link is for."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AssignmentRow, UsedActionLinkRow


async def pending_stage(session: AsyncSession, user_id: str, request_id: str) -> int | None:
    """The stage of ``request_id`` on which ``user_id`` holds a pending step, if any."""
    return await session.scalar(
        select(AssignmentRow.stage_index)
        .where(
            AssignmentRow.request_id == request_id,
            AssignmentRow.user_id == user_id,
            AssignmentRow.pending,
        )
        .order_by(AssignmentRow.stage_index)
        .limit(1)
    )


async def pending_stages(
    session: AsyncSession, user_ids: Collection[str], request_ids: Collection[str]
) -> dict[tuple[str, str], int]:
    """:func:`pending_stage` of many (user, request) pairs in one query, keyed by the pair.

    Pairs of the two sets that hold no pending step are missing from the result.
    """
    rows = await session.execute(
        select(AssignmentRow.user_id, AssignmentRow.request_id, func.min(AssignmentRow.stage_index))
        .where(
            AssignmentRow.user_id.in_(user_ids),
            AssignmentRow.request_id.in_(request_ids),
            AssignmentRow.pending,
        )
        .group_by(AssignmentRow.user_id, AssignmentRow.request_id)
    )
    return {(user, request): stage for user, request, stage in rows}


async def step_is_pending(
    session: AsyncSession, user_id: str, request_id: str, stage_index: int
) -> bool:
    """Whether ``user_id`` still holds a pending step on that stage of that request."""
    found = await session.scalar(
        select(
            exists().where(
                AssignmentRow.request_id == request_id,
                AssignmentRow.user_id == user_id,
                AssignmentRow.stage_index == stage_index,
                AssignmentRow.pending,
            )
        )
    )
    return bool(found)


async def is_used(session: AsyncSession, link_id: str) -> bool:
    return bool(await session.scalar(select(exists().where(UsedActionLinkRow.link_id == link_id))))


async def claim(
    session: AsyncSession,
    *,
    link_id: str,
    request_id: str,
    user_id: str,
    stage_index: int,
    action: str,
) -> bool:
    """Record the link as used; False when it already was (by this call's rival, too)."""
    claimed = await session.scalar(
        insert(UsedActionLinkRow)
        .values(
            link_id=link_id,
            request_id=request_id,
            user_id=user_id,
            stage_index=stage_index,
            action=action,
        )
        .on_conflict_do_nothing(index_elements=[UsedActionLinkRow.link_id])
        .returning(UsedActionLinkRow.link_id)
    )
    return claimed is not None


async def release(session: AsyncSession, link_id: str) -> None:
    """Forget a claim whose action did not happen, so the link may be tried again."""
    await session.execute(delete(UsedActionLinkRow).where(UsedActionLinkRow.link_id == link_id))
