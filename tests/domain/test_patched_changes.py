"""A changed rule that running requests may meet asks ``Patched`` where old and new part.

The workflow answers with ``workflow.patched``: a request replaying a history that the
old rule made takes the old path again, one on today's code the new path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common.policy_store import load_policies
from domain.core.deadlines import DeadlineKind
from domain.core.inputs import DeadlineReached, Submit
from domain.core.queries import active_stage
from domain.core.steps import Context, put, with_stage
from domain.process import EventKind
from tests.support.machine_driver import Driver, FakeDirectory, Request, approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _contract(clock: Callable[[], datetime], driver: Driver) -> Request:
    """A 250,000 contract by am_li: bcd_zheng signs, dsd_liu (the top authority) approves."""
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    inp = approval_input(POLICIES["big_customer_contract"], Decimal(250000), fields)
    return Request(inp, clock, driver)


def _dead_end(patched: bool) -> tuple[Request, Driver]:
    """The contract at its first stage, whose holder and everyone above them left, when
    its resolve deadline comes."""
    now = [T0]
    driver = Driver(FakeDirectory.demo(), patched=patched)
    p = _contract(lambda: now[0], driver)
    p.feed(Submit())
    stage = active_stage(p.state)
    assert stage is not None and stage.index == 0
    # Nobody left above the holders.
    slots = tuple(put(slot, escalation_frontier=()) for slot in stage.slots)
    p.state = with_stage(p.state, put(stage, slots=slots))
    assert p.state.resolve_due is not None
    now[0] = p.state.resolve_due
    p.feed(DeadlineReached(DeadlineKind.RESOLVE))
    return p, driver


def test_on_todays_code_the_top_authority_steps_in() -> None:
    p, driver = _dead_end(patched=True)
    stage = active_stage(p.state)
    assert stage is not None
    assert any(s.may_act("dsd_liu") for s in stage.slots)
    assert EventKind.ESCALATED in [r.event.kind for r in driver.records]


def test_a_request_replaying_the_old_rules_stays_as_it_was() -> None:
    p, driver = _dead_end(patched=False)
    stage = active_stage(p.state)
    assert stage is not None
    assert not any(s.may_act("dsd_liu") for s in stage.slots)
    assert EventKind.ESCALATED not in [r.event.kind for r in driver.records]
    assert [r.event.kind for r in driver.records][-1] is EventKind.OVERDUE


def test_the_question_is_asked_only_on_the_changed_path() -> None:
    """Requests that never meet the dead end never record a marker."""
    asked: list[str] = []

    class Recording(Driver):
        def _carry_out(self, ctx: Context, effect: object) -> object:
            change = getattr(effect, "change", None)
            if change is not None:
                asked.append(change)
            return super()._carry_out(ctx, effect)

    p = _contract(lambda: T0 + timedelta(days=4), Recording(FakeDirectory.demo()))
    p.feed(Submit())
    p.feed(DeadlineReached(DeadlineKind.RESOLVE))  # the holder is still there
    assert asked == []
