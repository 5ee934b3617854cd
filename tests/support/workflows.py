"""Workflow tests: the real workflow and activities, a real PostgreSQL, time skipping."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from common.settings import DEV_SIGNING_SECRET
from common.signer import vouch
from db.models import EventRow, NotificationRow, RequestRow
from domain.constants import WORKFLOW_NAME, Queries, Signals, Updates, workflow_id
from domain.durations import Span
from domain.policy import Policy
from domain.process import ApprovalInput, DecideInput, MilestoneInput, RequestView
from domain.requests import validate_fields
from domain.routing import resolve_route
from tests.support.servers import converter_for_tests
from tests.support.stored_histories import current_test, keep
from worker.main import build_worker
from workflows.approval import ApprovalWorkflow

Starter = Callable[..., Awaitable[WorkflowHandle[Any, Any]]]


def make_input(
    policy: Policy, requester: str, amount: Decimal | None, fields: dict[str, Any]
) -> ApprovalInput:
    norm = validate_fields(policy, amount, fields)
    return ApprovalInput(
        request_id=str(uuid.uuid4()),
        requester=requester,
        title=f"{policy.title} test",
        customer="ACME Ltd",
        amount=amount,
        fields=norm,
        policy=policy,
        route=resolve_route(policy, amount, norm),
    )


def in_calendar_time(policy: Policy) -> Policy:
    """``policy`` with the reply, resolve and resubmit clocks of before issue 14: 4 hours,
    3 days and 7 days of calendar time.

    For the tests of the timer machinery (remind, escalate, overdue, expire), whose
    instants must not depend on the day of the week the suite runs on. The shipped
    policies count these in working time; that path through the workflow is pinned,
    on a calendar of its own, in ``tests/workflows/test_working_time.py``.
    """
    timers = policy.timers.model_copy(
        update={
            "reply": Span(hours=4),
            "resolve": Span(days=3),
            "resubmit": Span(days=7),
        }
    )
    return policy.model_copy(update={"timers": timers})


async def start(
    client: Client,
    queue: str,
    policy: Policy,
    requester: str,
    amount: Decimal | None,
    fields: dict[str, Any],
) -> WorkflowHandle[Any, Any]:
    inp = make_input(policy, requester, amount, fields)
    handle = await client.start_workflow(
        WORKFLOW_NAME, inp, id=workflow_id(inp.request_id), task_queue=queue
    )
    _STARTED.append(handle)
    return handle


_UPDATE_OF_SIGNAL = {
    Signals.DECIDE: Updates.DECIDE,
    Signals.RESUBMIT: Updates.RESUBMIT,
    Signals.WITHDRAW: Updates.WITHDRAW,
    Signals.TRANSFER: Updates.TRANSFER,
    Signals.RECORD_MILESTONE: Updates.RECORD_MILESTONE,
    Signals.SEND_BACK: Updates.SEND_BACK,
    Signals.ADD_APPROVERS: Updates.ADD_APPROVERS,
    Signals.ADD_CC: Updates.ADD_CC,
    Signals.REVOKE: Updates.REVOKE,
    Signals.URGE: Updates.URGE,
    Signals.REASSIGN: Updates.REASSIGN,
}


M = TypeVar("M", bound=BaseModel)


def signed(
    handle: WorkflowHandle[Any, Any],
    name: str,
    message: M,
    by: Any = "api",
    rid: str | None = None,
) -> M:
    """``message`` with the proof the API (or an operator) gives it, for ``name``."""
    name = _UPDATE_OF_SIGNAL.get(name, name)
    operator = "test-operator" if by == "operator" else None
    return vouch(
        message, DEV_SIGNING_SECRET, rid or request_id(handle), name, by=by, operator=operator
    )


async def signal(
    handle: WorkflowHandle[Any, Any], name: str, message: BaseModel, rid: str | None = None
) -> None:
    """Send a signal as an operator's signed command would."""
    await handle.signal(name, signed(handle, name, message, by="operator", rid=rid))


def update(
    handle: WorkflowHandle[Any, Any],
    name: str,
    message: BaseModel,
    result_type: type = RequestView,
    **options: Any,
) -> Awaitable[Any]:
    """Send an update as the API does (signed for its verified caller)."""
    return handle.execute_update(
        name, signed(handle, name, message), result_type=result_type, **options
    )


