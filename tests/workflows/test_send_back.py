"""A send-back by signal under time skipping: the reply timer restarts for the stage sent
back to, the resolve timer runs on (calendar time, as in ``test_timers.py``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals
from domain.policy import Policy
from domain.process import SendBackInput
from tests.support.workflows import (
    SETTLE,
    audit_kinds,
    decide_by_signal,
    notified,
    request_id,
    signal,
    start_contract,
    state,
)

SIGN = "big_customer_dept_sign"


async def test_a_send_back_restarts_the_reply_timer_of_the_stage_sent_back_to_only(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # 350,000: bcd_zheng signs, dsd_liu signs, sd_chen approves; reply 4 h, resolve 3 days.
    h = await start_contract(temporal_ts, ts_queue, policies, 350000)
    await temporal_ts.sleep(timedelta(hours=1))
    await decide_by_signal(temporal_ts, h, "bcd_zheng")
    await temporal_ts.sleep(timedelta(hours=1))
    await decide_by_signal(temporal_ts, h, "dsd_liu")
    await temporal_ts.sleep(timedelta(hours=1))
    before = await state(h)
    assert before.current_approvers == ["sd_chen"]

    back = SendBackInput(actor="sd_chen", to_stage=SIGN, comment="the floor price is wrong")
    await signal(h, Signals.SEND_BACK, back)
    await temporal_ts.sleep(SETTLE)
    v = await state(h)
    assert v.current_approvers == ["bcd_zheng"] and v.stage_index == 0
    assert v.resolve_due == before.resolve_due  # the resolve timer runs on
    reply_due = v.stages[0].reply_due
    assert reply_due is not None and v.stages[0].started_at is not None
    assert reply_due == v.stages[0].started_at + timedelta(hours=4)
    sent = [e for e in v.history if e.kind == "sent_back"]
    assert len(sent) == 1 and sent[0].data["operator"]  # an operator's signed signal

    # sd_chen's own reply deadline (6 h after submission) no longer fires ...
    await temporal_ts.sleep(timedelta(hours=3, minutes=55))
    assert "reminded" not in await audit_kinds(db_sessions, request_id(h))
    # ... bcd_zheng's new one does, 4 h after the send-back.
    await temporal_ts.sleep(timedelta(minutes=10))
    v = await state(h)
    reminded = [e.data for e in v.history if e.kind == "reminded"]
    assert reminded == [{"stage": SIGN, "people": ["bcd_zheng"]}]
    assert await notified(db_sessions, request_id(h), "sent_back") == {"bcd_zheng"}
