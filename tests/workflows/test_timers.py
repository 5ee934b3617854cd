"""Every timer path, under time skipping: reply, resolve, resubmit, milestone reminder/lapse.

The reply, resolve and resubmit tests run the contract policy in calendar time
(:func:`in_calendar_time`): what they pin is the machinery, at instants that do not
depend on the weekday; working-time deadlines are pinned in ``test_working_time.py``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals
from domain.policy import Policy, ResolveAction
from domain.process import DecideInput, EventKind, MilestoneInput, ResubmitInput
from tests.support.workflows import (
    CONTRACT_FIELDS,
    audit_kinds,
    decide_by_signal,
    in_calendar_time,
    notified,
    pay_by_signal,
    request_id,
    request_row,
    signal,
    start,
    start_contract,
    state,
)


async def test_reply_timeout_reminds_and_escalates_up_the_chain_until_the_top(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # 50,000 is the office-manager tier: om_wu and om_yang; chain sh_zhou, dsd_liu, sd_chen, gm_wang
    h = await start_contract(temporal_ts, ts_queue, policies, 50000)
    await temporal_ts.sleep(timedelta(hours=3, minutes=59))
    v = await state(h)
    assert v.current_approvers == ["om_wu", "om_yang"]
    assert "reminded" not in [e.kind for e in v.history]

    await temporal_ts.sleep(timedelta(minutes=2))  # 4 h passed
    v = await state(h)
    assert v.current_approvers == ["om_wu", "om_yang", "sh_zhou"]
    escalated = [e.data["to"] for e in v.history if e.kind == "escalated"]
    assert escalated == [["sh_zhou"]]

    await temporal_ts.sleep(timedelta(hours=4 * 4))  # four more reply periods
    v = await state(h)
    escalated = [e.data["to"] for e in v.history if e.kind == "escalated"]
    assert escalated == [["sh_zhou"], ["dsd_liu"], ["sd_chen"], ["gm_wang"]]  # never past the top
    assert v.stages[0].reply_due is None  # nobody further up: the reply timer stops
    assert "gm_wang" in v.current_approvers
    rid = request_id(h)
    assert await notified(db_sessions, rid, "reminder") >= {"om_wu", "om_yang", "sh_zhou"}
    assert await notified(db_sessions, rid, "escalated") == {
        "sh_zhou",
        "dsd_liu",
        "sd_chen",
        "gm_wang",
    }

    # An escalated manager may now decide the stage.
    await decide_by_signal(temporal_ts, h, "gm_wang")
    v = await state(h)
    assert v.stage_index == 1
    assert v.stages[0].slots[0].decided_by == "gm_wang"


async def test_a_decision_just_before_the_reply_deadline_is_not_escalated(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start_contract(temporal_ts, ts_queue, policies, 50000)
    await temporal_ts.sleep(timedelta(hours=3, minutes=59, seconds=59))
    await signal(h, Signals.DECIDE, DecideInput(actor="om_yang", action="approve"))
    await temporal_ts.sleep(timedelta(hours=1))
    v = await state(h)
    kinds = [e.kind for e in v.history]
    assert "reminded" not in kinds and "escalated" not in kinds
    assert v.stage_index == 1 and v.current_approvers == ["bcd_zheng"]
    # The new stage has its own, fresh reply timer.
    assert v.stages[1].reply_due is not None
    assert v.stages[1].started_at is not None
    assert v.stages[1].reply_due - v.stages[1].started_at == timedelta(hours=4)


async def test_resolve_timeout_marks_overdue_notifies_top_and_escalates(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_ts.client,
        ts_queue,
        in_calendar_time(policies["big_customer_contract"]),
        "am_sun",
        Decimal(250000),
        CONTRACT_FIELDS,
    )
    await temporal_ts.sleep(timedelta(days=2, hours=23))
    assert not (await state(h)).overdue
    await temporal_ts.sleep(timedelta(hours=2))
    v = await state(h)
    assert v.overdue and v.status == "in_review"
    overdue = [e for e in v.history if e.kind == "overdue"]
    assert len(overdue) == 1
    assert overdue[0].data["top_authority"] == ["dsd_liu"]  # last stage of the 250k route
    rid = request_id(h)
    row = await request_row(db_sessions, rid)
    assert row.overdue is True
    assert await notified(db_sessions, rid, "overdue") == {"am_sun", "dsd_liu"}
    # The request stays decidable and is not overdue twice.
    await temporal_ts.sleep(timedelta(days=3))
    assert len([e for e in (await state(h)).history if e.kind == "overdue"]) == 1


async def test_resolve_timeout_with_auto_reject_rejects(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    base = in_calendar_time(policies["big_customer_contract"])
    policy = base.model_copy(
        update={
            "timers": base.timers.model_copy(update={"resolve_action": ResolveAction.AUTO_REJECT})
        }
    )
    h = await start(temporal_ts.client, ts_queue, policy, "am_li", Decimal(50000), CONTRACT_FIELDS)
    await temporal_ts.sleep(timedelta(days=3, minutes=1))
    v = await state(h)
    assert v.status == "rejected"
    rejected = [e for e in v.history if e.kind == "rejected"]
    assert rejected[0].actor == "system" and rejected[0].data["automatic"] is True
    assert (await request_row(db_sessions, request_id(h))).status == "rejected"
    assert await h.result()  # the workflow ended


async def test_returned_request_expires_when_not_resubmitted(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start_contract(temporal_ts, ts_queue, policies, 50000)
    await signal(
        h, Signals.DECIDE, DecideInput(actor="om_wu", action="return", comment="more docs")
    )
    await temporal_ts.sleep(timedelta(days=6))
    v = await state(h)
    assert v.status == "returned"
    assert "reminded" not in [e.kind for e in v.history]  # no reply timer while returned
    await temporal_ts.sleep(timedelta(days=1, minutes=1))
    v = await state(h)
    assert v.status == "expired"
    assert await audit_kinds(db_sessions, request_id(h)) == [
        "submitted",
        "assigned",
        "returned",
        "expired",
    ]


async def test_resubmit_with_a_new_amount_takes_the_new_route(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start_contract(temporal_ts, ts_queue, policies, 50000)
    await signal(h, Signals.DECIDE, DecideInput(actor="om_wu", action="return"))
    await signal(h, Signals.RESUBMIT, ResubmitInput(actor="am_li", amount=Decimal("300000.01")))
    await temporal_ts.sleep(timedelta(seconds=1))
    v = await state(h)
    assert v.status == "in_review" and v.amount == Decimal("300000.01")
    assert [s.key for s in v.stages] == [
        "big_customer_dept_sign",
        "deputy_sales_director_sign",
        "sales_director_approve",
    ]
    assert v.current_approvers == ["bcd_zheng"]
    assert v.resolve_due is not None


async def test_deposit_partial_payments_accumulate_reminder_then_complete(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # margin 12 % > 10: the merchant manager alone; deposit 30 % of 10,000 = 3,000
    h = await start(
        temporal_ts.client,
        ts_queue,
        policies["retail_bulk_discount"],
        "am_li",
        Decimal(10000),
        {"gross_margin_pct": "12"},
    )
    await decide_by_signal(temporal_ts, h, "mm_hu")
    v = await state(h)
    assert v.status == "awaiting_deposit"
    assert v.milestones[0].required == Decimal("3000.00")
    await signal(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(
            actor="am_li", milestone="deposit", amount=Decimal("1000"), reference="TX-1"
        ),
    )
    await temporal_ts.sleep(timedelta(days=6, hours=1))  # past the day-before reminder
    v = await state(h)
    assert v.status == "awaiting_deposit" and v.milestones[0].paid == Decimal("1000.00")
    assert [e.kind for e in v.history].count(EventKind.MILESTONE_REMINDED) == 1
    await pay_by_signal(temporal_ts, h, "deposit", "2000", actor="fin_he", reference="TX-2")
    v = await state(h)
    assert v.status == "completed"
    assert v.milestones[0].paid == Decimal("3000.00") and v.milestones[0].status == "met"
    assert (await audit_kinds(db_sessions, request_id(h)))[-5:] == [
        "milestone",
        "milestone_reminded",
        "milestone",
        "milestone_met",
        "completed",
    ]


async def test_deposit_not_paid_in_seven_days_lapses_the_approval(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    h = await start(
        temporal_ts.client,
        ts_queue,
        policies["retail_bulk_discount"],
        "am_li",
        Decimal(10000),
        {"gross_margin_pct": "12", "fresh_food": True},
    )
    await decide_by_signal(temporal_ts, h, "mm_hu")
    assert (await state(h)).milestones[0].required == Decimal("5000.00")  # fresh food: 50 %
    await temporal_ts.sleep(timedelta(days=6, hours=23))
    assert (await state(h)).status == "awaiting_deposit"
    await temporal_ts.sleep(timedelta(hours=2))
    v = await state(h)
    assert v.status == "lapsed" and v.milestones[0].status == "lapsed"
    row = await request_row(db_sessions, request_id(h))
    assert row.status == "lapsed" and row.closed_at is not None
    assert await notified(db_sessions, request_id(h), "lapsed") == {"am_li"}


async def test_real_estate_chain_each_deadline_counts_from_the_previous_milestone(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    # Below the floor: the value-loss approval comes first, then the price approvals.
    h = await start(
        temporal_ts.client,
        ts_queue,
        policies["real_estate_group_purchase"],
        "am_li",
        Decimal(12_000_000),
        {
            "units": 12,
            "project": "Lakeside",
            "batch": "B2",
            "employer": "ACME",
            "below_floor": True,
        },
    )
    await temporal_ts.sleep(timedelta(seconds=1))
    assert [s.key for s in (await state(h)).stages] == [
        "value_loss_approval",
        "sales_manager_review",
        "price_approval",
    ]
    for approver in ("gm_wang", "sh_zhou", "sd_chen"):
        await signal(h, Signals.DECIDE, DecideInput(actor=approver, action="approve"))
    await temporal_ts.sleep(timedelta(days=6))  # deposit on day 6 of 7
    await signal(
        h,
        Signals.RECORD_MILESTONE,
        MilestoneInput(
            actor="am_li", milestone="deposit", amount=Decimal("600000"), reference="DEP"
        ),
    )
    await temporal_ts.sleep(timedelta(days=6, hours=23))  # 13 days after approval
    v = await state(h)
    # The down payment's 7 days run from the subscription, not from the approval.
    assert v.status == "awaiting_down_payment"
    assert v.milestones[1].required == Decimal("3000000.00")
    await temporal_ts.sleep(timedelta(hours=2))
    v = await state(h)
    assert v.status == "lapsed"
    assert [m.status for m in v.milestones] == ["met", "lapsed", "pending"]
    assert (await audit_kinds(db_sessions, request_id(h)))[-1] == "lapsed"
