"""Reconciliation on the real stack: the local Temporal server, a worker, PostgreSQL.

Requests whose workflow was ended outside the process (terminated, timed out,
cancelled) are recorded as terminated; running, finished and already-closed
requests are left alone; the schedule and the CLI run the same pass.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import message_pb2 as common
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.approvals import ApprovalActivities
from activities.reconcile import ReconcileActivities, closed_outside_query, request_id_of
from common.settings import DEV_SIGNING_SECRET
from db.engine import transaction
from db.models import AssignmentRow, EventRow
from db.request_queries import NewRequest, insert_request
from domain.constants import RECONCILE_WORKFLOW_NAME, WORKFLOW_NAME, Updates, workflow_id
from domain.policy import Policy
from domain.process import (
    DecideInput,
    EventKind,
    HistoryEvent,
    RequestView,
    StageStatus,
    TransitionRecord,
)
from domain.reconcile import ReconcileInput, ReconcileOutput
from tests.support.cli import run_cli
from tests.support.servers import converter_for_tests
from tests.support.workflows import (
    contract_at_first_stage,
    make_input,
    request_id,
    request_row,
    update,
)
from worker.schedules import (
    OLD_NOTE,
    RECONCILE_EVERY,
    ensure_reconcile_schedule,
    reconcile_schedule,
)
from workflows.reconcile import ReconcileWorkflow

CONTRACT = {"contract_no": "HT-R", "settlement_floor_price": "1"}


async def reconciled_by_a_pass(
    acts: ReconcileActivities, rid: str, attempts: int = 40
) -> ReconcileOutput:
    """Passes until one records ``rid`` (visibility lags a close a little)."""
    for _ in range(attempts):
        out = await acts.reconcile_closed_requests(ReconcileInput(list_at_most=None))
        if any(r.request_id == rid for r in out.reconciled):
            return out
        await asyncio.sleep(0.25)
    raise AssertionError(f"{rid} was never reconciled")


async def until_closed(h: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus:
    for _ in range(100):
        status = (await h.describe()).status
        if status != WorkflowExecutionStatus.RUNNING:
            assert status is not None
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"{h.id} never closed")


async def history_kinds(sessions: async_sessionmaker[AsyncSession], rid: str) -> list[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(EventRow.kind).where(EventRow.request_id == rid).order_by(EventRow.seq)
        )
        return list(rows)


async def pending_for(sessions: async_sessionmaker[AsyncSession], rid: str) -> set[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(AssignmentRow.user_id).where(
                AssignmentRow.request_id == rid, AssignmentRow.pending.is_(True)
            )
        )
        return set(rows)


def test_the_query_lists_only_approval_workflows_ended_outside_the_process() -> None:
    query = closed_outside_query(datetime(2026, 11, 30, 4, 5, 6, tzinfo=UTC))
    assert query == (
        'WorkflowType="ApprovalWorkflow" AND ExecutionStatus IN '
        '("Terminated", "TimedOut", "Canceled", "Failed") AND CloseTime >= "2026-11-30T04:05:06Z"'
    )
    assert request_id_of(workflow_id("abc")) == "abc"
    assert request_id_of("approvals-reconcile-2026-11-30T04:05:00Z") is None


async def test_running_approved_and_already_closed_requests_are_left_alone(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    running = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    approved = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    for who in ("bcd_zheng", "dsd_liu"):
        await update(approved, Updates.DECIDE, DecideInput(actor=who, action="approve"))
    await approved.result()  # the approval ended the process: Completed, not a candidate
    # Terminated just after its final transition was written: the read-model is right.
    closed = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    view = await closed.query("state", result_type=RequestView)
    await closed.terminate(reason="cleanup after the rejection")
    rejected_at = datetime.now(UTC)
    view.status = "rejected"
    view.closed_at = rejected_at
    view.current_approvers = []
    view.stages[0].status = StageStatus.REJECTED
    await ApprovalActivities(db_sessions, DEV_SIGNING_SECRET).record_transition(
        TransitionRecord(
            view=view.model_copy(update={"history": []}),
            event=HistoryEvent(
                seq=view.history[-1].seq + 1,
                at=rejected_at,
                kind=EventKind.REJECTED,
                actor="bcd_zheng",
            ),
        )
    )
    # And one that this pass must record, so that the pass surely ran over the others.
    marker = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    await marker.terminate(reason="marker")
    before = {
        request_id(h): (
            await history_kinds(db_sessions, request_id(h)),
            await pending_for(db_sessions, request_id(h)),
            (await request_row(db_sessions, request_id(h))).status,
        )
        for h in (running, approved, closed)
    }

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), request_id(marker))

    touched = {r.request_id for r in out.reconciled}
    assert not touched & set(before)
    for rid, (kinds, pending, status) in before.items():
        assert await history_kinds(db_sessions, rid) == kinds
        assert await pending_for(db_sessions, rid) == pending
        assert (await request_row(db_sessions, rid)).status == status
    assert before[request_id(running)][1:] == ({"bcd_zheng"}, "in_review")
    assert before[request_id(approved)][2] == "approved"
    assert before[request_id(closed)][2] == "rejected"
    assert (await request_row(db_sessions, request_id(marker))).status == "terminated"


async def test_a_timed_out_workflow_is_recorded_with_the_system_as_actor(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    inp = make_input(policies["big_customer_contract"], "am_li", Decimal(250000), CONTRACT)
    h = await client.start_workflow(
        WORKFLOW_NAME,
        inp,
        id=workflow_id(inp.request_id),
        task_queue=local_queue,
        execution_timeout=timedelta(seconds=3),
    )
    await h.execute_update(Updates.READY, result_type=RequestView)
    assert await until_closed(h) == WorkflowExecutionStatus.TIMED_OUT

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), inp.request_id)

    mine = next(r for r in out.reconciled if r.request_id == inp.request_id)
    assert (mine.execution_status, mine.actor) == ("TimedOut", "system")
    row = await request_row(db_sessions, inp.request_id)
    assert row.status == "terminated" and row.closed_at == mine.closed_at
    assert await pending_for(db_sessions, inp.request_id) == set()
    assert (await history_kinds(db_sessions, inp.request_id))[-1] == "terminated"


async def test_a_cancelled_workflow_names_who_asked_for_the_cancellation(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    await h.cancel()
    status = await until_closed(h)
    if status != WorkflowExecutionStatus.CANCELED:
        pytest.skip(f"the approval workflow ends a cancellation as {status.name}")

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), request_id(h))

    mine = next(r for r in out.reconciled if r.request_id == request_id(h))
    assert (mine.execution_status, mine.actor) == ("Canceled", client.identity)
    assert (await request_row(db_sessions, request_id(h))).status == "terminated"


async def _intervals(client: Any, schedule_id: str) -> list[timedelta]:
    desc = await client.get_schedule_handle(schedule_id).describe()
    return [i.every for i in desc.schedule.spec.intervals]


async def test_a_schedule_the_worker_made_follows_the_interval_and_an_operators_is_left_alone(
    temporal_local: WorkflowEnvironment, local_queue: str
) -> None:
    """Before issue 19 the worker made the schedule every minute; an upgrade slows it to
    the setting. One whose interval an operator changed, or that an operator paused,
    stays as it is; and a setting changed later is followed by the worker's own."""
    client = temporal_local.client
    ids = {k: f"reconcile-test-{k}-{uuid.uuid4().hex[:8]}" for k in ("old", "changed", "paused")}
    for key, every in (("old", 1), ("changed", 3), ("paused", 1)):
        made = reconcile_schedule(local_queue, timedelta(minutes=every))
        made.state.note = OLD_NOTE
        await client.create_schedule(ids[key], made)
    await client.get_schedule_handle(ids["paused"]).pause(note="paused by an operator")
    try:
        for schedule_id in ids.values():
            assert (
                await ensure_reconcile_schedule(
                    client, local_queue, schedule_id, every=timedelta(minutes=10)
                )
                is False
            )
        assert await _intervals(client, ids["old"]) == [timedelta(minutes=10)]
        assert await _intervals(client, ids["changed"]) == [timedelta(minutes=3)]
        assert await _intervals(client, ids["paused"]) == [timedelta(minutes=1)]

        await ensure_reconcile_schedule(
            client, local_queue, ids["old"], every=timedelta(minutes=20)
        )
        assert await _intervals(client, ids["old"]) == [timedelta(minutes=20)]
    finally:
        for schedule_id in ids.values():
            await client.get_schedule_handle(schedule_id).delete()


