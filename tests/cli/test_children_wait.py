"""What `approvals dev` counts on: its processes wait for PostgreSQL and Temporal.

So it starts them all at once, in any order, as compose or a deployment would.
Real processes, started as `approvals api` and `approvals worker`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.testing import WorkflowEnvironment

from tests.support.api import temporal_target
from tests.support.paths import ROOT
from tests.support.servers import closed_port

# A socket directory where no PostgreSQL listens.
NO_DATABASE = "postgresql+asyncpg://postgres:@/approvals?host=/nonexistent-approvals-socket"


@contextmanager
def started(args: list[str], log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("APPROVALS_")}
    environ.update(APPROVALS_ENV="development", PYTHONUNBUFFERED="1", **env)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=ROOT,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_api_starts_without_postgres_and_temporal_and_says_not_ready(tmp_path: Path) -> None:
    port = closed_port()
    log = tmp_path / "api.log"
    with started(
        ["api", "--port", str(port)],
        log,
        DATABASE_URL=NO_DATABASE,
        TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}",
    ) as proc:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)

    assert ready.status_code == 503
    checks = ready.json()["error"]["details"]["checks"]
    assert checks["database"].startswith("down")
    assert checks["temporal"].startswith("down")


async def test_the_worker_polls_while_postgres_is_down(
    temporal_local: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"wait-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    with started(
        ["worker", "--only", "approvals"],
        log,
        DATABASE_URL=NO_DATABASE,
        TEMPORAL_ADDRESS=temporal_target(temporal_local),
        APPROVALS_TASK_QUEUE=queue,
        APPROVALS_WORKER_METRICS_ADDRESS="",
        APPROVALS_METRICS_ADDRESS="",
    ) as proc:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            pollers = await temporal_local.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=temporal_local.client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            if pollers.pollers:
                break
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.5)
        # Its business metrics read PostgreSQL: a failed read is logged, the worker goes on.
        await asyncio.sleep(2)
        assert proc.poll() is None, log.read_text()
