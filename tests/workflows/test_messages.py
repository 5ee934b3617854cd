"""Updates, signals and their validators: who may do what, when."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from db.models import AssignmentRow
from domain.constants import Signals, Updates
from domain.policy import Policy
from domain.process import (
    DecideInput,
    MilestoneInput,
    RequestView,
    TransferInput,
    WithdrawInput,
)
from tests.support.servers import converter_for_tests
from tests.support.workflows import (
    audit_kinds,
    contract_at_first_stage,
    eventually,
    request_id,
    request_row,
    signal,
    start,
    state,
    update,
)
from workflows.approval import ApprovalWorkflow

CONTRACT = {"contract_no": "HT-2", "settlement_floor_price": "1"}


async def decide(h, actor: str, action: str = "approve") -> RequestView:
    return await update(
        h, Updates.DECIDE, DecideInput(actor=actor, action=action), result_type=RequestView
    )


async def refused(coro) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await coro
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.type or ""


async def test_update_answers_with_the_next_stage_already_assigned_and_persisted(
    temporal_local: WorkflowEnvironment, either_queue: str, policies: dict[str, Policy], db_sessions
):
    """In the sandbox (the tests' worker) and outside it (the production worker)."""
    h = await start(
        temporal_local.client,
        either_queue,
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        CONTRACT,
    )
    first = await h.execute_update(Updates.READY, result_type=RequestView)
    assert first.current_approvers == ["bcd_zheng"]
    v = await decide(h, "bcd_zheng")
    assert v.stage_index == 1 and v.current_approvers == ["dsd_liu"]
    row = await request_row(db_sessions, request_id(h))
    assert row.status == "in_review" and row.current_approvers == ["dsd_liu"]
    v = await decide(h, "dsd_liu")
    assert v.status == "approved"
    assert await audit_kinds(db_sessions, request_id(h)) == [
        "submitted",
        "assigned",
        "approved",
        "stage_completed",
        "assigned",
        "approved",
        "stage_completed",
        "request_approved",
    ]
    assert (await request_row(db_sessions, request_id(h))).status == "approved"


async def test_a_decision_is_one_workflow_task_with_no_activity_task_on_the_server(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    """Look-ups, the proof check and the write all run in the worker (local activities)."""
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies)
    before = [e async for e in h.fetch_history_events()]
    v = await decide(h, "bcd_zheng")
    assert v.current_approvers == ["dsd_liu"]
    events = [e async for e in h.fetch_history_events()]
    assert not any(e.HasField("activity_task_scheduled_event_attributes") for e in events)
    added = events[len(before) :]
    assert sum(e.HasField("workflow_task_completed_event_attributes") for e in added) == 1
    written = [
        e
        for e in added
        if e.HasField("marker_recorded_event_attributes")
        and b"record_transitions" in e.SerializeToString()
    ]
    assert len(written) == 1  # approved, stage completed, assigned: one write
    row = await request_row(db_sessions, request_id(h))
    assert row.current_approvers == ["dsd_liu"]


async def test_validators_refuse_who_may_not_decide_and_decisions_on_closed_requests(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_local.client,
        local_queue,
        policies["big_customer_contract"],
        "om_wu",
        Decimal(50000),
        CONTRACT,
    )
    v = await h.execute_update(Updates.READY, result_type=RequestView)
    # The requester is an office manager too, but never approves their own request.
    assert v.current_approvers == ["om_yang"]
    assert await refused(decide(h, "om_wu")) == "not_eligible"
    assert await refused(decide(h, "sd_chen")) == "not_eligible"
    assert (
        await refused(
            update(h, Updates.WITHDRAW, WithdrawInput(actor="om_yang"), result_type=RequestView)
        )
        == "forbidden"
    )
    assert (
        await refused(
            update(
                h,
                Updates.RECORD_MILESTONE,
                MilestoneInput(actor="om_wu", milestone="deposit", amount=Decimal(1)),
                result_type=RequestView,
            )
        )
        == "invalid_state"
    )
    await decide(h, "om_yang", "reject")
    # The workflow has ended: Temporal itself refuses further updates.
    with pytest.raises(RPCError, match="already completed"):
        await decide(h, "om_yang")
    kinds = await audit_kinds(db_sessions, request_id(h))
    assert kinds == ["submitted", "assigned", "rejected"]  # refusals write nothing


async def test_countersign_needs_all_three_managers_and_no_one_twice(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_local.client,
        local_queue,
        policies["retail_bulk_discount"],
        "am_li",
        Decimal(20000),
        {"gross_margin_pct": "9.5"},
    )
    await h.execute_update(Updates.READY, result_type=RequestView)
    v = await decide(h, "mm_hu")  # merchant manager's margin check
    assert v.stages[1].key == "managers_countersign"
    assert v.current_approvers == ["mm_hu", "opm_guo", "pm_luo"]
    v = await decide(h, "opm_guo")
    assert v.status == "in_review" and v.current_approvers == ["mm_hu", "pm_luo"]
    assert await refused(decide(h, "opm_guo")) == "already_decided"
    v = await decide(h, "mm_hu")
    assert v.status == "in_review" and v.current_approvers == ["pm_luo"]
    v = await decide(h, "pm_luo")
    assert v.status == "awaiting_deposit"
    assert [s.decided_by for s in v.stages[1].slots] == ["opm_guo", "pm_luo", "mm_hu"]


async def test_transfer_hands_the_step_over_and_withdraw_closes(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_local.client,
        local_queue,
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        CONTRACT,
    )
    await h.execute_update(Updates.READY, result_type=RequestView)
    assert (
        await refused(
            update(
                h,
                Updates.TRANSFER,
                TransferInput(actor="bcd_zheng", to_user="am_li"),
                result_type=RequestView,
            )
        )
        == "validation_error"
    )
    v = await update(
        h,
        Updates.TRANSFER,
        TransferInput(actor="bcd_zheng", to_user="sh_zhou", comment="on leave"),
        result_type=RequestView,
    )
    assert v.current_approvers == ["sh_zhou"]
    actor = v.stages[0].slots[0].actors[0]
    assert (actor.via, actor.on_behalf_of) == ("transfer", "bcd_zheng")
    assert await refused(decide(h, "bcd_zheng")) == "not_eligible"
    async with db_sessions() as s:
        rows = await s.scalars(
            select(AssignmentRow).where(AssignmentRow.request_id == request_id(h))
        )
        pending = {r.user_id: r.pending for r in rows}
    # The giver keeps a row ("ever assigned": visibility, reports), no longer pending.
    assert pending == {"bcd_zheng": False, "sh_zhou": True}
    v = await update(
        h,
        Updates.WITHDRAW,
        WithdrawInput(actor="am_li", comment="customer cancelled"),
        result_type=RequestView,
    )
    assert v.status == "withdrawn"
    assert (await audit_kinds(db_sessions, request_id(h)))[-2:] == ["transferred", "withdrawn"]


async def test_invalid_signal_is_recorded_and_ignored_then_replay_is_deterministic(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_ts.client,
        ts_queue,
        policies["retail_bulk_discount"],
        "am_li",
        Decimal(5000),
        {"gross_margin_pct": "3"},
    )
    await signal(h, Signals.DECIDE, DecideInput(actor="intruder", action="approve"))
    await signal(h, Signals.DECIDE, DecideInput(actor="mm_hu", action="approve"))
    await signal(h, Signals.DECIDE, DecideInput(actor="mm_hu", action="approve"))  # twice
    await temporal_ts.sleep(timedelta(hours=5))  # a reply timeout at the GM stage
    await signal(h, Signals.DECIDE, DecideInput(actor="gm_wang", action="approve"))
    await signal(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(actor="am_li", milestone="deposit", amount=Decimal("1500"), reference="TX"),
    )
    await temporal_ts.sleep(timedelta(seconds=1))
    v = await state(h)
    assert v.status == "completed"
    ignored = [e for e in v.history if e.kind == "ignored"]
    assert [(e.actor, e.data["code"]) for e in ignored] == [
        ("intruder", "not_eligible"),
        ("mm_hu", "not_eligible"),
    ]
    history = await h.fetch_history()
    await Replayer(
        workflows=[ApprovalWorkflow], data_converter=converter_for_tests()
    ).replay_workflow(history)


async def test_a_signal_that_cannot_be_read_is_recorded_as_ignored_and_changes_nothing(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    """The SDK would drop it with a log line; the audit trail names it and what was wrong,
    never the sent values (they may be anything), and the request goes on as before."""
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies)
    before = await state(h)
    await h.signal(Signals.DECIDE, {"actor": "bcd_zheng\x00", "action": "approve"})
    await h.signal(Signals.RECORD_MILESTONE, {"milestone": "deposit", "amount": "lots", "k\x00": 1})

    async def both_recorded() -> bool:
        return (await audit_kinds(db_sessions, request_id(h))).count("ignored") == 2

    await eventually(both_recorded, seconds=20)
    v = await state(h)
    assert (v.status, v.stage_index, v.current_approvers) == (
        before.status,
        before.stage_index,
        before.current_approvers,
    )
    unread = [e for e in v.history if e.kind == "ignored"]
    assert [(e.actor, e.data["signal"], e.data["code"]) for e in unread] == [
        ("(unreadable)", Signals.DECIDE, "validation_error"),
        ("(unreadable)", Signals.RECORD_MILESTONE, "validation_error"),
    ]
    assert unread[0].data["reason"].startswith("actor: ")
    assert "\x00" not in unread[1].data["reason"] and "lots" not in unread[1].data["reason"]
    assert unread[1].data["reason"].split("; ") == ["actor: missing", "amount: invalid_input"]
    # Still decidable as ever.
    v = await decide(h, "bcd_zheng")
    assert v.stage_index == 1


async def test_a_decision_for_an_ended_round_is_refused_and_one_for_the_current_round_signed(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    """The round a decision names goes over the wire and under the proof: the workflow
    refuses it when the step is of another round, and takes it when it is the step's."""
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies, "HT-R1")
    v = await h.execute_update(Updates.READY, result_type=RequestView)
    [since] = {a.since for s in v.stages[0].slots for a in s.actors if a.user == "bcd_zheng"}
    before = await audit_kinds(db_sessions, request_id(h))
    stale = DecideInput(
        actor="bcd_zheng", action="approve", round_since=since - timedelta(microseconds=1)
    )
    assert await refused(update(h, Updates.DECIDE, stale)) == "round_ended"
    assert await audit_kinds(db_sessions, request_id(h)) == before
    current = DecideInput(actor="bcd_zheng", action="approve", round_since=since)
    v = await update(h, Updates.DECIDE, current)
    assert v.current_approvers == ["dsd_liu"]
