"""The worker: registers the workflow and the activities and runs until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.approvals import ApprovalActivities
from common.settings import Settings
from common.temporal import connect
from db.engine import make_engine, make_sessionmaker
from workflows.approval import ApprovalWorkflow

log = logging.getLogger("approvals.worker")


def build_worker(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    **options: Any,
) -> Worker:
    """A worker for the approval workflow and its activities on ``task_queue``.

    ``options`` go to :class:`temporalio.worker.Worker` (tuning, tests).
    """
    acts = ApprovalActivities(sessions)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ApprovalWorkflow],
        activities=[
            acts.record_transition,
            acts.resolve_assignees,
            acts.resolve_escalation,
            acts.execute_payout,
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
    engine = make_engine(settings.require_database_url())
    client = await connect(settings)
    worker = build_worker(client, make_sessionmaker(engine), settings.task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started on task queue %s at %s", settings.task_queue, settings.temporal_address
    )
    try:
        async with worker:
            await stop.wait()
    finally:
        log.info("worker stopping")
        await engine.dispose()