async def contract_at_first_stage(
    client: Client, queue: str, policies: dict[str, Policy], contract_no: str = "HT-1"
) -> WorkflowHandle[Any, Any]:
    """A 250,000 contract by am_li waiting for bcd_zheng, its first stage written down.

    Needs a worker that answers updates (the local dev server's ``local_queue``).
    """
    h = await start(
        client,
        queue,
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        {"contract_no": contract_no, "settlement_floor_price": "1"},
    )
    v = await h.execute_update(Updates.READY, result_type=RequestView)
    assert v.current_approvers == ["bcd_zheng"]
    return h


async def state(handle: WorkflowHandle[Any, Any]) -> RequestView:
    return await handle.query(Queries.STATE, result_type=RequestView)


def request_id(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.removeprefix("approval-")


async def audit_kinds(sessions: async_sessionmaker[AsyncSession], rid: str) -> list[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(EventRow).where(EventRow.request_id == rid).order_by(EventRow.seq)
        )
        return [r.kind for r in rows]


async def request_row(sessions: async_sessionmaker[AsyncSession], rid: str) -> RequestRow:
    async with sessions() as s:
        row = await s.get(RequestRow, rid)
        assert row is not None
        return row


async def notified(sessions: async_sessionmaker[AsyncSession], rid: str, template: str) -> set[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(NotificationRow).where(
                NotificationRow.request_id == rid, NotificationRow.template == template
            )
        )
        return {r.recipient for r in rows}


@contextlib.asynccontextmanager
async def worker_queue(
    client: Client, sessions: async_sessionmaker[AsyncSession], prefix: str, **options: Any
) -> AsyncIterator[str]:
    """A worker (``build_worker(**options)``) on a fresh task queue named ``prefix-…``;
    on the way out, every workflow the test started is replayed and ended."""
    queue = f"{prefix}-{uuid.uuid4()}"
    async with build_worker(client, sessions, queue, **options):
        yield queue
        await _terminate_leftovers()


_STARTED: list[WorkflowHandle[Any, Any]] = []


async def _terminate_leftovers() -> None:
    """Replay every workflow the test started, then end what it left running.

    Replaying each scenario's real history with :class:`Replayer` makes any
    non-deterministic change to the workflow fail a test instead of production.
    Ending leftovers matters on the time-skipping server: a workflow whose worker
    is gone would hold the shared clock still for every later test.
    """
    replayer = Replayer(workflows=[ApprovalWorkflow], data_converter=converter_for_tests())
    while _STARTED:
        handle = _STARTED.pop()
        history = await handle.fetch_history()
        await replayer.replay_workflow(history)
        keep(history, current_test())
        try:
            await handle.terminate("test finished")
        except RPCError:
            pass  # already closed


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 60) -> None:
    """Wait (wall clock) until ``check()`` holds; fail after ``seconds``."""
    for _ in range(int(seconds / 0.25)):
        if await check():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"still not true after {seconds} s")


SETTLE = timedelta(seconds=1)
"""Long enough for the workflow to take a signal and go idle again (server time)."""


async def decide_by_signal(
    env: WorkflowEnvironment,
    h: WorkflowHandle[Any, Any],
    actor: str,
    action: Literal["approve", "reject", "return"] = "approve",
    rid: str | None = None,
) -> None:
    """Decide as an operator would, by signal, and let the workflow settle."""
    await signal(h, Signals.DECIDE, DecideInput(actor=actor, action=action), rid=rid)
    await env.sleep(SETTLE)


async def pay_by_signal(
    env: WorkflowEnvironment,
    h: WorkflowHandle[Any, Any],
    milestone: str,
    amount: str,
    actor: str = "am_li",
    reference: str = "X",
) -> None:
    """Record a milestone payment by signal and let the workflow settle."""
    await signal(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(
            actor=actor, milestone=milestone, amount=Decimal(amount), reference=reference
        ),
    )
    await env.sleep(SETTLE)


CONTRACT_FIELDS = {"contract_no": "HT-1", "settlement_floor_price": "90000"}
"""A big-customer contract's form, for the tests of the timer machinery."""


async def start_contract(
    env: WorkflowEnvironment, queue: str, policies: dict[str, Policy], amount: int
) -> WorkflowHandle[Any, Any]:
    """am_li's big-customer contract of ``amount``, its clocks in calendar time
    (:func:`in_calendar_time`)."""
    return await start(
        env.client,
        queue,
        in_calendar_time(policies["big_customer_contract"]),
        "am_li",
        Decimal(amount),
        CONTRACT_FIELDS,
    )
