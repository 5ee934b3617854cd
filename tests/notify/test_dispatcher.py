"""The DeliverNotices workflow on the real Temporal dev server with the real workers (the
approvals' on one task queue, the deliverer on its own): notices of a real approval reach
a real SMTP server, a channel that is down never holds the approval up, each channel's
deliveries go in one batch and a slow channel delays only its own. The passes are what
the schedule of before issue 19 started (the deliverer process sends now, see
test_deliverer.py): the workers still run those, and the worker deletes the schedule."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from common.policy_store import load_policies
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow
from domain.constants import WORKFLOW_NAME, Updates, workflow_id
from domain.delivery import (
    DELIVERY_WORKFLOW_NAME,
    DeliverNoticesInput,
    DeliverNoticesOutput,
    DeliveryActivityNames,
)
from domain.process import DecideInput, RequestView
from notify.robots import RobotChannel, RobotConfig
from notify.setup import Notifier
from notify.webhooks import Subscriber
from tests.support.notify import add_notice, add_request, make_notifier, set_preferences
from tests.support.receivers import MailBox, free_port, http_receiver, smtp_server
from tests.support.servers import converter_for_tests
from tests.support.stored_histories import current_test, keep
from tests.support.workflows import make_input
from tests.support.workflows import update as signed_update
from worker.main import build_delivery_worker, build_worker
from worker.schedules import delete_delivery_schedule, delivery_schedule
from workflows.delivery import DeliverNoticesWorkflow

ROOT = Path(__file__).resolve().parents[2]
Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@dataclass(frozen=True)
class Queues:
    approvals: str
    deliveries: str


@asynccontextmanager
async def workers(
    env: WorkflowEnvironment, sessions: Sessions, notifier: Notifier
) -> AsyncIterator[Queues]:
    """The approvals' worker and the deliverer, each on a task queue of its own."""
    queues = Queues(f"notify-{uuid.uuid4()}", f"notify-deliveries-{uuid.uuid4()}")
    async with (
        build_worker(env.client, sessions, queues.approvals, notifier=notifier),
        build_delivery_worker(env.client, sessions, queues.deliveries, notifier=notifier),
    ):
        yield queues


@pytest.fixture
async def queues(
    temporal_local: WorkflowEnvironment, sessions: Sessions, smtp_port: int
) -> AsyncIterator[Queues]:
    async with workers(temporal_local, sessions, make_notifier(smtp_port)) as queues:
        yield queues


async def start_pass(
    env: WorkflowEnvironment, queue: str
) -> WorkflowHandle[Any, DeliverNoticesOutput]:
    return await env.client.start_workflow(
        DELIVERY_WORKFLOW_NAME,
        DeliverNoticesInput(),
        id=f"deliver-test-{uuid.uuid4()}",
        task_queue=queue,
        result_type=DeliverNoticesOutput,
    )


async def finished(handle: WorkflowHandle[Any, DeliverNoticesOutput]) -> DeliverNoticesOutput:
    """The pass's result, once its history replays on the current code (and is kept, when
    recording: `make record-histories`, one per shape)."""
    out = await handle.result()
    history = await handle.fetch_history()
    await Replayer(
        workflows=[DeliverNoticesWorkflow], data_converter=converter_for_tests()
    ).replay_workflow(history)
    keep(history, current_test())
    return out


async def a_pass(env: WorkflowEnvironment, queue: str) -> DeliverNoticesOutput:
    return await finished(await start_pass(env, queue))


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
    temporal_local: WorkflowEnvironment, sessions: Sessions, queues: Queues, smtp_port: int
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
        WORKFLOW_NAME, inp, id=workflow_id(inp.request_id), task_queue=queues.approvals
    )
    try:
        v = await h.execute_update(Updates.READY, result_type=RequestView)
        assert v.current_approvers == ["bcd_zheng"]
        await wait_for_notice(sessions, inp.request_id, "bcd_zheng")

        # The mail server is down: the pass records why, and the approval carries on.
        out = await a_pass(temporal_local, queues.deliveries)
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
            out = await a_pass(temporal_local, queues.deliveries)
            assert out.sent == 2 and out.errored == 0
            assert (await a_pass(temporal_local, queues.deliveries)).sent == 0
        to = sorted(rcpt for _, rcpts in box.envelopes for rcpt in rcpts)
        assert to == ["bcd_zheng@demo.example", "dsd_liu@demo.example"]
        assert all(m["Subject"].startswith("待您审批") for m in box.messages)
    finally:
        await h.terminate("test finished")


