"""Worker Versioning: which build of the worker this is, and the few deployment calls.

With ``APPROVALS_WORKER_VERSIONING`` on, each worker polls as one version
(``APPROVALS_DEPLOYMENT_NAME`` + ``APPROVALS_BUILD_ID``) of a Temporal Worker
Deployment. The server gives new workflows to the deployment's *current* version
(or a ramp's share to the *ramping* one); a pinned workflow then stays on the build
it started on. The Python client has no high-level call to promote a version, so
these wrap the service's RPCs; operators use ``temporal worker deployment ...``
(docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionMessage
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from common.settings import Settings

log = logging.getLogger("approvals.worker.versioning")

IDENTITY = "approvals-worker"

DEFAULT_BEHAVIOR = VersioningBehavior.PINNED
"""What a workflow type without its own ``versioning_behavior`` does: the requests."""

VERSION_ATTRIBUTE = "TemporalWorkerDeploymentVersion"
"""The server's search attribute of a run's version (``<deployment>:<build id>``)."""


def deployment_version(settings: Settings) -> WorkerDeploymentVersion | None:
    """The version this worker polls as; None when versioning is off."""
    if not settings.worker_versioning:
        return None
    return WorkerDeploymentVersion(
        deployment_name=settings.deployment_name, build_id=settings.build_id
    )


def deployment_config(version: WorkerDeploymentVersion | None) -> WorkerDeploymentConfig | None:
    """The ``deployment_config`` of a :class:`temporalio.worker.Worker` polling as ``version``.

    Pinned by default: that is ``ApprovalWorkflow``'s behavior (and any new type's until
    it says otherwise); the housekeeping passes declare ``AUTO_UPGRADE`` in their
    ``@workflow.defn``. The requests' behavior lives here, not in their decorator,
    because SDK 1.35 sends a decorator's behavior from an unversioned worker too, and on
    the path where a long local activity keeps the workflow task alive the server
    refuses it ("versioning behavior cannot be specified without deployment options"):
    the tests and an unversioned deployment would see that task fail.
    """
    if version is None:
        return None
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=DEFAULT_BEHAVIOR,
    )


def running_on(version: WorkerDeploymentVersion) -> str:
    """The visibility query of the runs still open on ``version`` (what holds it)."""
    return (
        f'{VERSION_ATTRIBUTE} = "{version.deployment_name}:{version.build_id}" '
        'AND ExecutionStatus = "Running"'
    )


def _retryable(exc: RPCError) -> bool:
    # The version exists once its workers have polled every task queue: until then the
    # server answers that it does not know it yet.
    return exc.status in (
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.UNAVAILABLE,
    )


async def make_current(
    client: Client, version: WorkerDeploymentVersion, *, within: float = 60.0
) -> None:
    """Make ``version`` its deployment's current version: new workflows start on it.

    Waits (up to ``within`` seconds) for the version to be known, which it is once its
    workers have polled. Setting the version that is already current changes nothing.
    """
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=version.deployment_name,
        build_id=version.build_id,
        identity=IDENTITY,
    )
    await _retrying(
        lambda: client.workflow_service.set_worker_deployment_current_version(request), within
    )
    log.info("build %s is now current in deployment %s", version.build_id, version.deployment_name)


async def ramp(
    client: Client, version: WorkerDeploymentVersion, percentage: float, *, within: float = 60.0
) -> None:
    """Send ``percentage`` of new workflows to ``version`` (0 ends the ramp)."""
    request = SetWorkerDeploymentRampingVersionRequest(
        namespace=client.namespace,
        deployment_name=version.deployment_name,
        build_id=version.build_id,
        percentage=percentage,
        identity=IDENTITY,
    )
    await _retrying(
        lambda: client.workflow_service.set_worker_deployment_ramping_version(request), within
    )


async def current_build(client: Client, deployment_name: str) -> str | None:
    """The build id of the deployment's current version; None when none is set."""
    try:
        answer = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=client.namespace, deployment_name=deployment_name
            )
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    current: VersionMessage = (
        answer.worker_deployment_info.routing_config.current_deployment_version
    )
    return current.build_id or None


async def _retrying(call: Callable[[], Awaitable[object]], within: float) -> None:
    deadline = time.monotonic() + within
    delay = 0.2
    while True:
        try:
            await call()
            return
        except RPCError as exc:
            if not _retryable(exc) or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
