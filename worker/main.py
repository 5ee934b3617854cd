"""The worker: registers the workflows and the activities and runs until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.approvals import ApprovalActivities
from activities.deadlines import DeadlineActivities
from activities.delivery import DeliveryActivities
from activities.reconcile import ReconcileActivities
from common.action_links import decision_links
from common.business_calendar import (
    default_calendar,
    load_business_calendar,
    log_calendar_warnings,
)
from common.settings import DEV_SIGNING_SECRET, Settings, get_settings
from common.temporal import connect
from db.engine import make_engine, make_sessionmaker
from domain.working_time import BusinessCalendar
from notify.setup import Notifier, build_notifier
from worker.schedules import ensure_delivery_schedule, ensure_reconcile_schedule
from workflows.approval import ApprovalWorkflow
from workflows.delivery import DeliverNoticesWorkflow
from workflows.reconcile import ReconcileWorkflow

log = logging.getLogger("approvals.worker")


def build_worker(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    *,
    signing_secret: str = DEV_SIGNING_SECRET,
    calendar: BusinessCalendar | None = None,
    notifier: Notifier | None = None,
    **options: Any,
) -> Worker:
    """A worker for the approval workflow and its activities on ``task_queue``.

    ``signing_secret`` checks who sent each message (see :mod:`domain.signing`);
    ``calendar`` counts working-time deadlines (default: the source's, default settings);
    ``notifier`` sends notices to the outside (default: as the environment's settings
    say; see :mod:`notify.setup`); ``options`` go to :class:`temporalio.worker.Worker`
    (tuning, tests).
    """
    acts = ApprovalActivities(sessions, signing_secret)
    reconcile = ReconcileActivities(sessions, client)
    deadlines = DeadlineActivities(calendar or default_calendar(datetime.now(UTC).year))
    delivery = DeliveryActivities(sessions, notifier or build_notifier(get_settings()))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ApprovalWorkflow, ReconcileWorkflow, DeliverNoticesWorkflow],
        activities=[
            acts.record_transition,
            acts.record_transitions,
            acts.resolve_assignees,
            acts.resolve_escalation,
            acts.execute_payout,
            acts.verify_proof,
            acts.mark_stuck,
            acts.inactive_users,
            reconcile.reconcile_closed_requests,
            deadlines.due_at,
            delivery.plan_and_claim,
            delivery.deliver,
            delivery.deliver_batch,
        ],
        # Drain in-flight activities on shutdown rather than abandoning them.
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A worker killed without its graceful shutdown never tells the server that its
        # sticky queue is gone: a workflow task (say an update carrying a decision) put on
        # that queue waits this long before it moves to the shared queue that the restarted
        # worker polls. The SDK's 10 s would be most of a recovery; 3 s is still far above
        # what a live worker on the same machine needs to pick up a task.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        **options,
    )


async def run_worker(settings: Settings) -> None:
    """Connect, run until SIGINT/SIGTERM, then shut down gracefully."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    today = datetime.now(UTC).date()
    calendar = load_business_calendar(settings, today)
    # Counted and logged, never fatal: deadlines in an unknown year are provisional.
    calendar_warnings = log_calendar_warnings(calendar, today)
    engine = make_engine(
        settings.require_database_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    client = await connect(settings)
    worker = build_worker(
        client,
        make_sessionmaker(engine),
        settings.task_queue,
        signing_secret=settings.signing_secret,
        calendar=calendar,
        notifier=build_notifier(settings, action_links=decision_links(settings)),
        # Memory follows the cache, not the number of open requests: an evicted
        # request is rebuilt from its history when it next hears from anyone.
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_activities,
    )
    await ensure_reconcile_schedule(client, settings.task_queue)
    await ensure_delivery_schedule(
        client, settings.task_queue, timedelta(seconds=settings.delivery_every_seconds)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started on task queue %s at %s (cache %d workflows, %d workflow tasks and "
        "%d activities at once; calendar %s, %d calendar warning(s))",
        settings.task_queue,
        settings.temporal_address,
        settings.worker_max_cached_workflows,
        settings.worker_max_concurrent_workflow_tasks,
        settings.worker_max_concurrent_activities,
        calendar.time_zone,
        len(calendar_warnings),
    )
    try:
        async with worker:
            await stop.wait()
    finally:
        log.info("worker stopping")
        await engine.dispose()
