"""Working-time deadlines through the workflow: counted on the business calendar, recorded, shown.

The worker gets a calendar of its own (weekends and the default working hours,
no holidays), so the expected instants do not depend on the day the suite runs;
the calendar's own arithmetic on real 2026 dates is pinned in
``tests/domain/test_working_time.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from db.models import RequestRow
from domain.policy import Policy
from domain.working_time import BusinessCalendar
from tests.support.servers import converter_for_tests
from tests.support.workflows import (
    eventually,
    in_calendar_time,
    request_id,
    request_row,
    start,
    state,
    worker_queue,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
KNOWN = BusinessCalendar(known_years=frozenset(range(2000, 2200)))
"""Weekends off, 09:00-12:00 and 13:30-18:00, every year's schedule known (no holidays)."""
UNKNOWN = BusinessCalendar()
"""The same hours, but no year's official schedule known: every count is provisional."""
COMPLAINT = {"category": "staff", "major": False, "description": "rude on the phone"}


@asynccontextmanager
async def worker_with(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], calendar: BusinessCalendar
) -> AsyncIterator[str]:
    # worker_queue ends what the test left running: a workflow without its worker would
    # hold the time-skipping server's shared clock still for the next test.
    async with worker_queue(env.client, sessions, "wt", calendar=calendar) as queue:
        yield queue


async def assigned(h: WorkflowHandle[Any, Any]) -> None:
    async def at_first_stage() -> bool:
        return (await state(h)).stage_index == 0

    await eventually(at_first_stage, 30)


