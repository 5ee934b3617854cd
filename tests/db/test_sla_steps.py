"""``db.sla.write_steps``: the step rows the SLA report reads, as the read-model writer
keeps them (a decision's time kept, a stage started again replacing its earlier run)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import RequestRow, RequestStepRow
from db.sla import one_snapshot, write_steps
from domain.process import RequestView

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _stage(index: int, status: str, started: datetime | None, **more: Any) -> dict[str, Any]:
    return {
        "index": index,
        "key": f"s{index}",
        "name": f"Stage {index}",
        "mode": "any",
        "reason": "",
        "approvers": [],
        "status": status,
        "started_at": started,
        **more,
    }


def _view(rid: str, *stages: dict[str, Any]) -> RequestView:
    return RequestView.model_validate(
        {
            "id": rid,
            "type": "t",
            "title": "T",
            "requester": "am_li",
            "customer": None,
            "amount": None,
            "fields": {},
            "policy_type": "t",
            "policy_version": 1,
            "status": "in_review",
            "submitted_at": T0,
            "stages": list(stages),
        }
    )


async def _steps(sessions: async_sessionmaker[AsyncSession], rid: str) -> list[tuple[Any, ...]]:
    async with sessions() as s:
        rows = await s.execute(
            select(
                RequestStepRow.stage_index,
                RequestStepRow.status,
                RequestStepRow.started_at,
                RequestStepRow.decided_at,
                RequestStepRow.escalations,
                RequestStepRow.decide_seconds,
            )
            .where(RequestStepRow.request_id == rid)
            .order_by(RequestStepRow.stage_index)
        )
        return [tuple(r) for r in rows]


async def _write(
    sessions: async_sessionmaker[AsyncSession], view: RequestView, at: datetime
) -> None:
    async with sessions() as s:
        await write_steps(s, view, at)
        await s.commit()


async def test_steps_follow_the_view_keep_their_decision_and_restart_when_sent_back(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = str(uuid.uuid4())
    async with db_sessions() as s:
        s.add(
            RequestRow(
                id=rid, type="t", title="T", requester="am_li", fields={}, policy_type="t",
                policy_version=1, route={}, status="in_review",
            )
        )  # fmt: skip
        await s.commit()
    await _write(db_sessions, _view(rid, _stage(0, "active", T0), _stage(1, "pending", None)), T0)
    assert await _steps(db_sessions, rid) == [(0, "active", T0, None, 0, None)]

    # Decided by its slot at T0+2h, the transition written at T0+3h: the slot's time.
    slots = [{"label": "a", "decided_at": T0 + 2 * H}]
    decided = _stage(0, "approved", T0, slots=slots, escalations=1)
    await _write(db_sessions, _view(rid, decided, _stage(1, "active", T0 + 2 * H)), T0 + 3 * H)
    # A rejection decides no slot: the transition's time.
    rejected = _stage(1, "rejected", T0 + 2 * H)
    await _write(db_sessions, _view(rid, decided, rejected), T0 + 5 * H)
    # The same view written again later (a retry) keeps the decision's time.
    await _write(db_sessions, _view(rid, decided, rejected), T0 + 9 * H)
    # PostgreSQL keeps each decided step's whole seconds for the report's percentiles.
    assert await _steps(db_sessions, rid) == [
        (0, "approved", T0, T0 + 2 * H, 1, 7200),
        (1, "rejected", T0 + 2 * H, T0 + 5 * H, 0, 10800),
    ]

    # Sent back and started again: the new run replaces the old one, undecided.
    await _write(db_sessions, _view(rid, decided, _stage(1, "active", T0 + 8 * H)), T0 + 8 * H)
    assert await _steps(db_sessions, rid) == [
        (0, "approved", T0, T0 + 2 * H, 1, 7200),
        (1, "active", T0 + 8 * H, None, 0, None),
    ]


async def test_the_reports_two_sessions_read_one_snapshot(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What commits after the first session exported its snapshot is in neither."""
    rid = str(uuid.uuid4())
    count = select(func.count()).select_from(RequestRow).where(RequestRow.id == rid)
    async with one_snapshot(db_sessions) as (first, second):
        async with db_sessions() as s:
            s.add(
                RequestRow(
                    id=rid, type="t", title="T", requester="am_li", fields={},
                    policy_type="t", policy_version=1, route={}, status="in_review",
                )
            )  # fmt: skip
            await s.commit()
        assert (await first.scalar(count), await second.scalar(count)) == (0, 0)
        # Each query is planned for its period, never by a generic plan after five runs.
        for session in (first, second):
            assert await session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    async with db_sessions() as s:
        assert await s.scalar(count) == 1
