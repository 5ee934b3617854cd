"""An update repeated under its id after continue-as-new is answered, not applied again.

Temporal answers a repeated update id with the first outcome only within one run.
The API sends a keyed action (``Idempotency-Key``) with the same update id every
time, so a retry that lands after the request continued as new used to be a new
update: a deposit payment counted twice. These tests run on a Temporal server
that suggests continue-as-new after a few dozen events, so the request really
moves to a new run between the first call and the retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals, Updates
from domain.policy import Policy
from domain.process import DecideInput, EventKind, MilestoneInput, RequestView
from tests.support.servers import start_dev_server
from tests.support.workflows import decide_by_signal, eventually, signed, start, state, worker_queue

SUGGEST_AFTER_EVENTS = 25


@pytest.fixture(scope="module")
async def temporal_short() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new once a run has a few dozen events."""
    env = await start_dev_server(
        **{"limit.historyCount.suggestContinueAsNew": SUGGEST_AFTER_EVENTS}
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def short_queue(
    temporal_short: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession], org: None
) -> AsyncIterator[str]:
    async with worker_queue(temporal_short.client, db_sessions, "short") as queue:
        yield queue


async def _awaiting_deposit(
    env: WorkflowEnvironment, queue: str, policies: dict[str, Policy]
) -> WorkflowHandle[Any, Any]:
    h = await start(
        env.client,
        queue,
        policies["retail_bulk_discount"],
        "am_li",
        Decimal(5000),
        {"gross_margin_pct": "3"},
    )
    await decide_by_signal(env, h, "mm_hu")
    await decide_by_signal(env, h, "gm_wang")
    assert (await state(h)).status == "awaiting_deposit"
    return h


def _pay(h: WorkflowHandle[Any, Any], update_id: str, amount: str, milestone: str = "deposit"):
    """A keyed payment as the API sends it: a fresh proof each time, the same update id."""
    payment = MilestoneInput(
        actor="fin_he", milestone=milestone, amount=Decimal(amount), reference="TX-1"
    )
    return h.execute_update(
        Updates.RECORD_MILESTONE,
        signed(h, Signals.RECORD_MILESTONE, payment),
        id=update_id,
        result_type=RequestView,
    )


async def _run_id(env: WorkflowEnvironment, h: WorkflowHandle[Any, Any]) -> str:
    latest = env.client.get_workflow_handle(h.id)
    run_id = (await latest.describe()).run_id
    assert run_id is not None
    return run_id


async def _continued_from(env: WorkflowEnvironment, h: WorkflowHandle[Any, Any], run: str) -> None:
    """Make the request move on from ``run``: the server suggests continue-as-new when a
    workflow task starts on a long history, so send unsigned signals (each recorded as
    ignored, nothing else changes) until a task starts past the threshold."""
    latest = env.client.get_workflow_handle(h.id)

    async def moved() -> bool:
        return await _run_id(env, h) != run

    for _ in range(SUGGEST_AFTER_EVENTS):
        if await moved():
            return
        await latest.signal(Signals.DECIDE, DecideInput(actor="nobody", action="approve"))
        await asyncio.sleep(0.3)
    await eventually(moved, seconds=10)


async def test_a_payment_retried_after_continue_as_new_is_counted_once(
    temporal_short: WorkflowEnvironment, short_queue: str, policies: dict[str, Policy]
) -> None:
    h = await _awaiting_deposit(temporal_short, short_queue, policies)
    first_run = await _run_id(temporal_short, h)
    key = f"{Updates.RECORD_MILESTONE}:fin_he:{uuid.uuid4().hex}"

    paid = await _pay(h, key, "400")
    assert paid.milestones is not None and paid.milestones[0].paid == Decimal("400.00")

    await _continued_from(temporal_short, h, first_run)
    latest = temporal_short.client.get_workflow_handle(h.id)

    again = await _pay(latest, key, "400")
    assert again.milestones is not None and again.milestones[0].paid == Decimal("400.00")
    view = await state(latest)
    assert view.milestones is not None and view.milestones[0].paid == Decimal("400.00")
    assert [e.kind for e in view.history].count(EventKind.MILESTONE) == 1

    # Another key is another payment, as the caller meant.
    more = await _pay(latest, f"{Updates.RECORD_MILESTONE}:fin_he:{uuid.uuid4().hex}", "100")
    assert more.milestones is not None and more.milestones[0].paid == Decimal("500.00")


async def test_a_refused_update_retried_after_continue_as_new_is_refused_alike(
    temporal_short: WorkflowEnvironment, short_queue: str, policies: dict[str, Policy]
) -> None:
    h = await _awaiting_deposit(temporal_short, short_queue, policies)
    key = f"{Updates.RECORD_MILESTONE}:fin_he:{uuid.uuid4().hex}"
    with pytest.raises(WorkflowUpdateFailedError) as first:
        await _pay(h, key, "400", milestone="no_such_milestone")
    cause = first.value.cause
    assert isinstance(cause, ApplicationError)

    # Grow the run past the threshold with a real payment, so it continues as new.
    first_run = await _run_id(temporal_short, h)
    await _pay(h, f"{Updates.RECORD_MILESTONE}:fin_he:{uuid.uuid4().hex}", "100")
    await _continued_from(temporal_short, h, first_run)
    latest = temporal_short.client.get_workflow_handle(h.id)

    with pytest.raises(WorkflowUpdateFailedError) as again:
        await _pay(latest, key, "400", milestone="no_such_milestone")
    repeated = again.value.cause
    assert isinstance(repeated, ApplicationError)
    assert (repeated.type, repeated.message) == (cause.type, cause.message)