async def test_the_worker_deletes_the_delivery_schedule_of_before_once_and_says_so(
    temporal_local: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """An upgrade: the schedule that started a pass every 5 s is deleted at start-up by
    every worker replica (the first deletes it, the others find it gone), and logged."""
    client = temporal_local.client
    schedule_id = f"deliver-test-{uuid.uuid4().hex[:8]}"
    await client.create_schedule(
        schedule_id, delivery_schedule(f"deliveries-{uuid.uuid4()}", timedelta(seconds=5))
    )
    caplog.set_level(logging.INFO, logger="approvals.worker")
    assert await delete_delivery_schedule(client, schedule_id) is True
    assert f"schedule {schedule_id} deleted" in caplog.text
    with pytest.raises(RPCError) as gone:
        await client.get_schedule_handle(schedule_id).describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND

    caplog.clear()
    assert await delete_delivery_schedule(client, schedule_id) is False
    assert f"schedule {schedule_id} is gone already" in caplog.text


async def test_a_pass_started_on_the_approvals_queue_before_the_upgrade_still_finishes(
    temporal_local: WorkflowEnvironment, sessions: Sessions, queues: Queues, smtp_port: int
) -> None:
    rid = await add_request(sessions)
    await add_notice(sessions, rid, "dsd_liu", "overdue")
    box = MailBox()
    async with smtp_server(box, port=smtp_port):
        out = await a_pass(temporal_local, queues.approvals)
    assert (out.planned, out.sent) == (1, 1)
    assert len(box.messages) == 1


def _scheduled(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


async def test_each_channels_deliveries_go_in_one_batch_and_are_all_sent_and_recorded(
    temporal_local: WorkflowEnvironment, sessions: Sessions
) -> None:
    rid = await add_request(sessions)
    for who in ("bcd_zheng", "dsd_liu", "od_peng", "bcd_zheng"):
        await add_notice(sessions, rid, who, "reminder")
    box = MailBox()
    with http_receiver() as recv:
        sub = Subscriber(name="erp", url=recv.url, secret=SECRET)
        async with smtp_server(box) as port:
            notifier = make_notifier(port, subscribers=[sub])
            notifier.concurrency = 3
            async with workers(temporal_local, sessions, notifier) as queues:
                handle = await start_pass(temporal_local, queues.deliveries)
                out = await finished(handle)
    assert (out.planned, out.sent, out.retrying, out.failed, out.errored) == (4, 8, 0, 0, 0)
    assert _scheduled(await handle.fetch_history()) == [
        DeliveryActivityNames.PLAN_AND_CLAIM,
        DeliveryActivityNames.DELIVER_BATCH,
        DeliveryActivityNames.DELIVER_BATCH,
    ]
    rows = await deliveries(sessions)
    assert sorted(r.channel for r in rows) == ["email"] * 4 + ["webhook"] * 4
    assert all((r.status, r.attempts) == ("sent", 1) and r.sent_at for r in rows)
    assert sorted(m["Message-ID"] for m in box.messages) == sorted(
        f"<{r.dedupe_id}@corp.test>" for r in rows if r.channel == "email"
    )
    assert sorted(h.headers["webhook-id"] for h in recv.hits) == sorted(
        r.dedupe_id for r in rows if r.channel == "webhook"
    )


async def test_a_hanging_channel_and_a_failing_one_delay_only_their_own_messages(
    temporal_local: WorkflowEnvironment, sessions: Sessions
) -> None:
    """Webhooks hang, the mail server is down, the WeCom robot answers: its messages are
    recorded sent while the webhook batch still waits, and the pass counts each channel."""
    rid = await add_request(sessions)
    await set_preferences(sessions, "bcd_zheng", channels=["email", "wecom"])
    await add_notice(sessions, rid, "bcd_zheng", "reminder")
    await add_notice(sessions, rid, "bcd_zheng", "escalated")
    with http_receiver() as hook, http_receiver() as robot:
        hook.delay = 8
        notifier = make_notifier(
            free_port(),
            subscribers=[Subscriber(name="erp", url=hook.url, secret=SECRET)],
            robots={"wecom": RobotChannel(RobotConfig("wecom", robot.url))},
            webhook_timeout=5,
        )
        async with workers(temporal_local, sessions, notifier) as queues:
            started = time.monotonic()
            handle = await start_pass(temporal_local, queues.deliveries)
            # The robot's messages are sent, and the mail server's refusal recorded, while
            # the webhooks still hang (their client gives up after 5 s).
            while await _status(sessions, "wecom") != {"sent"} or await _attempts(
                sessions, "email"
            ) != {1}:
                assert time.monotonic() - started < 5, "the other channels waited"
                await asyncio.sleep(0.1)
            assert await _attempts(sessions, "webhook") == {0}, "the webhooks still hang"
            assert len(robot.hits) == 2
            out = await finished(handle)
    assert (out.sent, out.retrying, out.failed, out.errored) == (2, 4, 0, 0)
    rows = await deliveries(sessions)
    assert {(r.channel, r.status, r.attempts) for r in rows} == {
        ("wecom", "sent", 1),
        ("email", "pending", 1),
        ("webhook", "pending", 1),
    }
    assert all(
        "no answer within 5 s" in (r.last_error or "") for r in rows if r.channel == "webhook"
    )


async def _status(sessions: Sessions, channel: str) -> set[str]:
    return {r.status for r in await deliveries(sessions) if r.channel == channel}


async def _attempts(sessions: Sessions, channel: str) -> set[int]:
    return {r.attempts for r in await deliveries(sessions) if r.channel == channel}


async def deliveries(sessions: Sessions) -> list[DeliveryRow]:
    async with sessions() as s:
        return list(await s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))
