"""Only the API or a signed operator command may name an actor; anything else is ignored.

Anyone who can reach Temporal can send a signal or an update naming any user.
These tests send what such a person could (no proof, a forged proof, a proof
for another message or request, a proof used twice) and pin that each is
recorded as ``ignored`` and changes nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from common.signer import vouch
from domain.constants import Signals, Updates
from domain.policy import Policy
from domain.process import DecideInput, MilestoneInput, RequestView
from tests.support.workflows import (
    SETTLE,
    audit_kinds,
    contract_at_first_stage,
    decide_by_signal,
    request_id,
    signal,
    signed,
    start,
    state,
)

from .test_messages import refused

CONTRACT = {"contract_no": "HT-ID", "settlement_floor_price": "1"}
APPROVE = DecideInput(actor="bcd_zheng", action="approve")


async def test_signals_nobody_vouches_for_are_recorded_as_ignored_and_change_nothing(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_ts.client,
        ts_queue,
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        CONTRACT,
    )
    await temporal_ts.sleep(SETTLE)
    rid = request_id(h)
    genuine = signed(h, Signals.DECIDE, APPROVE, by="operator")
    forgeries = [
        APPROVE,  # no proof at all: what the Temporal UI or CLI sends
        vouch(APPROVE, "a-guess-at-the-secret-0123456789abcdef", rid, Updates.DECIDE),
        genuine.model_copy(update={"action": "reject"}),  # the payload altered
        signed(h, Signals.DECIDE, APPROVE, by="operator", rid=str(uuid.uuid4())),  # other request
        signed(h, Signals.WITHDRAW, APPROVE, by="operator"),  # signed for another message
    ]
    for forged in forgeries:
        await h.signal(Signals.DECIDE, forged)
    await temporal_ts.sleep(SETTLE)

    v = await state(h)
    assert v.stage_index == 0 and v.current_approvers == ["bcd_zheng"]
    ignored = [e for e in v.history if e.kind == "ignored"]
    assert [(e.actor, e.data["code"]) for e in ignored] == [("bcd_zheng", "unauthenticated")] * 5
    assert "no proof" in ignored[0].data["reason"]
    assert all("does not match" in e.data["reason"] for e in ignored[1:])
    kinds = await audit_kinds(db_sessions, rid)
    assert kinds.count("ignored") == 5 and "approved" not in kinds

    # The genuine one still works afterwards, and names the operator.
    await h.signal(Signals.DECIDE, genuine)
    await temporal_ts.sleep(SETTLE)
    v = await state(h)
    assert v.stage_index == 1
    approved = next(e for e in v.history if e.kind == "approved")
    assert (approved.actor, approved.data["operator"]) == ("bcd_zheng", "test-operator")


async def test_a_signed_payment_sent_twice_is_counted_once(
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
    await decide_by_signal(temporal_ts, h, "mm_hu")
    await decide_by_signal(temporal_ts, h, "gm_wang")
    assert (await state(h)).status == "awaiting_deposit"
    payment = signed(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(actor="fin_he", milestone="deposit", amount=Decimal(1000), reference="TX"),
        by="operator",
    )
    await h.signal(Signals.RECORD_MILESTONE, payment)
    await h.signal(Signals.RECORD_MILESTONE, payment)  # captured from the history, replayed
    await temporal_ts.sleep(SETTLE)
    v = await state(h)
    assert v.milestones[0].paid == Decimal("1000.00")
    assert v.history[-1].kind == "ignored"
    assert v.history[-1].data["reason"] == "the message's proof was already used"
    # A fresh proof for the same payment is a second payment, as the operator meant.
    await signal(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(actor="fin_he", milestone="deposit", amount=Decimal(500), reference="TX2"),
    )
    await temporal_ts.sleep(SETTLE)
    assert (await state(h)).status == "completed"


async def test_an_update_sent_straight_to_temporal_without_proof_is_refused_and_recorded(
    temporal_local: WorkflowEnvironment, local_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await contract_at_first_stage(temporal_local.client, local_queue, policies)
    code = await refused(h.execute_update(Updates.DECIDE, APPROVE, result_type=RequestView))
    assert code == "unauthenticated"
    v = await state(h)
    assert v.stage_index == 0
    assert v.history[-1].kind == "ignored" and v.history[-1].data["update"] == "DecideInput"
    assert "approved" not in await audit_kinds(db_sessions, request_id(h))
