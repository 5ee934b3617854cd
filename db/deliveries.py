"""Queries of the delivery pipeline: plan, claim, record, and the admin's view.

Claiming uses ``FOR UPDATE SKIP LOCKED`` and a lease (``next_attempt_at`` moved
past the send's time limit), so several dispatchers never take the same row,
and a row whose sender died is taken again once the lease runs out, with the
same dedupe id. A deliverer process also writes its claimer id (``claimed_by``):
while it lives it holds the advisory lock ``(CLAIMER_LOCK_CLASS, id)``, and once
that lock is free its claims are due at once (:func:`reclaim_orphans`), not when
the lease ends.

Whoever writes work for the deliverer (a transition's notices, the admin's retry)
calls :func:`wake_deliverers` in the same transaction: PostgreSQL delivers the
``NOTIFY`` at commit, to every deliverer listening, and never for a rolled-back write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import DeliveryRow, NotificationRow, RequestRow, UserPreferenceRow, UserRow
from db.used_links import PendingStep, pending_step, pending_steps
from domain.delivery import deliver_not_before
from notify.fanout import PlanConfig, Recipient, dedupe_id, plan

PLAN_BATCH = 200
WAKE_CHANNEL = "approvals_deliveries"
"""The ``LISTEN``/``NOTIFY`` channel on which deliverers hear of new work."""
CLAIMER_LOCK_CLASS = 72_019_140
"""The first key of a deliverer's advisory lock ``(CLAIMER_LOCK_CLASS, its id)``: the
two-key form, which never meets the single-key locks of migrations and the directory."""

_CLAIMER_LOCK_HELD = text(
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = :lock_class AND l.objsubid = 2"
    " AND l.objid::bigint = deliveries.claimed_by)"
).bindparams(lock_class=CLAIMER_LOCK_CLASS)


async def wake_deliverers(session: AsyncSession) -> None:
    """Tell every listening deliverer, when this transaction commits, that work is due."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


async def next_due(session: AsyncSession) -> datetime | None:
    """When the deliverer has work next: now if a notice waits to be planned, else the
    earliest ``next_attempt_at`` of a pending delivery (a retry, a claim's lease, a notice
    held to working hours); None when nothing is waiting at all."""
    unplanned = await session.scalar(
        select(NotificationRow.id).where(NotificationRow.fanned_out_at.is_(None)).limit(1)
    )
    if unplanned is not None:
        return await session.scalar(select(func.now()))
    return await session.scalar(
        select(func.min(DeliveryRow.next_attempt_at)).where(DeliveryRow.status == "pending")
    )


async def reclaim_orphans(session: AsyncSession, now: datetime) -> int:
    """Make the claims of deliverers that are gone due at once; the rows made due.

    A claimer whose lock nobody holds is dead (its connection closed with it). Its lock
    is taken here for this transaction (``pg_try_advisory_xact_lock``) before its rows
    are touched: a live claimer holds it and is left alone, and no new deliverer can
    take that id (and claim rows under it) until this transaction has ended.
    """
    claimers = list(
        await session.scalars(
            select(DeliveryRow.claimed_by)
            .where(DeliveryRow.status == "pending", DeliveryRow.claimed_by.is_not(None))
            .distinct()
        )
    )
    reclaimed = 0
    for claimer in claimers:
        free = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:lock_class, :claimer)"),
            {"lock_class": CLAIMER_LOCK_CLASS, "claimer": claimer},
        )
        if not free:
            continue
        result = await session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.claimed_by == claimer, DeliveryRow.status == "pending")
            .values(next_attempt_at=func.least(DeliveryRow.next_attempt_at, now), claimed_by=None)
        )
        reclaimed += int(getattr(result, "rowcount", 0) or 0)
    return reclaimed


async def orphans_waiting(session: AsyncSession) -> bool:
    """Whether a pending row is claimed by a deliverer whose lock nobody holds (a hint
    for a sleeping deliverer; :func:`reclaim_orphans` decides)."""
    found = await session.scalar(
        select(DeliveryRow.id)
        .where(
            DeliveryRow.status == "pending",
            DeliveryRow.claimed_by.is_not(None),
            ~_CLAIMER_LOCK_HELD,
        )
        .limit(1)
    )
    return found is not None


async def claims_of_others(session: AsyncSession, claimer: int | None) -> bool:
    """Whether a pending row is claimed by another deliverer than ``claimer``."""
    found = await session.scalar(
        select(DeliveryRow.id)
        .where(
            DeliveryRow.status == "pending",
            DeliveryRow.claimed_by.is_not(None),
            DeliveryRow.claimed_by != (claimer if claimer is not None else 0),
        )
        .limit(1)
    )
    return found is not None


async def release_claims(
    session: AsyncSession, claimed: Iterable[ClaimedRow], now: datetime
) -> int:
    """Make claimed rows due again at once, those still holding this claim's lease (not
    recorded since, not claimed again): a deliverer that stops mid-batch hands them on."""
    released = 0
    for row in claimed:
        result = await session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.id == row.id,
                DeliveryRow.status == "pending",
                DeliveryRow.next_attempt_at == row.leased_until,
            )
            .values(next_attempt_at=now, claimed_by=None)
        )
        released += int(getattr(result, "rowcount", 0) or 0)
    return released