async def next_friday_17(env: WorkflowEnvironment) -> datetime:
    """Skip the test server's clock to the next Friday, 17:00 in Shanghai."""
    now = await env.get_current_time()
    local = now.astimezone(SHANGHAI)
    friday = (local + timedelta(days=(4 - local.weekday()) % 7)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    if friday <= local:
        friday += timedelta(days=7)
    await env.sleep(friday - now)
    return friday


async def next_local(env: WorkflowEnvironment, weekday: int, hour: int, minute: int) -> datetime:
    """Skip the test server's clock to the next ``weekday`` (Monday 0) at hour:minute in
    Shanghai."""
    now = await env.get_current_time()
    local = now.astimezone(SHANGHAI)
    then = (local + timedelta(days=(weekday - local.weekday()) % 7)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    if then <= local:
        then += timedelta(days=7)
    await env.sleep(then - now)
    return then


async def test_a_contract_submitted_sunday_evening_is_due_and_escalated_in_working_hours(
    temporal_ts: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
    policies: dict[str, Policy],
) -> None:
    """Issue 14: submitted Sunday 19:19, the contract's 4-hour reply fell due at 01:19 and
    its approver was escalated past overnight. Now every clock counts working time."""
    async with worker_with(temporal_ts, db_sessions, KNOWN) as queue:
        sunday = await next_local(temporal_ts, 6, 19, 19)
        h = await start(
            temporal_ts.client,
            queue,
            policies["big_customer_contract"],
            "am_li",
            Decimal(250000),
            {"contract_no": "HT-1", "settlement_floor_price": "90000"},
        )
        await assigned(h)
        v = await state(h)
        monday = sunday + timedelta(days=1)
        # Monday 09:00-12:00 is 3 h, after lunch 13:30-14:30 the fourth.
        reply_due = v.stages[0].reply_due
        assert reply_due is not None and KNOWN.is_working_time(reply_due)
        assert reply_due == monday.replace(hour=14, minute=30)
        # 3 working days: Sunday does not count; Monday, Tuesday, Wednesday to closing time.
        assert v.resolve_due == (sunday + timedelta(days=3)).replace(hour=18, minute=0)
        assert v.working_time["reply"].span == "4 working hours"
        assert v.working_time["resolve"].span == "3 working days"

        # Nothing happens at night: not at 01:19, not before 14:30.
        await temporal_ts.sleep(monday.replace(hour=1, minute=20) - sunday)
        kinds = [e.kind for e in (await state(h)).history]
        assert "reminded" not in kinds and "escalated" not in kinds
        now = await temporal_ts.get_current_time()
        await temporal_ts.sleep(reply_due - now - timedelta(minutes=1))
        assert "escalated" not in [e.kind for e in (await state(h)).history]
        await temporal_ts.sleep(timedelta(minutes=2))
        escalated = [e for e in (await state(h)).history if e.kind == "escalated"]
        assert len(escalated) == 1 and KNOWN.is_working_time(escalated[0].at)


async def test_a_4_working_hour_reply_from_friday_17h_falls_on_monday_noon_and_fires_then(
    temporal_ts: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
    policies: dict[str, Policy],
) -> None:
    async with worker_with(temporal_ts, db_sessions, KNOWN) as queue:
        friday = await next_friday_17(temporal_ts)
        h = await start(
            temporal_ts.client, queue, policies["customer_complaint"], "am_sun", None, COMPLAINT
        )
        await assigned(h)
        v = await state(h)
        # 17:00-18:00 Friday is one hour; Monday 09:00-12:00 the other three.
        monday_noon = (friday + timedelta(days=3)).replace(hour=12)
        assert v.stages[0].reply_due == monday_noon
        assert v.working_time["reply"].span == "4 working hours"
        assert not v.provisional and not v.working_time["reply"].provisional
        assert "resolve" not in v.working_time  # the complaint's resolve is calendar time
        assert v.resolve_due is not None
        assert abs(v.resolve_due - (friday + timedelta(days=3))) < timedelta(seconds=1)

        # The read-model (the API's view) says the same, once written.
        async def written() -> bool:
            async with db_sessions() as s:
                row = await s.get(RequestRow, request_id(h))
            return row is not None and row.view is not None and bool(row.view["working_time"])

        await eventually(written, 30)
        row = await request_row(db_sessions, request_id(h))
        assert row.view is not None
        assert row.view["working_time"]["reply"]["span"] == "4 working hours"

        # The timer waits through the weekend: nothing at Monday 11:59, the reminder at 12:00.
        now = await temporal_ts.get_current_time()
        await temporal_ts.sleep(monday_noon - now - timedelta(minutes=1))
        assert "reminded" not in [e.kind for e in (await state(h)).history]
        await temporal_ts.sleep(timedelta(minutes=2))
        v = await state(h)
        assert "reminded" in [e.kind for e in v.history]
        # The next reply window is counted on the calendar too: Monday 12:00 + 4 working
        # hours skips lunch (12:00-13:30) and ends at 17:30.
        assert v.stages[0].reply_due == monday_noon.replace(hour=17, minute=30)


async def test_a_deadline_in_a_year_without_official_schedule_is_provisional_everywhere(
    temporal_ts: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
    policies: dict[str, Policy],
) -> None:
    async with worker_with(temporal_ts, db_sessions, UNKNOWN) as queue:
        h = await start(
            temporal_ts.client, queue, policies["customer_complaint"], "am_sun", None, COMPLAINT
        )
        await assigned(h)
        v = await state(h)
        assert v.provisional and v.working_time["reply"].provisional
        # ... and it is still counted on working hours, never silently on calendar time.
        reply_due = v.stages[0].reply_due
        assert reply_due is not None
        assert UNKNOWN.is_working_time(reply_due - timedelta(minutes=1))

        # The Temporal UI's timer says so (once the workflow has written and set it).
        async def timer_says_so() -> bool:
            summaries = [
                (await converter_for_tests().decode([event.user_metadata.summary]))[0]
                async for event in h.fetch_history_events()
                if event.HasField("timer_started_event_attributes")
            ]
            return any("4 working hours, provisional" in s for s in summaries)

        await eventually(timer_says_so, 30)


async def test_calendar_time_deadlines_ask_no_calendar(
    temporal_ts: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
    policies: dict[str, Policy],
) -> None:
    async with worker_with(temporal_ts, db_sessions, UNKNOWN) as queue:
        h = await start(
            temporal_ts.client,
            queue,
            in_calendar_time(policies["big_customer_contract"]),
            "am_li",
            Decimal(250000),
            {"contract_no": "HT-1", "settlement_floor_price": "90000"},
        )
        await assigned(h)
        v = await state(h)
        assert v.working_time == {} and not v.provisional
        started = v.stages[0].started_at
        assert started is not None and v.stages[0].reply_due == started + timedelta(hours=4)
        markers = [
            e
            async for e in h.fetch_history_events()
            if e.HasField("marker_recorded_event_attributes")
        ]
        assert all(b"due_at" not in e.SerializeToString() for e in markers)
