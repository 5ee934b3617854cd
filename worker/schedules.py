"""The Temporal Schedules the worker makes sure exist: reconciliation every minute,
and the delivery of notices every few seconds."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from domain.constants import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_NAME
from domain.delivery import DELIVERY_SCHEDULE_ID, DELIVERY_WORKFLOW_NAME, DeliverNoticesInput
from domain.reconcile import ReconcileInput

log = logging.getLogger("approvals.worker")

RECONCILE_EVERY = timedelta(minutes=1)


def reconcile_schedule(task_queue: str, every: timedelta = RECONCILE_EVERY) -> Schedule:
    """Start :data:`RECONCILE_WORKFLOW_NAME` every ``every``, never two passes at once."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW_NAME,
            ReconcileInput(),
            id=RECONCILE_SCHEDULE_ID,  # the schedule appends the start time
            task_queue=task_queue,
            # A pass that cannot finish (no worker) must not block the next ones forever.
            execution_timeout=every * 10,
            static_summary="record requests whose workflow was ended outside the process",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
        state=ScheduleState(
            note="Created by the approvals worker; pausing it here is respected on restart."
        ),
    )


async def ensure_reconcile_schedule(
    client: Client, task_queue: str, schedule_id: str = RECONCILE_SCHEDULE_ID
) -> bool:
    """Create the reconciliation schedule unless it exists; True if this call created it.

    Every worker replica calls this at start-up; the first one creates it, the
    others find it. An existing schedule is left as it is (an operator may have
    paused it, or changed its interval, in the Temporal UI).
    """
    try:
        await client.create_schedule(schedule_id, reconcile_schedule(task_queue))
    except ScheduleAlreadyRunningError:
        log.info("schedule %s already exists; left as it is", schedule_id)
        return False
    log.info("schedule %s created (every %s on %s)", schedule_id, RECONCILE_EVERY, task_queue)
    return True


def delivery_schedule(task_queue: str, every: timedelta) -> Schedule:
    """Start a :data:`DELIVERY_WORKFLOW_NAME` pass every ``every``, never two at once."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DELIVERY_WORKFLOW_NAME,
            DeliverNoticesInput(),
            id=DELIVERY_SCHEDULE_ID,  # the schedule appends the start time
            task_queue=task_queue,
            execution_timeout=max(every * 20, timedelta(minutes=5)),
            static_summary="deliver due notices by e-mail, webhooks and group robots",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every * 2),
        state=ScheduleState(
            note="Created by the approvals worker; pausing it here is respected on restart."
        ),
    )


async def ensure_delivery_schedule(
    client: Client,
    task_queue: str,
    every: timedelta,
    schedule_id: str = DELIVERY_SCHEDULE_ID,
) -> bool:
    """Create the delivery schedule unless it exists; True if this call created it.

    An existing schedule keeps what an operator made of it (paused, another interval),
    except its task queue: one that still starts passes elsewhere (the approvals' queue,
    before the deliveries had their own) is pointed at ``task_queue``. A pass already
    running there finishes there: the approvals worker still runs ``DeliverNotices``.
    """
    try:
        await client.create_schedule(schedule_id, delivery_schedule(task_queue, every))
    except ScheduleAlreadyRunningError:
        await _move_to_task_queue(client.get_schedule_handle(schedule_id), task_queue)
        return False
    log.info("schedule %s created (every %s on %s)", schedule_id, every, task_queue)
    return True


async def _move_to_task_queue(schedule: ScheduleHandle, task_queue: str) -> None:
    moved_from: list[str] = []

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        # Called with the schedule as it is now; the server refuses the update if it
        # changed meanwhile, and the SDK asks again.
        moved_from.clear()
        action = current.description.schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.task_queue == task_queue:
            return None
        moved_from.append(action.task_queue)
        action.task_queue = task_queue
        return ScheduleUpdate(schedule=current.description.schedule)

    await schedule.update(update)
    if moved_from:
        log.info(
            "schedule %s started its passes on task queue %s: now on %s (its state and "
            "interval are kept)",
            schedule.id,
            moved_from[0],
            task_queue,
        )
    else:
        log.info("schedule %s already exists on %s; left as it is", schedule.id, task_queue)
