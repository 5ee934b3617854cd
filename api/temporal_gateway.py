"""The API's Temporal client, connected lazily so the API starts without Temporal.

The first connection is tried at start-up; when it fails, the API still serves
(reads come from the database) and every route that needs Temporal tries again,
at most once per back-off interval, answering 503 with Retry-After meanwhile.

It also tells /readyz when a worker last polled the workflow task queue, asking
Temporal at most once every few seconds, and tells the commands the namespace's
payload size limit, so that an update too large for the worker is never sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from api.errors import ApiError, unavailable
from common.settings import Settings
from common.temporal import connect

log = logging.getLogger("approvals.api")

_RETRY_INTERVAL_SECONDS = 2.0
# How long one answer about the task queue's pollers is reused: /readyz stays cheap
# however often it is probed.
POLLERS_CACHE_SECONDS = 5.0
_DESCRIBE_TIMEOUT = timedelta(seconds=3)
# Namespace limits change with a server reconfiguration only.
LIMITS_CACHE_SECONDS = 300.0


class TemporalGateway:
    """Holds the client once connected; connects on demand until then."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._last_failure: float | None = None
        self._last_error = ""
        self._poll_lock = asyncio.Lock()
        self._poll_checked: float | None = None
        self._last_poll: datetime | None = None
        self._limits_lock = asyncio.Lock()
        self._limits_checked: float | None = None
        self._blob_limit: int | None = None

    async def start(self) -> None:
        """Try to connect once; log and carry on when Temporal is not there yet."""
        try:
            await self.client()
        except ApiError:
            log.warning(
                "Temporal at %s is not reachable (%s); the API starts anyway and retries",
                self._settings.temporal_address,
                self._last_error,
            )

    async def client(self) -> Client:
        """The connected client.

        Raises:
            ApiError: 503 with Retry-After when Temporal cannot be reached.
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            recent = (
                self._last_failure is not None
                and time.monotonic() - self._last_failure < _RETRY_INTERVAL_SECONDS
            )
            if not recent:
                try:
                    self._client = await asyncio.wait_for(
                        connect(self._settings, service="approvals-api"),
                        timeout=self._settings.rpc_timeout_seconds,
                    )
                    log.info("connected to Temporal at %s", self._settings.temporal_address)
                    return self._client
                except (TimeoutError, RuntimeError, OSError) as exc:
                    self._last_failure = time.monotonic()
                    self._last_error = str(exc) or type(exc).__name__
            raise unavailable(
                "the workflow service (Temporal) is not reachable; nothing was changed, "
                "please retry"
            )

    async def last_worker_poll(self) -> datetime | None:
        """When a worker last polled the workflow task queue (None: no poller known).

        Asks Temporal (DescribeTaskQueue) at most once per
        :data:`POLLERS_CACHE_SECONDS`; concurrent callers share one call.

        Raises:
            ApiError: 503 when Temporal cannot be reached.
            RPCError: when Temporal refuses to describe the task queue.
        """
        async with self._poll_lock:
            now = time.monotonic()
            if self._poll_checked is not None and now - self._poll_checked < POLLERS_CACHE_SECONDS:
                return self._last_poll
            client = await self.client()
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(
                        name=self._settings.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL
                    ),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                ),
                timeout=_DESCRIBE_TIMEOUT,
            )
            polls = [
                p.last_access_time.ToDatetime(tzinfo=UTC)
                for p in response.pollers
                if p.HasField("last_access_time")
            ]
            self._last_poll = max(polls, default=None)
            self._poll_checked = time.monotonic()
            return self._last_poll

    async def blob_size_limit(self) -> int | None:
        """The namespace's payload (blob) size limit in bytes; None when unknown.

        Read from DescribeNamespace at most once per :data:`LIMITS_CACHE_SECONDS`.
        A failure to read it is logged and answered None (no check), never raised.
        """
        async with self._limits_lock:
            now = time.monotonic()
            if self._limits_checked is not None and now - self._limits_checked < (
                LIMITS_CACHE_SECONDS
            ):
                return self._blob_limit
            try:
                client = await self.client()
                response = await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=client.namespace),
                    timeout=_DESCRIBE_TIMEOUT,
                )
            except Exception as exc:  # the check is a safeguard: never fail a call over it
                log.warning("could not read the namespace's payload limits: %s", exc)
                return self._blob_limit
            limits = response.namespace_info.limits
            self._blob_limit = limits.blob_size_limit_error or None
            self._limits_checked = now
            return self._blob_limit