async def test_the_schedule_is_created_once_and_its_pass_records_a_terminated_request(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    schedule_id = f"reconcile-test-{uuid.uuid4().hex[:8]}"
    assert await ensure_reconcile_schedule(client, local_queue, schedule_id) is True
    try:
        assert await ensure_reconcile_schedule(client, local_queue, schedule_id) is False
        schedule = client.get_schedule_handle(schedule_id)
        desc = await schedule.describe()
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == (RECONCILE_WORKFLOW_NAME, local_queue)
        assert [i.every for i in desc.schedule.spec.intervals] == [RECONCILE_EVERY]
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
        await h.terminate(reason="ended in the UI")
        rid = request_id(h)
        for _ in range(20):  # each triggered pass is a workflow run on the test's worker
            await schedule.trigger()
            for _ in range(50):
                recent = (await schedule.describe()).info.recent_actions
                if recent:
                    break
                await asyncio.sleep(0.1)
            started = recent[-1].action
            assert isinstance(started, ScheduleActionExecutionStartWorkflow)
            run = client.get_workflow_handle(
                started.workflow_id,
                run_id=started.first_execution_run_id,
                result_type=ReconcileOutput,
            )
            result = await run.result()
            assert result.recorded >= len(result.reconciled)
            # The pass's own history replays deterministically (as the approval's do).
            await Replayer(
                workflows=[ReconcileWorkflow], data_converter=converter_for_tests()
            ).replay_workflow(await run.fetch_history())
            # The schedule's pass names at most 100; other tests' leftovers may come first.
            if (await request_row(db_sessions, rid)).status == "terminated":
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the scheduled pass never recorded the terminated request")
        assert (await request_row(db_sessions, rid)).status == "terminated"
    finally:
        await client.get_schedule_handle(schedule_id).delete()


async def test_the_reconcile_command_prints_what_it_recorded(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
    pg_url: str,
) -> None:
    client = temporal_local.client
    h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    await h.terminate(reason="duplicate request")
    rid = request_id(h)
    env = {
        "DATABASE_URL": pg_url,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
    }
    for _ in range(20):
        result = await asyncio.to_thread(run_cli, "reconcile", env=env)
        assert result.returncode == 0, result.stderr
        if rid in result.stdout:
            break
        await asyncio.sleep(0.25)
    line = next(line for line in result.stdout.splitlines() if line.startswith(rid))
    assert "terminated" in line and "Terminated by" in line and "duplicate request" in line
    assert "request(s) recorded as terminated" in result.stdout.splitlines()[-1]
    assert (await request_row(db_sessions, rid)).status == "terminated"

    again = await asyncio.to_thread(run_cli, "reconcile", env=env)

    assert again.returncode == 0, again.stderr
    assert rid not in again.stdout


async def test_a_reset_workflow_lives_on_in_its_new_run_and_is_left_alone(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    old_run = (await h.describe()).run_id
    first_task = next(
        e.event_id
        for e in (await h.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    # A reset terminates the current run and carries on in a new one.
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=common.WorkflowExecution(workflow_id=h.id, run_id=old_run),
            reason="operator reset",
            workflow_task_finish_event_id=first_task,
            request_id=str(uuid.uuid4()),
        )
    )
    old = client.get_workflow_handle(h.id, run_id=old_run)
    assert await until_closed(old) == WorkflowExecutionStatus.TERMINATED
    assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING
    marker = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    await marker.terminate(reason="marker")
    rid = request_id(h)
    kinds = await history_kinds(db_sessions, rid)

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), request_id(marker))

    assert rid not in {r.request_id for r in out.reconciled}
    assert (await request_row(db_sessions, rid)).status == "in_review"
    assert await history_kinds(db_sessions, rid) == kinds