async def plan_deliveries(session: AsyncSession, now: datetime, config: PlanConfig) -> int:
    """Fan out up to :data:`PLAN_BATCH` unplanned notices; the number planned.

    Each delivery is due at once (``next_attempt_at`` now), but a reminder or urgent
    notice to people planned outside working hours is due at the next working hour:
    the claim takes no row before its time, so nobody is mailed or pinged at night.
    """
    notices = list(
        await session.scalars(
            select(NotificationRow)
            .where(NotificationRow.fanned_out_at.is_(None))
            .order_by(NotificationRow.id)
            .limit(PLAN_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not notices:
        return 0
    who = {n.recipient for n in notices}
    users = {
        u.id: Recipient(u.id, u.email, u.active)
        for u in await session.scalars(select(UserRow).where(UserRow.id.in_(who)))
    }
    prefs = {
        p.user_id: p
        for p in await session.scalars(
            select(UserPreferenceRow).where(UserPreferenceRow.user_id.in_(who))
        )
    }
    request_ids = {n.request_id for n in notices if n.request_id}
    types: dict[str, str] = {}
    if request_ids and config.calendar is not None:
        found = await session.execute(
            select(RequestRow.id, RequestRow.policy_type).where(RequestRow.id.in_(request_ids))
        )
        types = {rid: policy_type for rid, policy_type in found}
    rows: list[dict[str, Any]] = []
    for n in notices:
        if n.created_at < now - config.max_age:
            continue
        hold = types.get(n.request_id or "") not in config.send_at_once
        pref = prefs.get(n.recipient)
        channels = (
            pref.channels
            if pref is not None and pref.channels is not None
            else config.default_channels
        )
        for p in plan(
            n.template, users.get(n.recipient), channels, config.subscribers, config.robots
        ):
            rows.append(
                {
                    "notification_id": n.id,
                    "channel": p.channel,
                    "target": p.target,
                    "status": p.status,
                    "attempts": 0,
                    "last_error": p.reason,
                    "next_attempt_at": deliver_not_before(
                        n.template, p.channel, now, config.calendar, hold
                    ),
                    "dedupe_id": dedupe_id(n.dedupe_key, p.channel, p.target),
                }
            )
    if rows:
        await session.execute(insert(DeliveryRow).values(rows).on_conflict_do_nothing())
    await session.execute(
        update(NotificationRow)
        .where(NotificationRow.id.in_([n.id for n in notices]))
        .values(fanned_out_at=now)
    )
    return len(notices)


class ClaimedRow(NamedTuple):
    id: int
    channel: str
    leased_until: datetime
    """The row's ``next_attempt_at`` as the claim set it: the claim's token."""


async def claim_due(
    session: AsyncSession,
    now: datetime,
    limit: int,
    lease: Callable[[str, int], timedelta],
    channels: Iterable[str],
    claimer: int | None = None,
) -> list[ClaimedRow]:
    """Take up to ``limit`` due pending deliveries *per channel*, oldest first, for
    ``claimer`` (a deliverer's lock id; None for an old pass: the lease alone applies).

    Per channel, so that a backlog on a channel that is down (its rows fall due again
    and again) never takes the places of the other channels' messages. Each claimed
    row's ``next_attempt_at`` moves to ``now + lease(channel, rows claimed of it)``: a
    channel's rows are sent as one batch, whose time grows with its size.
    """
    claimed: list[ClaimedRow] = []
    for channel in sorted(channels):
        ids = list(
            await session.scalars(
                select(DeliveryRow.id)
                .where(
                    DeliveryRow.status == "pending",
                    DeliveryRow.channel == channel,
                    DeliveryRow.next_attempt_at <= now,
                )
                .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            until = now + lease(channel, len(ids))
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_(ids))
                .values(next_attempt_at=until, claimed_by=claimer)
            )
            claimed += [ClaimedRow(i, channel, until) for i in ids]
    return claimed


@dataclass
class DeliveryJob:
    """Everything one send needs, read at delivery time."""

    delivery: DeliveryRow
    notice: NotificationRow
    user: UserRow | None
    preference: UserPreferenceRow | None
    request: RequestRow | None
    stage_index: int | None = None
    """The stage of the request on which the recipient holds a pending step, now."""
    step_since: datetime | None = None
    """The round of that step: when the recipient became eligible on it (links bind to it)."""


async def load_job(session: AsyncSession, delivery_id: int) -> DeliveryJob | None:
    delivery = await session.get(DeliveryRow, delivery_id)
    if delivery is None:
        return None
    notice = await session.get(NotificationRow, delivery.notification_id)
    assert notice is not None  # foreign key
    step = (
        await pending_step(session, notice.recipient, notice.request_id)
        if notice.request_id
        else None
    )
    return DeliveryJob(
        delivery=delivery,
        notice=notice,
        user=await session.get(UserRow, notice.recipient),
        preference=await session.get(UserPreferenceRow, notice.recipient),
        request=await session.get(RequestRow, notice.request_id) if notice.request_id else None,
        stage_index=step.stage_index if step is not None else None,
        step_since=step.since if step is not None else None,
    )


async def load_jobs(session: AsyncSession, delivery_ids: Sequence[int]) -> dict[int, DeliveryJob]:
    """:func:`load_job` for many deliveries in five queries, whatever their number.

    Keyed by delivery id; an id without a row is missing from the result.
    """
    if not delivery_ids:
        return {}
    pairs = (
        await session.execute(
            select(DeliveryRow, NotificationRow)
            .join(NotificationRow, NotificationRow.id == DeliveryRow.notification_id)
            .where(DeliveryRow.id.in_(delivery_ids))
        )
    ).all()
    who = {n.recipient for _, n in pairs}
    request_ids = {n.request_id for _, n in pairs if n.request_id}
    users = {u.id: u for u in await session.scalars(select(UserRow).where(UserRow.id.in_(who)))}
    prefs = {
        p.user_id: p
        for p in await session.scalars(
            select(UserPreferenceRow).where(UserPreferenceRow.user_id.in_(who))
        )
    }
    requests: dict[str, RequestRow] = {}
    steps: dict[tuple[str, str], PendingStep] = {}
    if request_ids:
        requests = {
            r.id: r
            for r in await session.scalars(select(RequestRow).where(RequestRow.id.in_(request_ids)))
        }
        steps = await pending_steps(session, who, request_ids)
    return {
        d.id: DeliveryJob(
            delivery=d,
            notice=n,
            user=users.get(n.recipient),
            preference=prefs.get(n.recipient),
            request=requests.get(n.request_id) if n.request_id else None,
            stage_index=step.stage_index if step is not None else None,
            step_since=step.since if step is not None else None,
        )
        for d, n in pairs
        for step in [steps.get((n.recipient, n.request_id)) if n.request_id else None]
    }


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 10 s, doubling, at most 30 minutes."""
    return min(timedelta(seconds=10) * 2 ** max(attempts - 1, 0), timedelta(minutes=30))


async def record_attempt(
    session: AsyncSession,
    delivery_id: int,
    now: datetime,
    *,
    error: str | None,
    permanent: bool,
    max_attempts: int,
) -> str:
    """Record one attempt's outcome on a still-pending row; the row's status after it."""
    row = await session.get(DeliveryRow, delivery_id, with_for_update=True)
    if row is None:
        return "gone"
    if row.status != "pending":
        return row.status
    row.attempts += 1
    row.claimed_by = None
    if error is None:
        row.status = "sent"
        row.sent_at = now
        row.last_error = None
    else:
        row.last_error = error[:2000]
        if permanent or row.attempts >= max_attempts:
            row.status = "failed"
        else:
            row.next_attempt_at = now + backoff(row.attempts)
    return row.status


async def list_deliveries(
    session: AsyncSession, status: str | None, limit: int, before_id: int | None
) -> list[tuple[DeliveryRow, NotificationRow]]:
    """Deliveries, newest first, optionally of one status, a page before ``before_id``."""
    query = select(DeliveryRow, NotificationRow).join(
        NotificationRow, NotificationRow.id == DeliveryRow.notification_id
    )
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    if before_id is not None:
        query = query.where(DeliveryRow.id < before_id)
    rows = await session.execute(query.order_by(DeliveryRow.id.desc()).limit(limit))
    return [(d, n) for d, n in rows]


async def retry_delivery(
    session: AsyncSession, delivery_id: int, now: datetime
) -> DeliveryRow | None:
    """Make a failed or skipped delivery due again (attempts start over); None if unknown.

    A sent delivery is left as it is: retrying it would send it twice.
    """
    row = await session.get(DeliveryRow, delivery_id, with_for_update=True)
    if row is None:
        return None
    if row.status in ("failed", "skipped"):
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = now
        await wake_deliverers(session)
    return row


PRUNE_BATCH = 1000
"""Finished deliveries one pass deletes at most: a backlog shrinks over a few passes,
and no pass holds its locks for long."""
_FINISHED = text("deliveries.status IN ('sent', 'skipped')")
"""Spelled as the partial index ix_deliveries_finished_created is, so the planner uses it."""


async def prune_finished(session: AsyncSession, before: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` sent or skipped deliveries created before ``before``.

    Pending and failed ones stay (they still matter to someone). The notices they
    came from are marked fanned out, so nothing is planned or sent again.
    """
    doomed = (
        select(DeliveryRow.id)
        .where(_FINISHED, DeliveryRow.created_at < before)
        .order_by(DeliveryRow.created_at, DeliveryRow.id)
        .limit(limit)
    )
    result = await session.execute(delete(DeliveryRow).where(DeliveryRow.id.in_(doomed)))
    return int(getattr(result, "rowcount", 0) or 0)
