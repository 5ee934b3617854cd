"""The ``due_at`` activity: deadlines on the calendar the worker loaded.

The workflow will ask it (as a local activity) and record the answer, so the
activity is pure and idempotent: the same input on the same calendar gives the
same instant. Here it runs in the activity environment and, through Temporal
with the pydantic converter, on a worker that ``build_worker`` made.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio import workflow

# The probe workflow below lives in this module, so the sandbox re-imports it.
with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
    from temporalio.worker import Worker

    from activities.deadlines import DeadlineActivities
    from common.business_calendar import build_calendar
    from domain.constants import Activities
    from domain.durations import Span
    from domain.working_time import BusinessCalendar, Due, DueInput
    from worker.main import build_worker

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = build_calendar(range(2025, 2029))


async def test_due_at_counts_working_hours_on_the_injected_calendar() -> None:
    acts = DeadlineActivities(CALENDAR)
    start = datetime(2026, 11, 27, 17, tzinfo=SH)  # a Friday
    due = await ActivityEnvironment().run(
        acts.due_at, DueInput(start=start, span=Span.parse("4 working hours"))
    )
    assert due == Due(at=datetime(2026, 11, 30, 4, tzinfo=UTC), working=True, provisional=False)
    # Idempotent: asked again, the same answer.
    again = await ActivityEnvironment().run(
        acts.due_at, DueInput(start=start, span=Span.parse("4 working hours"))
    )
    assert again == due


async def test_due_at_keeps_calendar_time_for_calendar_spans() -> None:
    acts = DeadlineActivities(CALENDAR)
    start = datetime(2026, 9, 30, 10, tzinfo=UTC)
    due = await ActivityEnvironment().run(acts.due_at, DueInput(start=start, span=Span(days=7)))
    assert due == Due(at=start + timedelta(days=7), working=False, provisional=False)


async def test_another_calendar_gives_another_answer_only_to_new_questions() -> None:
    # A company day off added later moves deadlines computed after the change.
    start = datetime(2026, 12, 30, 17, tzinfo=SH)
    span = Span.parse("2 working hours")
    before = CALENDAR.due(start, span)
    holidays = CALENDAR.holidays | {datetime(2026, 12, 31).date()}
    after = CALENDAR.model_copy(update={"holidays": holidays}).due(start, span)
    assert before.at.astimezone(SH) == datetime(2026, 12, 31, 10, tzinfo=SH)
    assert after.at.astimezone(SH) == datetime(2027, 1, 4, 10, tzinfo=SH)
    assert after.provisional and not before.provisional


class DueAtProbeInput(BaseModel):
    due: DueInput
    activity_queue: str


@workflow.defn(name="DueAtProbe", sandboxed=True)
class DueAtProbe:
    """Asks ``due_at`` by name on another task queue, as the approval workflow will."""

    @workflow.run
    async def run(self, input: DueAtProbeInput) -> Due:
        return await workflow.execute_activity(
            Activities.DUE_AT,
            input.due,
            result_type=Due,
            task_queue=input.activity_queue,
            start_to_close_timeout=timedelta(seconds=10),
        )


async def test_the_worker_registers_due_at_with_its_calendar(
    temporal_ts: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # Working hours 08:30-17:40 (a sales office): the span and the answer cross the wire.
    calendar = BusinessCalendar.model_validate(
        {**CALENDAR.model_dump(), "hours": [{"start": "08:30", "end": "17:40"}]}
    )
    probe_queue, worker_queue = f"probe-{uuid.uuid4()}", f"deadlines-{uuid.uuid4()}"
    start = datetime(2026, 10, 9, 17, tzinfo=SH)  # Friday before the make-up Saturday
    async with (
        build_worker(temporal_ts.client, db_sessions, worker_queue, calendar=calendar),
        Worker(temporal_ts.client, task_queue=probe_queue, workflows=[DueAtProbe]),
    ):
        due = await temporal_ts.client.execute_workflow(
            DueAtProbe.run,
            DueAtProbeInput(
                due=DueInput(start=start, span=Span.parse("PT1H working")),
                activity_queue=worker_queue,
            ),
            id=f"due-at-{uuid.uuid4()}",
            task_queue=probe_queue,
        )
    # 40 minutes on Friday, 20 on Saturday 10 October (调休).
    assert due.at.astimezone(SH) == datetime(2026, 10, 10, 8, 50, tzinfo=SH)
    assert due.working and not due.provisional
