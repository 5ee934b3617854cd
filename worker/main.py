"""The worker: registers the workflows and the activities and runs until stopped."""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

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
from common.logs import configure_logging
from common.metrics import refresh_forever, register_business_collector, sdk_runtime
from common.metrics import serve as serve_metrics
from common.policy_store import load_policies
from common.redaction import configured_secrets, install_log_redaction
from common.settings import DEV_SIGNING_SECRET, Settings, get_settings
from common.temporal import connect_when_ready
from db.engine import make_engine, make_sessionmaker
from domain.working_time import BusinessCalendar
from notify.setup import Notifier, build_notifier
from worker.schedules import delete_delivery_schedule, ensure_reconcile_schedule
from worker.versioning import deployment_config, deployment_version, make_current
from workflows.approval import ApprovalWorkflow
from workflows.delivery import DeliverNoticesWorkflow
from workflows.reconcile import ReconcileWorkflow

log = logging.getLogger("approvals.worker")


def compile_workflow_modules() -> None:
    """Write the bytecode of the workflow modules if it is missing or stale.

    The sandbox imports a workflow's module afresh for every workflow it starts or
    rebuilds. Without bytecode on disk (``PYTHONDONTWRITEBYTECODE`` is common in
    containers and development shells) that import compiles the source each time:
    a tenth of the worker's time under load. ``compileall`` writes the files even
    then; where the code is read-only it cannot, and the worker runs as before.
    """
    import workflows

    for folder in workflows.__path__:
        try:
            compileall.compile_dir(folder, maxlevels=0, quiet=2)
        except OSError as exc:  # a read-only install: slower starts, same behaviour
            log.debug("could not write the bytecode of %s: %s", folder, exc)


Role = Literal["approvals", "deliveries", "both"]
"""What one ``approvals worker`` process polls: the approvals' task queue, or not. Every
role polls the delivery queue, where the ``DeliverNotices`` passes that the deleted
schedule started finish (``approvals deliverer`` sends the notices now)."""

DELIVERY_CACHED_WORKFLOWS = 20
"""Delivery passes are short and never two at once per schedule: a small cache is plenty."""


def _delivery_activities(delivery: DeliveryActivities) -> list[Callable[..., Any]]:
    """Every delivery activity, ``deliver`` too (passes started before the batches)."""
    return [delivery.plan_and_claim, delivery.deliver, delivery.deliver_batch]


def _runner(sandboxed: bool) -> WorkflowRunner:
    """The SDK's sandbox, or workflow code run as it is (see APPROVALS_WORKFLOW_SANDBOX)."""
    return SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner()


def build_worker(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    *,
    signing_secret: str = DEV_SIGNING_SECRET,
    calendar: BusinessCalendar | None = None,
    notifier: Notifier | None = None,
    sandboxed: bool = True,
    **options: Any,
) -> Worker:
    """A worker for the approval workflow and its activities on ``task_queue``.

    It also runs ``DeliverNotices`` with its activities, for the passes that the
    schedule started on this queue before it moved to the delivery queue (see
    :func:`build_delivery_worker`); new passes run there.

    ``signing_secret`` checks who sent each message (see :mod:`domain.signing`);
    ``calendar`` counts working-time deadlines (default: the source's, default settings);
    ``notifier`` sends notices to the outside (default: as the environment's settings
    say; see :mod:`notify.setup`); ``sandboxed`` runs workflow code in the SDK's sandbox
    (the tests' default; see ``APPROVALS_WORKFLOW_SANDBOX``); ``options`` go to
    :class:`temporalio.worker.Worker` (tuning, tests).
    """
    if sandboxed:
        compile_workflow_modules()
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
            acts.addable_people,
            acts.active_delegates,
            acts.readers,
            reconcile.reconcile_closed_requests,
            deadlines.due_at,
            *_delivery_activities(delivery),
        ],
        # Drain in-flight activities on shutdown rather than abandoning them.
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A worker killed without its graceful shutdown never tells the server that its
        # sticky queue is gone: a workflow task (say an update carrying a decision) put on
        # that queue waits this long before it moves to the shared queue that the restarted
        # worker polls. The SDK's 10 s would be most of a recovery; 3 s is still far above
        # what a live worker on the same machine needs to pick up a task.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        # The sandbox imports the workflow's module again for every workflow it starts
        # or rebuilds, and compiles its glue code for every activation.
        workflow_runner=_runner(sandboxed),
        **options,
    )


