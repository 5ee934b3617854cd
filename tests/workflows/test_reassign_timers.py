"""An administrator's reassignment and the requester's urge (催办) under the workflow's
timers (time-skipping server): the new holder gets the stage's reply timer afresh and
is the one reminded and escalated from; an urge tells the holder at once, and a second
one within the interval is recorded as ignored."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals
from domain.policy import Policy
from domain.process import ReassignInput, UrgeInput
from tests.support.workflows import SETTLE, notified, request_id, signal, start_contract, state


async def test_a_reassigned_step_times_out_from_the_reassignment_for_the_new_holder(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # 250,000: bcd_zheng signs first (4-hour reply timer, calendar time here).
    h = await start_contract(temporal_ts, ts_queue, policies, 250000)
    await temporal_ts.sleep(timedelta(hours=3))
    move = ReassignInput(
        actor="admin", from_user="bcd_zheng", to_user="price_lin", comment="on sick leave"
    )
    await signal(h, Signals.REASSIGN, move)
    await signal(h, Signals.URGE, UrgeInput(actor="am_li", comment="signing Friday"))
    await signal(h, Signals.URGE, UrgeInput(actor="am_li"))
    await temporal_ts.sleep(SETTLE)
    v = await state(h)
    assert v.current_approvers == ["price_lin"]
    stage = v.stages[0]
    assert stage.reply_due is not None and stage.started_at is not None
    # 4 hours from the reassignment, not from the stage's start.
    assert stage.reply_due - stage.started_at >= timedelta(hours=7)
    assert v.urges == 1
    ignored = [e.data for e in v.history if e.kind == "ignored"]
    assert [d["code"] for d in ignored] == ["too_soon"]
    rid = request_id(h)
    assert await notified(db_sessions, rid, "reassigned_to") == {"price_lin"}
    assert await notified(db_sessions, rid, "reassigned_away") == {"bcd_zheng"}
    assert await notified(db_sessions, rid, "urged") == {"price_lin"}

    await temporal_ts.sleep(timedelta(hours=4, minutes=1))
    v = await state(h)
    reminded = [e.data["people"] for e in v.history if e.kind == "reminded"]
    assert reminded == [["price_lin"]]
    escalated = [e.data["to"] for e in v.history if e.kind == "escalated"]
    assert escalated == [["dgm_zhao"]]  # price_lin's manager, not bcd_zheng's
