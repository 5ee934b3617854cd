"""The process rules in domain/core, without any server: each runs in microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.policy_store import load_policies
from domain.core import admission, escalation
from domain.core.deadlines import DeadlineKind, next_deadline
from domain.core.details import details
from domain.core.milestones import milestone_state
from domain.core.queries import current_approvers, stage_complete
from domain.core.steps import put, with_slots, with_stage
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from domain.process import (
    TERMINAL,
    Actor,
    DecideInput,
    MilestoneInput,
    MilestoneStatus,
    RequestState,
    Slot,
    StageStatus,
    Status,
    StuckState,
    TransferInput,
    WithdrawInput,
    stages_of,
)
from domain.requests import validate_fields
from domain.routing import resolve_route

ROOT = Path(__file__).resolve().parents[2]
POLICIES = load_policies(ROOT / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def state_of(policy: Policy, amount: str | None, fields: dict[str, Any]) -> RequestState:
    amt = Decimal(amount) if amount is not None else None
    norm = validate_fields(policy, amt, fields)
    return RequestState(
        id="r-1",
        type=policy.type,
        title="t",
        requester="am_li",
        customer=None,
        amount=amt,
        fields=norm,
        policy_type=policy.type,
        policy_version=policy.version,
        status=Status.IN_REVIEW,
        stages=stages_of(resolve_route(policy, amt, norm)),
        submitted_at=T0,
    )


def in_review(holders: list[str], *, reply_due: datetime | None = None) -> RequestState:
    """A big-customer contract at its first stage, held by ``holders``."""
    v = state_of(
        POLICIES["big_customer_contract"],
        "250000",
        {"contract_no": "C-1", "settlement_floor_price": "1"},
    )
    slot = Slot(
        label="big_customer_dept",
        actors=tuple(Actor(user=u, via="role:x", since=T0) for u in holders),
        escalation_frontier=tuple(holders),
    )
    stage = put(v.stages[0], status=StageStatus.ACTIVE, reply_due=reply_due, slots=(slot,))
    return put(with_stage(v, stage), stage_index=0, resolve_due=T0 + timedelta(days=3))


def refusal(v: RequestState, msg: Any) -> ErrorCode:
    with pytest.raises(DomainError) as info:
        admission.check(v, POLICIES["big_customer_contract"], msg)
    return info.value.code


# --- admission ------------------------------------------------------------------------


def test_only_a_current_holder_may_decide_and_only_once() -> None:
    v = in_review(["bcd_zheng"])
    admission.check(
        v,
        POLICIES["big_customer_contract"],
        DecideInput(actor="bcd_zheng", action="approve"),
    )
    assert refusal(v, DecideInput(actor="am_li", action="approve")) is ErrorCode.NOT_ELIGIBLE
    decided = put(v.stages[0].slots[0], decision="approve", decided_by="bcd_zheng")
    v = with_stage(v, with_slots(v.stages[0], {0: decided}))
    assert refusal(v, DecideInput(actor="bcd_zheng", action="approve")) is ErrorCode.ALREADY_DECIDED


def test_a_refused_decider_is_told_who_holds_the_step() -> None:
    v = in_review(["bcd_zheng", "dsd_liu"])
    with pytest.raises(DomainError) as info:
        admission.check(
            v,
            POLICIES["big_customer_contract"],
            DecideInput(actor="am_li", action="approve"),
        )
    assert info.value.code is ErrorCode.NOT_ELIGIBLE
    assert info.value.details["holders"] == ["bcd_zheng", "dsd_liu"]
    assert "held by bcd_zheng, dsd_liu" in info.value.message


def test_a_closed_or_stuck_request_accepts_nothing() -> None:
    v = in_review(["bcd_zheng"])
    approve = DecideInput(actor="bcd_zheng", action="approve")
    assert refusal(put(v, closed_at=T0), approve) is ErrorCode.INVALID_STATE
    stuck = StuckState(since=T0, reason="database refused", attempts=3)
    assert refusal(put(v, stuck=stuck), approve) is ErrorCode.UNAVAILABLE
    for status in TERMINAL:
        assert refusal(put(v, status=status), approve) is ErrorCode.INVALID_STATE


def test_transfers_go_to_someone_else_than_the_requester_or_oneself() -> None:
    v = in_review(["bcd_zheng"])
    assert refusal(v, TransferInput(actor="bcd_zheng", to_user="am_li")) is ErrorCode.VALIDATION
    assert refusal(v, TransferInput(actor="bcd_zheng", to_user="bcd_zheng")) is ErrorCode.VALIDATION
    assert refusal(v, WithdrawInput(actor="bcd_zheng")) is ErrorCode.FORBIDDEN


def test_a_milestone_payment_must_be_open_and_positive() -> None:
    v = state_of(POLICIES["retail_bulk_discount"], "5000", {"gross_margin_pct": "3"})
    policy = POLICIES["retail_bulk_discount"]
    deposit = milestone_state(policy.milestones[0], v)
    v = put(v, milestones=(deposit,))
    pay = MilestoneInput(actor="fin_he", milestone="deposit", amount=Decimal(1))
    with pytest.raises(DomainError):
        admission.check(v, policy, pay)  # not open yet
    opened = put(deposit, status=MilestoneStatus.OPEN)
    v = put(v, milestones=(opened,), status=Status.AWAITING, awaiting="deposit")
    admission.check(v, policy, pay)
    with pytest.raises(DomainError) as info:
        admission.check(v, policy, pay.model_copy(update={"amount": None}))
    assert info.value.code is ErrorCode.VALIDATION


# --- milestones -----------------------------------------------------------------------


@pytest.mark.parametrize(("fresh", "required"), [(False, "1500.00"), (True, "2500.00")])
def test_the_deposit_is_a_share_of_the_order_with_its_exceptions(
    fresh: bool, required: str
) -> None:
    policy = POLICIES["retail_bulk_discount"]
    v = state_of(policy, "5000", {"gross_margin_pct": "3", "fresh_food": fresh})
    assert milestone_state(policy.milestones[0], v).required == Decimal(required)


# --- deadlines ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    reply=st.none() | st.integers(min_value=1, max_value=10_000),
    resolve=st.integers(min_value=1, max_value=10_000),
    fired=st.booleans(),
)
def test_the_next_deadline_in_review_is_the_earliest_that_applies(
    reply: int | None, resolve: int, fired: bool
) -> None:
    v = in_review(["bcd_zheng"], reply_due=T0 + timedelta(minutes=reply) if reply else None)
    v = put(v, resolve_due=T0 + timedelta(minutes=resolve), resolve_fired=fired)
    due = next_deadline(v, POLICIES["big_customer_contract"])
    candidates = [
        (v.stages[0].reply_due, DeadlineKind.REPLY),
        (None if fired else v.resolve_due, DeadlineKind.RESOLVE),
    ]
    live = [(at, kind) for at, kind in candidates if at is not None]
    if not live:
        assert due is None
        return
    assert due is not None
    assert due.at == min(at for at, _ in live)
    assert (due.at, due.kind) in live


def test_closed_requests_have_no_deadline_and_milestones_remind_first() -> None:
    policy = POLICIES["retail_bulk_discount"]
    v = state_of(policy, "5000", {"gross_margin_pct": "3"})
    for status in TERMINAL:
        assert next_deadline(put(v, status=status), policy) is None
    m = put(
        milestone_state(policy.milestones[0], v),
        status=MilestoneStatus.OPEN,
        due=T0 + timedelta(days=7),
    )
    v = put(v, milestones=(m,), status=Status.AWAITING, awaiting="deposit")
    first = next_deadline(v, policy)
    assert first is not None
    assert (first.kind, first.at) == (DeadlineKind.MILESTONE_REMINDER, T0 + timedelta(days=6))
    second = next_deadline(put(v, milestones=(put(m, reminded=True),)), policy)
    assert second is not None and second.kind is DeadlineKind.MILESTONE_DUE


# --- escalation -----------------------------------------------------------------------


def test_escalation_adds_the_next_one_up_never_the_requester_and_moves_the_frontier() -> None:
    v = in_review(["bcd_zheng"])
    slots, added = escalation.escalate(
        v.stages[0].slots, {"bcd_zheng": ["am_li", "dsd_liu"]}, "am_li", T0
    )
    assert added == ["dsd_liu"]
    assert current_approvers(with_stage(v, put(v.stages[0], slots=tuple(slots)))) == [
        "bcd_zheng",
        "dsd_liu",
    ]
    assert slots[0].escalation_frontier == ("dsd_liu",)
    assert v.stages[0].slots[0].escalation_frontier == ("bcd_zheng",)  # a new value
    # Once more from the new frontier; nobody above: nothing added, frontier kept.
    again, added = escalation.escalate(slots, {"dsd_liu": []}, "am_li", T0)
    assert added == []
    assert again[0].escalation_frontier == ("dsd_liu",)


def test_hand_over_takes_leavers_off_and_their_managers_on() -> None:
    v = in_review(["bcd_zheng", "sh_zhou"])
    slots, added = escalation.hand_over(
        v.stages[0].slots, {"bcd_zheng"}, {"bcd_zheng": ["dsd_liu"]}, "am_li", T0
    )
    assert added == ["dsd_liu"]
    v = with_stage(v, put(v.stages[0], slots=tuple(slots)))
    assert current_approvers(v) == ["dsd_liu", "sh_zhou"]
    assert [a.via for a in slots[0].actors if a.user == "dsd_liu"] == ["reassignment"]
    assert not stage_complete(v.stages[0])


def test_details_tell_where_the_request_stands() -> None:
    v = in_review(["bcd_zheng"], reply_due=T0 + timedelta(hours=4))
    text = details(v)
    assert "stage 1/2" in text and "bcd_zheng" in text and "2026-03-02 13:00 UTC" in text
    stuck = StuckState(since=T0, reason="database refused", attempts=3)
    assert "Stuck" in details(put(v, stuck=stuck))