def build_delivery_worker(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    *,
    notifier: Notifier | None = None,
    sandboxed: bool = True,
    **options: Any,
) -> Worker:
    """A worker for the delivery passes (``DeliverNotices`` and its activities) only.

    Since issue 19 no pass is started (``approvals deliverer`` sends the notices); this
    worker lets the passes that the old schedule started finish, on their own queue.
    ``sandboxed`` as for :func:`build_worker`; ``options`` go to
    :class:`temporalio.worker.Worker`.
    """
    if sandboxed:
        compile_workflow_modules()
    delivery = DeliveryActivities(sessions, notifier or build_notifier(get_settings()))
    options.setdefault("max_cached_workflows", DELIVERY_CACHED_WORKFLOWS)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[DeliverNoticesWorkflow],
        activities=_delivery_activities(delivery),
        # A batch records each send as it ends: what the shutdown cuts off keeps its lease.
        graceful_shutdown_timeout=timedelta(seconds=10),
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        workflow_runner=_runner(sandboxed),
        **options,
    )


async def run_worker(settings: Settings, only: Role = "both") -> None:
    """Connect, run until SIGINT/SIGTERM, then shut down gracefully.

    ``only`` chooses the task queues polled (see :data:`Role`).
    """
    install_log_redaction(configured_secrets(settings))  # as `approvals worker` does
    configure_logging(settings.log_format, logging.INFO)
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
    # One SDK runtime for the process: both roles' workers share its metrics endpoint.
    runtime = sdk_runtime(settings.worker_metrics_address)
    # Waits for Temporal (with back-off) instead of exiting: it may start after the worker.
    client = await connect_when_ready(settings, runtime=runtime, service=f"approvals-worker-{only}")
    sessions = make_sessionmaker(engine)
    metrics_server = serve_metrics(settings.metrics_address)
    refresher: asyncio.Task[None] | None = None
    # Reminders and urgent notices wait for the working hours of the calendar the
    # deadlines count on, unless the request type's policy says otherwise.
    notifier = build_notifier(
        settings,
        action_links=decision_links(settings),
        calendar=calendar,
        policies=load_policies(settings.policy_dir),
    )
    # Both roles poll as the same build: one version of the deployment spans both queues.
    version = deployment_version(settings)
    workers: list[Worker] = []
    if only in ("approvals", "both"):
        workers.append(
            build_worker(
                client,
                sessions,
                settings.task_queue,
                signing_secret=settings.signing_secret,
                calendar=calendar,
                notifier=notifier,
                sandboxed=settings.workflow_sandbox,
                # Memory follows the cache, not the number of open requests: an evicted
                # request is rebuilt from its history when it next hears from anyone.
                max_cached_workflows=settings.worker_max_cached_workflows,
                max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
                max_concurrent_activities=settings.worker_max_concurrent_activities,
                max_concurrent_local_activities=settings.worker_max_concurrent_activities,
                deployment_config=deployment_config(version),
            )
        )
        await ensure_reconcile_schedule(
            client, settings.task_queue, every=timedelta(seconds=settings.reconcile_every_seconds)
        )
        # The gauges of what waits in PostgreSQL come from the approvals worker, not the
        # deliverer: "deliveries are late" must be told by a process other than the late one.
        refresher = asyncio.create_task(
            refresh_forever(sessions, register_business_collector()), name="business-metrics"
        )
        log.info(
            "approvals worker on task queue %s at %s (cache %d workflows, %d workflow tasks "
            "and %d activities at once; workflow sandbox %s; calendar %s, %d calendar "
            "warning(s))",
            settings.task_queue,
            settings.temporal_address,
            settings.worker_max_cached_workflows,
            settings.worker_max_concurrent_workflow_tasks,
            settings.worker_max_concurrent_activities,
            "on" if settings.workflow_sandbox else "off",
            calendar.time_zone,
            len(calendar_warnings),
        )
    # Notices are sent by `approvals deliverer`, started by no workflow. Every role still
    # polls the delivery queue, with ``DeliverNotices`` registered, so that the passes the
    # deleted schedule started before a rollout finish (and their histories replay).
    workers.append(
        build_delivery_worker(
            client,
            sessions,
            settings.delivery_task_queue,
            notifier=notifier,
            sandboxed=settings.workflow_sandbox,
            max_concurrent_activities=settings.delivery_worker_max_concurrent_activities,
            deployment_config=deployment_config(version),
        )
    )
    log.info(
        "finishing old delivery passes on task queue %s, if any; `approvals deliverer` sends "
        "the notices",
        settings.delivery_task_queue,
    )
    log.info(
        "worker versioning %s",
        f"on: deployment {version.deployment_name}, build {version.build_id}"
        + (" (made current on start)" if settings.deployment_promote else "")
        if version is not None
        else "off",
    )
    log.info(
        "metrics: Temporal SDK's on %s, ours on %s; tracing %s",
        settings.worker_metrics_address or "(off)",
        settings.metrics_address or "(off)",
        settings.tracing_mode,
    )
    # Whichever role runs deletes the schedule of a pass every 5 s (idempotent, logged).
    await delete_delivery_schedule(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            if version is not None and settings.deployment_promote:
                # Known to the server once these workers have polled: make_current waits.
                await make_current(client, version)
            await stop.wait()
    finally:
        log.info("worker stopping")
        if refresher is not None:
            refresher.cancel()
        if metrics_server is not None:
            metrics_server.shutdown()
        await engine.dispose()
