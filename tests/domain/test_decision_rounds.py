"""A decision made for one round of a step is refused once that round has ended.

The round of a person's step is the instant they became eligible on it (their
``Actor.since``): a return and resubmission, a transfer or a reassignment gives the
step a new round; an escalation adds people without changing anyone's. A decision
that names its round (``DecideInput.round_since``: a decision link does) is refused
with ``round_ended`` when the actor's step is of another round; one that names none
is judged as before, so every stored history replays unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from common.policy_store import load_policies
from domain.core import admission
from domain.core.inputs import Submit
from domain.core.queries import active_stage, step_round
from domain.core.steps import put, with_stage
from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from domain.process import (
    Actor,
    DecideInput,
    EventKind,
    ResubmitInput,
    Slot,
    StageStatus,
    Status,
    TransferInput,
)
from domain.signing import payload_of
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _decide
from tests.support.machine_driver import refused as _refused

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def _contract(clock: Callable[[], datetime], driver: Driver) -> Request:
    """A 250,000 contract by am_li: bcd_zheng signs, dsd_liu (the top authority) approves."""
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    return Request(approval_input(CONTRACT, Decimal(250000), fields), clock, driver)


def test_a_decision_for_the_current_round_or_for_none_is_admitted() -> None:
    clock = Clock(T0)
    p = _contract(clock, Driver(FakeDirectory.demo()))
    p.feed(Submit())
    assert step_round(p.state, "bcd_zheng") == T0
    for round_since in (None, T0):
        msg = DecideInput(actor="bcd_zheng", action="approve", round_since=round_since)
        admission.check(p.state, CONTRACT, msg)
    stale = DecideInput(
        actor="bcd_zheng", action="approve", round_since=T0 - timedelta(microseconds=1)
    )
    with pytest.raises(DomainError) as info:
        admission.check(p.state, CONTRACT, stale)
    assert info.value.code is ErrorCode.ROUND_ENDED
    assert HTTP_STATUS[ErrorCode.ROUND_ENDED] == 409
    assert "no longer waits" in info.value.message


def test_after_a_return_and_a_resubmission_a_decision_for_the_first_round_is_refused() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = _contract(clock, driver)
    p.feed(Submit())
    first = step_round(p.state, "bcd_zheng")
    assert first == T0
    clock.later(minutes=5)
    _decide(p, DecideInput(actor="bcd_zheng", action="return"))
    assert step_round(p.state, "bcd_zheng") is None  # nothing waits for him while returned
    clock.later(hours=1)
    _decide(p, ResubmitInput(actor="am_li", amount=Decimal(280000)))
    second = step_round(p.state, "bcd_zheng")
    assert second == clock.now != first

    clock.later(minutes=1)
    old = DecideInput(actor="bcd_zheng", action="approve", round_since=first)
    assert _refused(p, old).code is ErrorCode.ROUND_ENDED
    stage = active_stage(p.state)
    assert stage is not None and stage.index == 0 and p.state.amount == Decimal(280000)
    assert all(s.decision is None for s in stage.slots)

    _decide(p, DecideInput(actor="bcd_zheng", action="approve", round_since=second))
    assert [r.event.kind for r in driver.records].count(EventKind.APPROVED) == 1
    assert p.state.stage_index == 1


def test_a_transfer_starts_a_new_round_and_an_escalation_does_not() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = _contract(clock, driver)
    p.feed(Submit())
    stage = active_stage(p.state)
    assert stage is not None
    clock.later(minutes=1)
    _decide(p, TransferInput(actor="bcd_zheng", to_user="dsd_liu"))
    clock.later(minutes=1)
    _decide(p, TransferInput(actor="dsd_liu", to_user="bcd_zheng"))
    back = step_round(p.state, "bcd_zheng")
    assert back == clock.now != T0
    old = DecideInput(actor="bcd_zheng", action="reject", round_since=T0)
    assert _refused(p, old).code is ErrorCode.ROUND_ENDED
    # Added on another slot later (an escalation): the step's round stays the earliest.
    extra = Slot(
        label="extra",
        actors=(Actor(user="bcd_zheng", via="escalation", since=clock.now + timedelta(days=1)),),
    )
    current = active_stage(p.state)
    assert current is not None
    widened = with_stage(p.state, put(current, slots=(*current.slots, extra)))
    assert step_round(widened, "bcd_zheng") == back
    _decide(p, DecideInput(actor="bcd_zheng", action="reject", round_since=back))
    assert p.state.status is Status.REJECTED
    assert p.state.stages[stage.index].status is StageStatus.REJECTED


def test_a_decision_without_a_round_is_sent_and_signed_as_before() -> None:
    """Absent, the field is not on the wire nor under the proof: an API or worker of the
    previous version reads and verifies the same bytes."""
    plain = DecideInput(actor="bcd_zheng", action="approve", comment="ok")
    assert "round_since" not in plain.model_dump(mode="json")
    assert payload_of(plain) == {"actor": "bcd_zheng", "action": "approve", "comment": "ok"}
    timed = DecideInput(actor="bcd_zheng", action="approve", round_since=T0)
    assert payload_of(timed)["round_since"] == "2026-03-02T09:00:00.123456Z"
    assert DecideInput.model_validate_json(timed.model_dump_json()) == timed