async def test_a_request_terminated_before_its_workflow_ever_ran_is_recorded_from_its_row(
    temporal_local: WorkflowEnvironment,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
) -> None:
    """The API wrote the ``submitted`` row and started the workflow; no worker ever took it."""
    client = temporal_local.client
    inp = make_input(policies["big_customer_contract"], "am_li", Decimal(250000), CONTRACT)
    async with transaction(db_sessions) as session:
        await insert_request(
            session,
            NewRequest(
                id=inp.request_id,
                type=inp.policy.type,
                title=inp.title,
                requester=inp.requester,
                customer=inp.customer,
                amount=inp.amount,
                fields=inp.fields,
                comment=None,
                policy_type=inp.policy.type,
                policy_version=inp.policy.version,
                route=inp.route.model_dump(mode="json"),
                idempotency_key=None,
                body_hash="-",
            ),
        )
    h = await client.start_workflow(
        WORKFLOW_NAME,
        inp,
        id=workflow_id(inp.request_id),
        task_queue=f"nobody-polls-{uuid.uuid4()}",
    )
    await h.terminate(reason="started by mistake")

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), inp.request_id)

    mine = next(r for r in out.reconciled if r.request_id == inp.request_id)
    assert mine.seq == 1
    row = await request_row(db_sessions, inp.request_id)
    assert (row.status, row.last_seq, row.view) == ("terminated", 1, None)
    assert row.closed_at == mine.closed_at
    assert await history_kinds(db_sessions, inp.request_id) == ["terminated"]


