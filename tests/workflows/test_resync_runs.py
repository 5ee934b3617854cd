"""Resync reaches back through continue-as-new: the audit rows an earlier run held.

A run that continues as new carries only its latest events (``KEEP_EVENTS_ON_CONTINUE``).
A database restored from a backup taken before such a request began lacks all of its
audit rows; resync asks the earlier runs (while Temporal keeps them) for the events
the latest one no longer carries, so the audit trail comes back whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from cli.resync import resync
from db.models import EventRow
from domain.constants import Signals
from domain.core.machine import KEEP_EVENTS_ON_CONTINUE
from domain.policy import Policy
from domain.process import DecideInput
from tests.support.servers import start_dev_server
from tests.support.workflows import request_id, start, state, worker_queue

SUGGEST_AFTER_EVENTS = 800
"""History events before the server suggests continue-as-new: past the events a run
carries over (each ignored signal is one audit row and a few history events)."""

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def temporal_long() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(
        **{"limit.historyCount.suggestContinueAsNew": SUGGEST_AFTER_EVENTS}
    )
    yield env
    await env.shutdown()


async def events(sessions: Sessions, rid: str) -> list[tuple[object, ...]]:
    async with sessions() as s:
        rows = await s.execute(
            select(EventRow.seq, EventRow.at, EventRow.kind, EventRow.actor, EventRow.data)
            .where(EventRow.request_id == rid)
            .order_by(EventRow.seq)
        )
        return [tuple(r) for r in rows]


async def test_resync_brings_back_the_audit_rows_of_runs_before_a_continue_as_new(
    temporal_long: WorkflowEnvironment,
    db_sessions: Sessions,
    scratch_sessions: Sessions,
    org: None,
    policies: dict[str, Policy],
) -> None:
    client = temporal_long.client
    async with worker_queue(client, db_sessions, "resync-runs") as queue:
        h = await start(
            client,
            queue,
            policies["retail_bulk_discount"],
            "am_li",
            Decimal(5000),
            {"gross_margin_pct": "3"},
        )
        first_run = (await h.describe()).run_id
        latest = client.get_workflow_handle(h.id)
        # Unsigned decisions: each is recorded as ignored, until the run continues as new.
        for _ in range(400):
            if (await latest.describe()).run_id != first_run:
                break
            await latest.signal(Signals.DECIDE, DecideInput(actor="nobody", action="approve"))
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the request never continued as new")
        view = await state(latest)
        carried_from = min(e.seq for e in view.history)
        assert carried_from > 1, (
            f"the new run carries every event (#{view.version}): nothing to prove"
        )
        assert len(view.history) <= KEEP_EVENTS_ON_CONTINUE + view.version - carried_from + 1

        rid = request_id(h)
        truth = await events(db_sessions, rid)
        # The backup was taken before the request began: the restored database lacks it.
        report = await resync(
            client, scratch_sessions, task_queue=queue, closed_since=timedelta(days=1)
        )
        (one,) = report.requests
        assert one.row == "created" and not one.events_lost
        assert one.events_added == list(range(1, view.version + 1))
        assert await events(scratch_sessions, rid) == truth
        again = await resync(
            client, scratch_sessions, task_queue=queue, closed_since=timedelta(days=1)
        )
        assert (again.checked, again.rewritten, again.requests) == (1, 0, [])
