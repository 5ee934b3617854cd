"""The Temporal Schedules the worker looks after: reconciliation (every ten minutes by
default) is made sure to exist, and the delivery schedule of before issue 19 (a pass
every few seconds) is deleted. ``delivery_schedule`` stays for the tests that replay and
drain the passes it started."""

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
from temporalio.service import RPCError, RPCStatusCode

from domain.constants import RECONCILE_SCHEDULE_ID, RECONCILE_WORKFLOW_NAME
from domain.delivery import DELIVERY_SCHEDULE_ID, DELIVERY_WORKFLOW_NAME, DeliverNoticesInput
from domain.reconcile import ReconcileInput

log = logging.getLogger("approvals.worker")

RECONCILE_EVERY = timedelta(minutes=10)
"""The reconciliation's default interval (``APPROVALS_RECONCILE_EVERY_SECONDS``).

A pass records requests whose workflow an operator terminated (or that timed out, were
cancelled or failed) outside the process, looking back seven days: a request that shows
"in review" for a few minutes after an operator ended it in the Temporal UI harms no
one, while every minute was 1,440 executions a day in the UI's list."""
RECONCILE_EVERY_BEFORE = timedelta(minutes=1)
"""The interval the worker gave the schedule before issue 19 (its note did not say it)."""
OLD_NOTE = "Created by the approvals worker; pausing it here is respected on restart."
_OUR_NOTE_WITH = "Created by the approvals worker (every {seconds:g} s); pausing it or " + (
    "changing its interval here is respected on restart."
)


def _our_note(every: timedelta) -> str:
    return _OUR_NOTE_WITH.format(seconds=every.total_seconds())


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
        state=ScheduleState(note=_our_note(every)),
    )


async def ensure_reconcile_schedule(
    client: Client,
    task_queue: str,
    schedule_id: str = RECONCILE_SCHEDULE_ID,
    every: timedelta = RECONCILE_EVERY,
) -> bool:
    """Create the reconciliation schedule unless it exists; True if this call created it.

    Every worker replica calls this at start-up; the first one creates it, the
    others find it. An existing schedule that is still as the worker made it (its
    note names the interval it has, or it is a pre-issue-19 one at one minute with the
    old note) gets ``every``; one an operator changed (paused it, which replaces the
    note, or changed its interval in the Temporal UI) is left as it is.
    """
    try:
        await client.create_schedule(schedule_id, reconcile_schedule(task_queue, every))
    except ScheduleAlreadyRunningError:
        await _follow_interval(client.get_schedule_handle(schedule_id), every)
        return False
    log.info("schedule %s created (every %s on %s)", schedule_id, every, task_queue)
    return True


async def _follow_interval(schedule: ScheduleHandle, every: timedelta) -> None:
    changed: list[timedelta] = []

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        changed.clear()
        sched = current.description.schedule
        intervals = [i.every for i in sched.spec.intervals]
        if len(intervals) != 1 or sched.spec.calendars or sched.spec.cron_expressions:
            return None
        was = intervals[0]
        note = sched.state.note or ""
        ours = note == _our_note(was) or (note == OLD_NOTE and was == RECONCILE_EVERY_BEFORE)
        if not ours or (was == every and note == _our_note(every)):
            return None
        changed.append(was)
        sched.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])
        sched.policy.catchup_window = every
        if isinstance(sched.action, ScheduleActionStartWorkflow):
            sched.action.execution_timeout = every * 10
        sched.state.note = _our_note(every)
        return ScheduleUpdate(schedule=sched)

    await schedule.update(update)
    if changed:
        log.info("schedule %s ran every %s: now every %s", schedule.id, changed[0], every)
    else:
        log.info("schedule %s already exists; left as it is", schedule.id)


async def delete_delivery_schedule(client: Client, schedule_id: str = DELIVERY_SCHEDULE_ID) -> bool:
    """Delete the schedule that started a delivery pass every few seconds (before issue
    19: ``approvals deliverer`` sends the notices now); True if this call deleted it.

    Idempotent: every worker replica calls it at start-up. Passes it already started
    finish: the workers keep ``DeliverNotices`` registered.
    """
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        log.info("schedule %s is gone already (the deliverer sends the notices)", schedule_id)
        return False
    log.info(
        "schedule %s deleted: the deliverer process sends the notices now, started by no "
        "workflow; passes already running finish",
        schedule_id,
    )
    return True


def delivery_schedule(task_queue: str, every: timedelta) -> Schedule:
    """The schedule the worker made before issue 19: a :data:`DELIVERY_WORKFLOW_NAME` pass
    every ``every``. Only the tests make it now (the upgrade that deletes it)."""
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
