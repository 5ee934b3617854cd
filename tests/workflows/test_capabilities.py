"""Engine capabilities the request types need, each on a small policy built here.

Within own authority, CC, conditional milestones and amounts from a field, payout
windows, periodic re-evaluation (continue-as-new per cycle) and the receivable
ladder, all under time skipping with the real activities and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from db.models import PayoutRow
from domain.calendar import next_payout_window
from domain.constants import Signals
from domain.policy import Policy
from domain.process import DecideInput, WithdrawInput
from tests.support.workflows import (
    SETTLE,
    audit_kinds,
    decide_by_signal,
    notified,
    pay_by_signal,
    request_id,
    request_row,
    signal,
    start,
    state,
)


def policy(**extra: Any) -> Policy:
    base: dict[str, Any] = {
        "type": "capability_test",
        "version": 1,
        "title": "Capability test",
        "fields": [
            {"name": "rate", "type": "decimal", "required": False},
            {"name": "custom", "type": "boolean", "required": False},
            {"name": "invoice_total", "type": "decimal", "required": False},
            {"name": "due_date", "type": "date", "required": False},
        ],
        "stages": [
            {
                "key": "director",
                "name": "Customer director decides",
                "when": {"field": "rate", "op": "gt", "value": 5},
                "approvers": [{"role": "customer_director"}],
            }
        ],
    }
    base.update(extra)
    return Policy.model_validate(base)


async def test_within_own_authority_is_approved_at_once_and_recorded(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    h = await start(temporal_ts.client, ts_queue, policy(), "am_li", Decimal(100), {"rate": "5"})
    await h.result()
    v = await state(h)
    assert v.status == "approved" and v.stages == []
    approved = next(e for e in v.history if e.kind == "request_approved")
    assert approved.data == {"within_authority": True}
    assert await audit_kinds(db_sessions, request_id(h)) == ["submitted", "request_approved"]


async def test_cc_is_told_at_submission_and_of_the_outcome_but_decides_nothing(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    p = policy(
        cc=[
            {"who": {"role": "customer_support_supervisor"}},
            {
                "who": {"role": "customer_management_dept"},
                "when": {"field": "custom", "op": "eq", "value": True},
            },
        ]
    )
    h = await start(temporal_ts.client, ts_queue, p, "am_li", Decimal(100), {"rate": "7"})
    await temporal_ts.sleep(timedelta(seconds=1))
    v = await state(h)
    assert v.cc == ["css_ma"]  # the conditional CC does not apply
    assert v.current_approvers == ["cd_xu"]
    await signal(h, Signals.DECIDE, DecideInput(actor="css_ma", action="approve"))
    await decide_by_signal(temporal_ts, h, "cd_xu")
    v = await state(h)
    assert v.status == "approved"
    assert [e.data.get("code") for e in v.history if e.kind == "ignored"] == ["not_eligible"]
    rid = request_id(h)
    assert await notified(db_sessions, rid, "cc_submitted") == {"css_ma"}
    assert await notified(db_sessions, rid, "cc_outcome") == {"css_ma"}


async def test_conditional_milestone_and_amount_from_a_field(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    p = policy(
        milestones=[
            {
                "name": "deposit",
                "title": "Deposit",
                "due": "P7D",
                "when": {"field": "custom", "op": "eq", "value": True},
                "amount": {"percent_of_amount": 30},
            },
            {
                "name": "paid_in_full",
                "title": "Customer paid in full",
                "due": "P30D",
                "amount": {"from_field": "invoice_total"},
            },
        ]
    )
    plain = await start(
        temporal_ts.client,
        ts_queue,
        p,
        "am_li",
        Decimal(1000),
        {"rate": "1", "invoice_total": "8800.50"},
    )
    custom = await start(
        temporal_ts.client,
        ts_queue,
        p,
        "am_li",
        Decimal(1000),
        {"rate": "1", "invoice_total": "8800.50", "custom": True},
    )
    await temporal_ts.sleep(timedelta(seconds=1))
    v = await state(plain)
    assert [m.name for m in v.milestones] == ["paid_in_full"]
    assert v.status == "awaiting_paid_in_full" and v.milestones[0].required == Decimal("8800.50")
    v = await state(custom)
    assert [(m.name, m.required) for m in v.milestones] == [
        ("deposit", Decimal("300.00")),
        ("paid_in_full", Decimal("8800.50")),
    ]
    await pay_by_signal(temporal_ts, custom, "deposit", "300")
    assert (await state(custom)).status == "awaiting_paid_in_full"


async def test_payout_waits_for_the_next_window_and_pays_once(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    p = policy(
        milestones=[
            {
                "name": "paid_in_full",
                "title": "Customer paid in full",
                "due": "P90D",
                "amount": {"from_field": "invoice_total"},
            }
        ],
        payout={"title": "Rebate payout", "after_milestone": "paid_in_full"},
    )
    h = await start(
        temporal_ts.client,
        ts_queue,
        p,
        "am_li",
        Decimal("1200.00"),
        {"rate": "1", "invoice_total": "40000"},
    )
    await temporal_ts.sleep(timedelta(seconds=1))
    await pay_by_signal(temporal_ts, h, "paid_in_full", "40000")
    v = await state(h)
    scheduled = next(e for e in v.history if e.kind == "payout_scheduled")
    assert v.payout is not None and v.payout.window_opens is not None
    assert v.payout.window_opens == next_payout_window(
        scheduled.at, ((7, 10), (25, 27)), timedelta(hours=8)
    )
    local_day = (v.payout.window_opens + timedelta(hours=8)).day
    assert 7 <= local_day <= 10 or 25 <= local_day <= 27
    if v.payout.window_opens > scheduled.at:
        assert v.status == "awaiting_payout"
    await temporal_ts.sleep(timedelta(days=32))
    v = await state(h)
    assert v.status == "completed" and v.payout and v.payout.reference
    assert v.payout.paid_at is not None and v.payout.window_opens is not None
    assert v.payout.paid_at >= v.payout.window_opens
    async with db_sessions() as s:
        rows = (await s.scalars(select(PayoutRow).where(PayoutRow.request_id == v.id))).all()
    assert [(r.reference, r.amount) for r in rows] == [(v.payout.reference, Decimal("1200.00"))]
    assert (await audit_kinds(db_sessions, v.id))[-3:] == [
        "payout_scheduled",
        "paid_out",
        "completed",
    ]


async def test_review_cycle_reevaluates_every_period_in_a_fresh_run(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    p = policy(review_cycle={"every": "P182D", "title": "Six-monthly credit review"})
    h = await start(temporal_ts.client, ts_queue, p, "am_li", Decimal(5000), {"rate": "9"})
    await temporal_ts.sleep(timedelta(seconds=1))
    runs = [(await h.describe()).run_id]
    await decide_by_signal(temporal_ts, h, "cd_xu")
    v = await state(h)
    assert v.status == "active" and v.next_review is not None
    runs.append((await h.describe()).run_id)  # in force: a fresh run carries the state on
    await temporal_ts.sleep(timedelta(days=182, minutes=1))
    v = await state(h)
    assert v.status == "in_review" and v.review_cycle == 1 and v.current_approvers == ["cd_xu"]
    await decide_by_signal(temporal_ts, h, "cd_xu")
    v = await state(h)
    assert v.status == "active" and v.review_cycle == 1
    runs.append((await h.describe()).run_id)
    assert len(set(runs)) == 3  # one run per cycle: the history never grows without bound
    await temporal_ts.sleep(timedelta(days=182, minutes=1))
    await signal(h, Signals.DECIDE, DecideInput(actor="cd_xu", action="reject"))
    await temporal_ts.sleep(timedelta(seconds=1))
    v = await state(h)
    assert v.status == "rejected" and v.review_cycle == 2
    kinds = await audit_kinds(db_sessions, v.id)
    assert kinds.count("review_started") == 2 and kinds.count("submitted") == 1


async def test_a_credit_line_in_force_can_be_ended_by_its_requester(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    p = policy(review_cycle={"every": "P182D"})
    h = await start(temporal_ts.client, ts_queue, p, "am_li", Decimal(5000), {"rate": "1"})
    await temporal_ts.sleep(timedelta(seconds=1))
    assert (await state(h)).status == "active"
    await signal(h, Signals.WITHDRAW, WithdrawInput(actor="am_li", comment="customer in arrears"))
    await temporal_ts.sleep(timedelta(seconds=1))
    assert (await state(h)).status == "withdrawn"


def receivable_policy() -> Policy:
    return policy(
        stages=[
            {
                "key": "board",
                "name": "Board decides on write-off",
                "approvers": [{"role": "general_manager"}],
            }
        ],
        watch={
            "settles_with": "payment_received",
            "anchor_field": "due_date",
            "steps": [
                {
                    "after": "P60D",
                    "title": "Report: 2 months overdue",
                    "notify": [{"manager": 1}, {"role": "finance_head"}],
                },
                {
                    "after": "P120D",
                    "title": "Weekly progress: 4 months overdue",
                    "notify": [{"requester": True}, {"manager": 1}],
                    "repeat_every": "P7D",
                },
            ],
            "review_after": "P180D",
        },
    )


async def test_receivable_ladder_reports_then_weekly_then_goes_to_review(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    today = (await temporal_ts.get_current_time()).date().isoformat()  # the shared test clock
    h = await start(
        temporal_ts.client,
        ts_queue,
        receivable_policy(),
        "am_li",
        Decimal("70000"),
        {"due_date": today},
    )
    await temporal_ts.sleep(timedelta(days=30))
    v = await state(h)
    assert v.status == "watching" and not [e for e in v.history if e.kind == "watch_notice"]
    await temporal_ts.sleep(timedelta(days=31))  # day 61
    notices = [e for e in (await state(h)).history if e.kind == "watch_notice"]
    assert [e.data["people"] for e in notices] == [["fh_gao", "sh_zhou"]]
    await pay_by_signal(temporal_ts, h, "payment_received", "20000")  # partial: still watching
    await temporal_ts.sleep(timedelta(days=60, hours=1))  # day 121: weekly progress starts
    await temporal_ts.sleep(timedelta(days=14))  # two more weeks
    v = await state(h)
    weekly = [e for e in v.history if e.kind == "watch_notice" and e.data["step"] == 1]
    assert len(weekly) == 3 and v.status == "watching"
    assert weekly[0].data["people"] == ["am_li", "sh_zhou"]  # the requester is named: told too
    assert weekly[0].data["outstanding"] == "50000.00"
    await temporal_ts.sleep(timedelta(days=46))  # past day 180
    v = await state(h)
    assert v.status == "in_review" and v.current_approvers == ["gm_wang"]
    await pay_by_signal(
        temporal_ts, h, "payment_received", "50000"
    )  # the money arrives during review
    v = await state(h)
    assert v.status == "completed"
    assert (await audit_kinds(db_sessions, v.id))[-1] == "settled"
    assert await notified(db_sessions, v.id, "settled") == {"gm_wang"}


async def test_receivable_paid_while_watching_ends_at_once(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    today = (await temporal_ts.get_current_time()).date().isoformat()  # the shared test clock
    h = await start(
        temporal_ts.client,
        ts_queue,
        receivable_policy(),
        "am_li",
        Decimal("900"),
        {"due_date": today},
    )
    await temporal_ts.sleep(timedelta(days=10))
    await pay_by_signal(temporal_ts, h, "payment_received", "900")
    v = await state(h)
    assert v.status == "completed"
    assert await audit_kinds(db_sessions, v.id) == [
        "submitted",
        "milestone_opened",
        "milestone",
        "milestone_met",
        "settled",
    ]


async def test_a_final_approval_is_recorded_closed_in_the_read_model(
    temporal_ts: WorkflowEnvironment, ts_queue: str, db_sessions
):
    at_once = await start(
        temporal_ts.client, ts_queue, policy(), "am_li", Decimal(100), {"rate": "5"}
    )
    staged = await start(
        temporal_ts.client, ts_queue, policy(), "am_li", Decimal(100), {"rate": "7"}
    )
    await temporal_ts.sleep(SETTLE)
    await decide_by_signal(temporal_ts, staged, "cd_xu")
    for h in (at_once, staged):
        await h.result()
        row = await request_row(db_sessions, request_id(h))
        # Nothing follows these approvals: the read-model must say they are closed.
        assert row.status == "approved" and row.closed_at is not None
