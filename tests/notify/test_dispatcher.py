"""The DeliverNotices workflow on the real Temporal dev server with the real worker:
notices of a real approval reach a real SMTP server, a channel that is down never holds
the approval up, and the schedule runs the passes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from common.policy_store import load_policies
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow
from domain.constants import WORKFLOW_NAME, Updates, workflow_id
from domain.delivery import DELIVERY_WORKFLOW_NAME, DeliverNoticesInput, DeliverNoticesOutput
from domain.process import DecideInput, RequestView
from tests.notify.conftest import make_notifier
from tests.notify.receivers import MailBox, free_port, smtp_server
from tests.stored_histories import current_test, keep
from tests.workflows.conftest import make_input
from tests.workflows.conftest import update as signed_update
from worker.main import build_worker
from worker.schedules import ensure_delivery_schedule
from workflows.delivery import DeliverNoticesWorkflow

ROOT = Path(__file__).resolve().parents[2]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
async def queue(
    temporal_local: WorkflowEnvironment, sessions: Sessions, smtp_port: int
) -> AsyncIterator[str]:
    name = f"notify-{uuid.uuid4()}"
    async with build_worker(
        temporal_local.client, sessions, name, notifier=make_notifier(smtp_port)
    ):
        yield name


async def a_pass(env: WorkflowEnvironment, queue: str) -> DeliverNoticesOutput:
    handle = await env.client.start_workflow(
        DELIVERY_WORKFLOW_NAME,
        DeliverNoticesInput(),
        id=f"deliver-test-{uuid.uuid4()}",
        task_queue=queue,
        result_type=DeliverNoticesOutput,
    )
    out = await handle.result()
    history = await handle.fetch_history()
    await Replayer(
        workflows=[DeliverNoticesWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)
    keep(history, current_test())  # with `make record-histories`: one per shape
    return out


async def wait_for_notice(sessions: Sessions, rid: str, recipient: str) -> None:
    for _ in range(200):
        async with sessions() as s:
            found = await s.scalar(
                select(NotificationRow.id).where(
                    NotificationRow.request_id == rid, NotificationRow.recipient == recipient
                )
            )
        if found is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no notice for {recipient}")


async def test_mail_down_never_holds_the_approval_and_every_assigned_mail_arrives_once(
    temporal_local: WorkflowEnvironment, sessions: Sessions, queue: str, smtp_port: int
) -> None:
    client = temporal_local.client
    policies = load_policies(ROOT / "policies")
    inp = make_input(
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        {"contract_no": "HT-N1", "settlement_floor_price": "1"},
    )
    h = await client.start_workflow(
        WORKFLOW_NAME, inp, id=workflow_id(inp.request_id), task_queue=queue
    )
    try:
        v = await h.execute_update(Updates.READY, result_type=RequestView)
        assert v.current_approvers == ["bcd_zheng"]
        await wait_for_notice(sessions, inp.request_id, "bcd_zheng")

        # The mail server is down: the pass records why, and the approval carries on.
        out = await a_pass(temporal_local, queue)
        assert (out.planned, out.retrying, out.sent) == (1, 1, 0)
        v = await signed_update(h, Updates.DECIDE, DecideInput(actor="bcd_zheng", action="approve"))
        assert v.current_approvers == ["dsd_liu"]
        await wait_for_notice(sessions, inp.request_id, "dsd_liu")

        box = MailBox()
        async with smtp_server(box, port=smtp_port):
            async with transaction(sessions) as s:
                await s.execute(
                    update(DeliveryRow).values(
                        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
                    )
                )
            out = await a_pass(temporal_local, queue)
            assert out.sent == 2 and out.errored == 0
            assert (await a_pass(temporal_local, queue)).sent == 0
        to = sorted(rcpt for _, rcpts in box.envelopes for rcpt in rcpts)
        assert to == ["bcd_zheng@demo.example", "dsd_liu@demo.example"]
        assert all(m["Subject"].startswith("待您审批") for m in box.messages)
    finally:
        await h.terminate("test finished")


async def test_the_delivery_schedule_is_created_once_and_its_pass_sends(
    temporal_local: WorkflowEnvironment, sessions: Sessions, queue: str, smtp_port: int
) -> None:
    from tests.notify.conftest import add_notice, add_request

    client = temporal_local.client
    schedule_id = f"deliver-test-{uuid.uuid4().hex[:8]}"
    every = timedelta(seconds=2)
    assert await ensure_delivery_schedule(client, queue, every, schedule_id) is True
    schedule = client.get_schedule_handle(schedule_id)
    try:
        assert await ensure_delivery_schedule(client, queue, every, schedule_id) is False
        desc = await schedule.describe()
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == (DELIVERY_WORKFLOW_NAME, queue)
        assert [i.every for i in desc.schedule.spec.intervals] == [every]
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        box = MailBox()
        async with smtp_server(box, port=smtp_port):
            rid = await add_request(sessions)
            await add_notice(sessions, rid, "dsd_liu", "overdue")
            for _ in range(100):
                if box.messages:
                    break
                await asyncio.sleep(0.2)
        [msg] = box.messages
        assert msg["Subject"].startswith("已超时")
    finally:
        await schedule.delete()
