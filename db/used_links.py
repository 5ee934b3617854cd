"""Action links that were used, and the step (stage and round) a link is for."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.action_links import link_urls
from common.settings import Settings
from db.models import AssignmentRow, UsedActionLinkRow


class PendingStep(NamedTuple):
    """A step waiting for a user: its stage and its round (when they became eligible)."""

    stage_index: int
    since: datetime
    """The earliest ``eligible_since`` of the user's pending rows on that stage: the
    process's :func:`domain.core.queries.step_round`, to the microsecond."""


async def pending_step(session: AsyncSession, user_id: str, request_id: str) -> PendingStep | None:
    """The step of ``request_id`` that waits for ``user_id``, if any."""
    found = await pending_steps(session, [user_id], [request_id])
    return found.get((user_id, request_id))


async def pending_steps(
    session: AsyncSession, user_ids: Collection[str], request_ids: Collection[str]
) -> dict[tuple[str, str], PendingStep]:
    """:func:`pending_step` of many (user, request) pairs in one query, keyed by the pair.

    Pairs of the two sets that hold no pending step are missing from the result.
    """
    rows = await session.execute(
        select(
            AssignmentRow.user_id,
            AssignmentRow.request_id,
            AssignmentRow.stage_index,
            func.min(AssignmentRow.eligible_since),
        )
        .where(
            AssignmentRow.user_id.in_(user_ids),
            AssignmentRow.request_id.in_(request_ids),
            AssignmentRow.pending,
        )
        .group_by(AssignmentRow.user_id, AssignmentRow.request_id, AssignmentRow.stage_index)
    )
    steps: dict[tuple[str, str], PendingStep] = {}
    for user, request, stage, since in rows:
        # One stage is active at a time; should the read-model ever show two, the first.
        if (user, request) not in steps or stage < steps[(user, request)].stage_index:
            steps[(user, request)] = PendingStep(stage, since)
    return steps


async def step_is_pending(
    session: AsyncSession, user_id: str, request_id: str, stage_index: int, since: datetime
) -> bool:
    """Whether ``user_id`` still holds a pending step on that stage of that request, of the
    round that began at ``since`` (a return and resubmission, a transfer or a
    reassignment begins another)."""
    step = await pending_step(session, user_id, request_id)
    return step is not None and step == (stage_index, since)


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