async def test_a_workflow_terminated_with_the_temporal_cli_names_the_cli_user(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What an operator does at a terminal: ``temporal workflow terminate --reason ...``."""
    client = temporal_local.client
    h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent)) or "temporal"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            temporal,
            "workflow",
            "terminate",
            "--address",
            client.service_client.config.target_host,
            "--workflow-id",
            h.id,
            "--reason",
            "duplicate of another contract",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rid = request_id(h)

    out = await reconciled_by_a_pass(ReconcileActivities(db_sessions, client), rid)

    mine = next(r for r in out.reconciled if r.request_id == rid)
    assert mine.actor.startswith("temporal-cli:")
    async with db_sessions() as s:
        event = (
            await s.scalars(
                select(EventRow).where(EventRow.request_id == rid).order_by(EventRow.seq.desc())
            )
        ).first()
    assert event is not None
    assert (event.kind, event.actor, event.comment) == (
        "terminated",
        mine.actor,
        "duplicate of another contract",
    )
    assert event.data["identity"] == mine.actor
    assert event.data["execution_status"] == "Terminated"


async def test_a_pass_counts_every_request_but_names_only_as_many_as_asked(
    temporal_local: WorkflowEnvironment,
    local_queue: str,
    policies: dict[str, Policy],
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = temporal_local.client
    h = await contract_at_first_stage(client, local_queue, policies, "HT-R")
    await h.terminate(reason="batch terminate")
    acts = ReconcileActivities(db_sessions, client)
    recorded = 0
    for _ in range(40):
        out = await acts.reconcile_closed_requests(ReconcileInput(list_at_most=0))
        assert out.reconciled == []
        recorded += out.recorded
        if (await request_row(db_sessions, request_id(h))).status == "terminated":
            break
        await asyncio.sleep(0.25)
    assert recorded >= 1
    assert (await request_row(db_sessions, request_id(h))).status == "terminated"
