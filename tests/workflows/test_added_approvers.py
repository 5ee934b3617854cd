"""Approvers added to a stage (加签) under the workflow's timers (time-skipping server):
those added get the stage's reply timer afresh, are reminded and escalated; the adder
held for them is neither, and has their step back once they approved."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals
from domain.policy import Policy
from domain.process import AddApproversInput, CcInput
from tests.support.workflows import (
    SETTLE,
    decide_by_signal,
    notified,
    request_id,
    signal,
    start_contract,
    state,
)


async def test_people_added_before_the_adder_are_reminded_and_escalated_not_the_adder(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # 250,000: bcd_zheng signs first (4-hour reply timer, calendar time here).
    h = await start_contract(temporal_ts, ts_queue, policies, 250000)
    await temporal_ts.sleep(timedelta(hours=3))
    add = AddApproversInput.model_validate(
        {"actor": "bcd_zheng", "people": ["price_lin"], "position": "before", "comment": "price"}
    )
    await signal(h, Signals.ADD_APPROVERS, add)
    await signal(h, Signals.ADD_CC, CcInput(actor="am_li", people=["fin_he"]))
    await temporal_ts.sleep(SETTLE)
    v = await state(h)
    assert v.current_approvers == ["price_lin"]
    assert v.cc == ["fin_he"]
    stage = v.stages[0]
    assert stage.reply_due is not None
    # The timer starts afresh for those added: 4 hours from the addition, not from the stage.
    assert stage.started_at is not None
    assert stage.reply_due - stage.started_at >= timedelta(hours=7)

    await temporal_ts.sleep(timedelta(hours=4, minutes=1))
    v = await state(h)
    reminded = [e.data["people"] for e in v.history if e.kind == "reminded"]
    assert reminded == [["price_lin"]]  # the held adder is not reminded
    escalated = [e.data["to"] for e in v.history if e.kind == "escalated"]
    assert escalated == [["dgm_zhao"]]  # price_lin's manager, not bcd_zheng's
    rid = request_id(h)
    assert await notified(db_sessions, rid, "approver_added") == {"price_lin"}
    assert await notified(db_sessions, rid, "cc_added") == {"fin_he"}

    await decide_by_signal(temporal_ts, h, "dgm_zhao")
    v = await state(h)
    assert v.current_approvers == ["bcd_zheng"]  # back to the adder
    await decide_by_signal(temporal_ts, h, "bcd_zheng")
    v = await state(h)
    assert v.stage_index == 1 and v.current_approvers == ["dsd_liu"]
