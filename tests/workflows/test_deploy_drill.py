"""The rollout drill (docs/deploy.md) on the dev server, with Worker Versioning on.

Build 1 and build 2 are the same code with one rule changed: build 2 counts working
time on a calendar that knows no year's official schedule, so every deadline it
computes is provisional (an activity result the test can tell apart). Requests
started on build 1 are pinned there: after build 2 is made current they still decide
as build 1 did, while new requests follow build 2; then build 1 drains, its
workers stop, and build 2 carries on alone.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals, Updates
from domain.policy import Policy
from domain.process import DecideInput, WithdrawInput
from domain.working_time import BusinessCalendar
from tests.support.workflows import (
    contract_at_first_stage,
    eventually,
    signal,
    start,
    state,
    update,
    worker_queue,
)
from tests.workflows.test_capabilities import policy
from worker.main import build_worker
from worker.versioning import (
    current_build,
    deployment_config,
    make_current,
    running_on,
)

KNOWN = BusinessCalendar(known_years=frozenset(range(2000, 2200)))
"""Build 1's calendar: every year's schedule known, so no deadline is provisional."""
UNKNOWN = BusinessCalendar()
"""Build 2's calendar: no year's schedule known, so every deadline is provisional."""


async def build_of(h: WorkflowHandle[Any, Any]) -> str:
    """The build the run is pinned to, as the server records it."""
    info = (await h.describe()).raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id


async def pinned_on(h: WorkflowHandle[Any, Any], build: str) -> bool:
    """Whether the run's first task is done and pinned it to ``build``."""
    info = (await h.describe()).raw_description.workflow_execution_info.versioning_info
    return info.behavior == VersioningBehavior.PINNED and info.deployment_version.build_id == build


async def open_on(client: Client, version: WorkerDeploymentVersion) -> int:
    return (await client.count_workflows(running_on(version))).count


async def test_requests_finish_on_their_build_while_new_ones_follow_the_current_one(
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
    policies: dict[str, Policy],
) -> None:
    client = temporal_local.client
    name = f"drill-{uuid.uuid4().hex[:8]}"
    v1 = WorkerDeploymentVersion(deployment_name=name, build_id="build-1")
    v2 = WorkerDeploymentVersion(deployment_name=name, build_id="build-2")
    # Build 2's workers are deployed beside build 1's from the start: polling, not current.
    async with worker_queue(
        client, db_sessions, "drill", calendar=UNKNOWN, deployment_config=deployment_config(v2)
    ) as queue:
        build_1 = build_worker(
            client, db_sessions, queue, calendar=KNOWN, deployment_config=deployment_config(v1)
        )
        async with build_1:
            await make_current(client, v1)
            old = await contract_at_first_stage(client, queue, policies, "HT-DRILL-1")
            assert await build_of(old) == "build-1"
            assert not (await state(old)).provisional

            await make_current(client, v2)
            assert await current_build(client, name) == "build-2"
            new = await contract_at_first_stage(client, queue, policies, "HT-DRILL-2")
            assert await build_of(new) == "build-2"
            assert (await state(new)).provisional  # build 2's rule

            # Build 1's request goes on deciding as build 1 does: its next deadline too.
            v = await update(old, Updates.DECIDE, DecideInput(actor="bcd_zheng", action="approve"))
            assert v.stage_index == 1 and not v.provisional
            assert await build_of(old) == "build-1"
            await update(old, Updates.WITHDRAW, WithdrawInput(actor="am_li"))

            # Drained: no run is open on build 1 any more (visibility is eventually consistent).
            async def drained() -> bool:
                return await open_on(client, v1) == 0

            await eventually(drained, 30)
            assert await open_on(client, v2) >= 1
        # Build 1's workers are stopped: retired. (Deleting the version from the server
        # waits for it to forget their polls, minutes: docs/deploy.md, step 6.)

        # Build 2 carries on alone with what it started.
        v = await update(new, Updates.DECIDE, DecideInput(actor="bcd_zheng", action="approve"))
        assert v.stage_index == 1 and v.provisional
        assert await build_of(new) == "build-2"


async def test_a_credit_line_moves_to_the_current_build_at_its_next_cycle(
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
) -> None:
    """Pinned per run, not for life: the run a review cycle continues into starts on
    the build that is current then (a years-long credit line never holds an old one)."""
    client = temporal_local.client
    name = f"drill-{uuid.uuid4().hex[:8]}"
    v1 = WorkerDeploymentVersion(deployment_name=name, build_id="build-1")
    v2 = WorkerDeploymentVersion(deployment_name=name, build_id="build-2")
    credit_line = policy(review_cycle={"every": "PT4S", "title": "Review every few seconds"})
    async with worker_queue(
        client, db_sessions, "drill", calendar=KNOWN, deployment_config=deployment_config(v2)
    ) as queue:
        build_1 = build_worker(
            client, db_sessions, queue, calendar=KNOWN, deployment_config=deployment_config(v1)
        )
        async with build_1:
            await make_current(client, v1)
            h = await start(client, queue, credit_line, "am_li", Decimal(5000), {"rate": "9"})
            await eventually(lambda: at(h, "in_review", "cd_xu"), 30)
            await signal(h, Signals.DECIDE, DecideInput(actor="cd_xu", action="approve"))
            await eventually(lambda: at(h, "active"), 30)
            # In force: continued as new, and the new run pinned on build 1, the current one.
            await eventually(lambda: pinned_on(h, "build-1"), 30)

            await make_current(client, v2)
            # The review comes due on build 1 and is decided there; in force again, the
            # run continues as new, and the new run starts on build 2.
            await eventually(lambda: at(h, "in_review", "cd_xu"), 30)
            assert await pinned_on(h, "build-1")
            await signal(h, Signals.DECIDE, DecideInput(actor="cd_xu", action="approve"))
            await eventually(lambda: at(h, "active"), 30)

            await eventually(lambda: pinned_on(h, "build-2"), 30)
            assert (await state(h)).review_cycle == 1


async def at(h: WorkflowHandle[Any, Any], status: str, approver: str | None = None) -> bool:
    v = await state(h)
    return v.status == status and (approver is None or v.current_approvers == [approver])
