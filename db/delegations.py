"""Delegations made through the API: listing, making, ending, their audit and notices.

The rules (who may, loops, validation) are :mod:`domain.delegation`; this module
reads and writes the rows. Making and ending take one advisory lock, so two
delegations that would together close a loop cannot both pass the check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import transaction
from db.models import AssignmentRow, DelegationEventRow, DelegationRow, NotificationRow
from domain.delegation import DelegationSource, Edge
from domain.process import DirectoryChangedInput

DELEGATION_LOCK = 7_201_914_017
"""Advisory lock: one delegation made or ended at a time (the loop check reads them all)."""

MAX_LISTED = 500


async def lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DELEGATION_LOCK})


async def of_user(session: AsyncSession, user_id: str) -> Sequence[DelegationRow]:
    """Those given by ``user_id`` and those given to them, latest start first."""
    rows = await session.scalars(
        select(DelegationRow)
        .where(or_(DelegationRow.from_user == user_id, DelegationRow.to_user == user_id))
        .order_by(DelegationRow.starts_at.desc(), DelegationRow.id.desc())
        .limit(MAX_LISTED)
    )
    return rows.all()


async def by_key(session: AsyncSession, author: str, key: str) -> DelegationRow | None:
    return await session.scalar(
        select(DelegationRow).where(
            DelegationRow.created_by == author, DelegationRow.idempotency_key == key
        )
    )


def edge_of(row: DelegationRow) -> Edge:
    return Edge(
        from_=row.from_user,
        to=row.to_user,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        types=frozenset(row.request_types) if row.request_types is not None else None,
    )


async def overlapping(session: AsyncSession, starts_at: datetime, ends_at: datetime) -> list[Edge]:
    """Every delegation in force at some moment of ``[starts_at, ends_at)``."""
    rows = await session.scalars(
        select(DelegationRow).where(
            DelegationRow.starts_at < ends_at,
            DelegationRow.ends_at > starts_at,
            DelegationRow.starts_at < DelegationRow.ends_at,
        )
    )
    return [edge_of(r) for r in rows]


async def audit(
    session: AsyncSession, delegation_id: int, actor: str, kind: str, data: dict[str, Any]
) -> None:
    session.add(DelegationEventRow(delegation_id=delegation_id, actor=actor, kind=kind, data=data))
    await session.flush()


async def add_notice(
    session: AsyncSession, recipient: str, template: str, key: str, payload: dict[str, Any]
) -> None:
    """A notice outside any request, once per ``key``."""
    await session.execute(
        insert(NotificationRow)
        .values(
            request_id=None,
            recipient=recipient,
            template=template,
            payload=payload,
            dedupe_key=key,
        )
        .on_conflict_do_nothing(index_elements=[NotificationRow.dedupe_key])
    )


def new_row(
    *,
    from_user: str,
    to_user: str,
    starts_at: datetime,
    ends_at: datetime,
    request_types: list[str] | None,
    reason: str,
    created_by: str,
    idempotency_key: str | None,
) -> DelegationRow:
    return DelegationRow(
        from_user=from_user,
        to_user=to_user,
        starts_at=starts_at,
        ends_at=ends_at,
        request_types=request_types,
        reason=reason,
        source=DelegationSource.API.value,
        created_by=created_by,
        idempotency_key=idempotency_key,
    )


async def requests_waiting_on(session: AsyncSession, users: Sequence[str]) -> list[str]:
    """Requests with a pending step that one of ``users`` holds."""
    if not users:
        return []
    rows = await session.scalars(
        select(AssignmentRow.request_id)
        .where(AssignmentRow.pending.is_(True), AssignmentRow.user_id.in_(sorted(set(users))))
        .distinct()
        .order_by(AssignmentRow.request_id)
    )
    return list(rows)


def untold_query(now: datetime) -> Select[DelegationRow]:
    """Delegations that started or ended by ``now`` and whose requests were not told."""
    return (
        select(DelegationRow)
        .where(
            or_(
                DelegationRow.start_told_at.is_(None) & (DelegationRow.starts_at <= now),
                DelegationRow.end_told_at.is_(None) & (DelegationRow.ends_at <= now),
            )
        )
        .order_by(DelegationRow.id)
    )


async def mark_told(session: AsyncSession, row: DelegationRow, now: datetime) -> None:
    values: dict[str, datetime] = {}
    if row.start_told_at is None and row.starts_at <= now:
        values["start_told_at"] = now
    if row.end_told_at is None and row.ends_at <= now:
        values["end_told_at"] = now
        if row.start_told_at is None:  # ended before it started: it never will
            values["start_told_at"] = now
    if values:
        await session.execute(
            update(DelegationRow).where(DelegationRow.id == row.id).values(**values)
        )


Signal = Callable[[str, DirectoryChangedInput], Awaitable[bool]]
"""Tells one request (by id) that delegations changed; False when it no longer runs."""


async def tell(
    sessions: async_sessionmaker[AsyncSession],
    signal: Signal,
    now: datetime,
    only: Sequence[int] | None = None,
) -> int:
    """Tell the open requests of every delegation that started or ended by ``now``.

    For each such delegation, each request with a pending step of its delegator gets
    a ``directory_changed`` hint naming them (its step then follows, see
    :mod:`domain.core.delegates`); then the delegation is marked told and, for one
    that started, its delegate gets a ``delegation_started`` notice. Signals go out
    before the mark: a pass that stops half-way tells again next time, which is
    harmless (the hint only makes the step read the directory). ``only``: these
    delegations (the API, right after making or ending one). How many were told.
    """
    async with sessions() as session:
        query = untold_query(now)
        if only is not None:
            query = query.where(DelegationRow.id.in_(list(only)))
        rows = (await session.scalars(query)).all()
        waiting = {row.id: await requests_waiting_on(session, [row.from_user]) for row in rows}
    for row in rows:
        for request_id in waiting[row.id]:
            await signal(request_id, DirectoryChangedInput(delegators=[row.from_user]))
    async with transaction(sessions) as session:
        for row in rows:
            if row.start_told_at is None and row.starts_at <= now < row.ends_at:
                await add_notice(
                    session,
                    row.to_user,
                    "delegation_started",
                    f"delegation:{row.id}:started:{row.to_user}",
                    notice_payload(row),
                )
            await mark_told(session, row, now)
    return len(rows)


def notice_payload(row: DelegationRow) -> dict[str, Any]:
    scope = ", ".join(row.request_types) if row.request_types is not None else "*"
    return {
        "title": f"{row.from_user} -> {row.to_user}",
        "delegation_id": row.id,
        "delegator": row.from_user,
        "delegate": row.to_user,
        "starts_at": f"{row.starts_at:%Y-%m-%d %H:%M} UTC",
        "ends_at": f"{row.ends_at:%Y-%m-%d %H:%M} UTC",
        "scope": scope,
        "reason": row.reason,
        "by": row.created_by or "",
    }
