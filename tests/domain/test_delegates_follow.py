"""The open step follows delegations that start or end while it waits, in the pure core.

A 250,000 contract by am_li: bcd_zheng decides the first stage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common.policy_store import load_policies
from domain.core.delegates import DELEGATES_FOLLOW
from domain.core.details import details
from domain.core.inputs import DirectoryChanged, Submit
from domain.core.queries import current_approvers
from domain.delegation import Edge
from domain.process import DecideInput, DirectoryChangedInput, EventKind
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _ok

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _contract(clock: Clock, directory: FakeDirectory, *, patched: bool = True) -> Request:
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    p = Request(
        approval_input(CONTRACT, Decimal(250000), fields),
        clock,
        Driver(directory, patched=patched),
    )
    p.feed(Submit())
    assert "bcd_zheng" in current_approvers(p.state)
    return p


def _delegation(start: datetime, end: datetime, types: set[str] | None = None) -> Edge:
    return Edge(
        "bcd_zheng", "price_lin", start, end, frozenset(types) if types is not None else None
    )


def _told(p: Request, *delegators: str) -> None:
    assert p.feed(DirectoryChanged(DirectoryChangedInput(delegators=list(delegators)))) is None


def test_a_delegation_that_starts_while_the_step_waits_adds_the_delegate_on_behalf() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    p = _contract(clock, directory)
    clock.later(hours=1)
    directory.delegations.append(_delegation(clock.now, clock.now + timedelta(days=3)))
    _told(p, "bcd_zheng")
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]
    event = p.state.history[-1]
    assert event.kind is EventKind.DELEGATES_CHANGED
    assert event.data["added"] == [{"user": "price_lin", "on_behalf_of": "bcd_zheng"}]
    assert [n.recipient for n in p.driver.records[-1].notices] == ["price_lin"]
    assert "Delegates (委托): price_lin for bcd_zheng" in details(p.state)
    # The delegate decides, recorded on the delegator's behalf.
    _ok(p, DecideInput(actor="price_lin", action="approve"))
    decided = next(e for e in reversed(p.state.history) if e.kind is EventKind.APPROVED)
    assert (decided.actor, decided.on_behalf_of) == ("price_lin", "bcd_zheng")


def test_a_delegation_that_ends_gives_the_step_back() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    directory.delegations.append(_delegation(T0, T0 + timedelta(days=1)))
    p = _contract(clock, directory)
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]
    clock.later(days=1)
    _told(p, "bcd_zheng")
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert p.state.history[-1].data["removed"] == [
        {"user": "price_lin", "on_behalf_of": "bcd_zheng"}
    ]


def test_a_delegation_for_other_request_types_changes_nothing() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    p = _contract(clock, directory)
    seq = p.state.seq
    directory.delegations.append(_delegation(T0, T0 + timedelta(days=3), {"customer_gift"}))
    _told(p, "bcd_zheng")
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert p.state.seq == seq  # nothing to write


def test_a_delegation_scoped_to_the_type_counts_from_the_start() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    directory.delegations.append(_delegation(T0, T0 + timedelta(days=3), {"big_customer_contract"}))
    p = _contract(clock, directory)
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]


def test_one_hop_only_a_delegates_own_delegate_is_not_added() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    p = _contract(clock, directory)
    directory.delegations += [
        _delegation(T0, T0 + timedelta(days=3)),
        Edge("price_lin", "fh_gao", T0, T0 + timedelta(days=3)),
    ]
    _told(p, "bcd_zheng")
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]


def test_a_departures_hint_alone_asks_nothing_new_and_old_histories_keep_their_path() -> None:
    clock, directory = Clock(T0), FakeDirectory.demo()
    directory.delegations.append(_delegation(T0 + timedelta(hours=1), T0 + timedelta(days=3)))
    p = _contract(clock, directory, patched=False)
    clock.later(hours=2)
    seq = p.state.seq
    _told(p)  # no delegators named: the departures path only
    _told(p, "bcd_zheng")  # replaying a history made before the patch: unchanged
    assert p.state.seq == seq
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert DELEGATES_FOLLOW == "delegates-follow-delegations"
