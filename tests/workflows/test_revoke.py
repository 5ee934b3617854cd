"""Revoke after approval in the workflow, under time skipping: the window's timer, the signal.

A final approval of a policy with ``revoke`` keeps its workflow open (approved) for the
window only; its timer closes it. A revoke sent as a signed signal (an operator's
command) closes an approval still awaiting its deposit, listing the payment to reverse.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from domain.constants import Signals
from domain.durations import Span
from domain.policy import Policy, RevokeSpec
from domain.process import RequestView, RevokeInput
from tests.support.workflows import (
    SETTLE,
    audit_kinds,
    decide_by_signal,
    in_calendar_time,
    notified,
    pay_by_signal,
    request_id,
    request_row,
    signal,
    start,
    state,
)

GIFT_FIELDS = {"gift": "Mooncakes", "reason": "A top customer"}


def revocable(policy: Policy) -> Policy:
    return in_calendar_time(policy).model_copy(update={"revoke": RevokeSpec(within=Span(days=31))})


async def test_a_final_approval_stays_open_until_its_revoke_window_ends(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    policy = revocable(policies["customer_gift"])
    h = await start(temporal_ts.client, ts_queue, policy, "am_li", Decimal(300), GIFT_FIELDS)
    await decide_by_signal(temporal_ts, h, "csc_tang")
    await decide_by_signal(temporal_ts, h, "bgm_feng")
    v = await state(h)
    assert v.status == "approved" and v.closed_at is None and v.revocable_until is not None
    await temporal_ts.sleep(timedelta(days=30))
    row = await request_row(db_sessions, request_id(h))
    assert row.status == "approved" and row.closed_at is None

    await temporal_ts.sleep(timedelta(days=1, minutes=1))

    v = RequestView.model_validate(await h.result())  # the workflow ended with the window
    assert v.status == "approved" and v.closed_at is not None
    row = await request_row(db_sessions, request_id(h))
    assert row.status == "approved" and row.closed_at is not None
    kinds = await audit_kinds(db_sessions, request_id(h))
    assert kinds[-2:] == ["request_approved", "revoke_window_closed"]


async def test_a_revoke_signal_closes_an_approval_awaiting_its_deposit(
    temporal_ts: WorkflowEnvironment, ts_queue: str, policies: dict[str, Policy], db_sessions
):
    policy = revocable(policies["retail_bulk_discount"])
    h = await start(
        temporal_ts.client, ts_queue, policy, "am_li", Decimal(10000), {"gross_margin_pct": "12"}
    )
    await decide_by_signal(temporal_ts, h, "mm_hu")
    await pay_by_signal(temporal_ts, h, "deposit", "1000", actor="fin_he", reference="TX-1")

    await signal(h, Signals.REVOKE, RevokeInput(actor="am_li", comment="Order cancelled"))
    await temporal_ts.sleep(SETTLE)

    v = RequestView.model_validate(await h.result())
    assert v.status == "revoked" and v.milestones[0].status == "revoked"
    assert [(r.reference, r.amount) for r in v.to_reverse] == [("TX-1", Decimal("1000.00"))]
    revoked = v.history[-1]
    assert revoked.kind == "revoked" and revoked.data["operator"] == "test-operator"
    assert await notified(db_sessions, request_id(h), "revoked") == {"mm_hu", "fin_he"}
    assert (await request_row(db_sessions, request_id(h))).status == "revoked"
