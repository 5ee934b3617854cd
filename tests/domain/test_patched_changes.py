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
from domain.core.machine import Process
from domain.core.queries import active_stage
from domain.process import EventKind
from tests.support.machine_driver import Driver, FakeDirectory, approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _contract(clock: Callable[[], datetime]) -> Process:
    """A 250,000 contract by am_li: bcd_zheng signs, dsd_liu (the top authority) approves."""
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    return Process(
        approval_input(POLICIES["big_customer_contract"], Decimal(250000), fields), clock
    )


def _dead_end(patched: bool) -> tuple[Process, Driver]:
    """The contract at its first stage, whose holder and everyone above them left, when
    its resolve deadline comes."""
    now = [T0]
    p = _contract(lambda: now[0])
    driver = Driver(FakeDirectory.demo(), patched=patched)
    driver.run(p, p.submit())
    stage = active_stage(p.view)
    assert stage is not None and stage.index == 0
    for slot in stage.slots:
        slot.escalation_frontier = []  # nobody left above the holders
    assert p.view.resolve_due is not None
    now[0] = p.view.resolve_due
    driver.run(p, p.on_deadline(DeadlineKind.RESOLVE))
    return p, driver


def test_on_todays_code_the_top_authority_steps_in() -> None:
    p, driver = _dead_end(patched=True)
    stage = active_stage(p.view)
    assert stage is not None
    assert any(s.may_act("dsd_liu") for s in stage.slots)
    assert EventKind.ESCALATED in [r.event.kind for r in driver.records]


def test_a_request_replaying_the_old_rules_stays_as_it_was() -> None:
    p, driver = _dead_end(patched=False)
    stage = active_stage(p.view)
    assert stage is not None
    assert not any(s.may_act("dsd_liu") for s in stage.slots)
    assert EventKind.ESCALATED not in [r.event.kind for r in driver.records]
    assert [r.event.kind for r in driver.records][-1] is EventKind.OVERDUE


def test_the_question_is_asked_only_on_the_changed_path() -> None:
    """Requests that never meet the dead end never record a marker."""
    asked: list[str] = []

    class Recording(Driver):
        def _carry_out(self, process: Process, effect: object) -> object:
            change = getattr(effect, "change", None)
            if change is not None:
                asked.append(change)
            return super()._carry_out(process, effect)

    p = _contract(lambda: T0 + timedelta(days=4))
    driver = Recording(FakeDirectory.demo())
    driver.run(p, p.submit())
    driver.run(p, p.on_deadline(DeadlineKind.RESOLVE))  # the holder is still there
    assert asked == []
