"""Urging the approvers (催办) and an administrator's reassignment, in the pure core.

A 250,000 contract by am_li: bcd_zheng decides the first stage, dsd_liu the second.
The business calendar is Asia/Shanghai's default: 09:00-12:00 and 13:30-18:00 local
(01:00-04:00 and 05:30-10:00 UTC), Monday to Friday.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from common.policy_store import load_policies
from domain.core.details import details
from domain.core.inputs import Handle, Submit
from domain.core.projection import view_of
from domain.core.queries import active_stage, current_approvers, step_round
from domain.durations import Span
from domain.errors import ErrorCode
from domain.policy import Policy, RequesterApprover, UrgeOptions
from domain.process import (
    DecideInput,
    EventKind,
    ReassignInput,
    ResubmitInput,
    Status,
    UrgeInput,
    Via,
)
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _ok
from tests.support.machine_driver import refused as _refused

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
MONDAY_11 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: working time
FRIDAY_1730 = datetime(2026, 3, 6, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai


def _contract(
    clock: Callable[[], datetime], policy: Policy = CONTRACT, directory: FakeDirectory | None = None
) -> Request:
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    p = Request(
        approval_input(policy, Decimal(250000), fields),
        clock,
        Driver(directory or FakeDirectory.demo()),
    )
    p.feed(Submit())
    assert current_approvers(p.state) == ["bcd_zheng"]
    return p


def _every(interval: str) -> Policy:
    return CONTRACT.model_copy(update={"urge": UrgeOptions.model_validate({"interval": interval})})


URGE = UrgeInput(actor="am_li", comment="the customer signs on Friday")


# ------------------------------------------------------------------- urge


def test_an_urge_reaches_each_current_approver_marked_urgent_and_is_counted() -> None:
    clock = Clock(MONDAY_11)
    p = _contract(clock)
    clock.later(minutes=20)
    _ok(p, URGE)
    event = p.state.history[-1]
    assert event.kind is EventKind.URGED
    assert (event.actor, event.comment) == ("am_li", "the customer signs on Friday")
    assert event.data["people"] == ["bcd_zheng"]
    assert event.data["count"] == 1
    [n] = p.driver.records[-1].notices
    assert (n.recipient, n.template) == ("bcd_zheng", "urged")
    assert n.payload["urgent"] is True
    assert n.payload["by"] == "am_li"
    assert n.payload["note"] == "the customer signs on Friday"
    # Counted in the state, shown in the view and in the Temporal UI.
    assert p.state.urges == 1
    assert p.state.last_urge is not None
    assert p.state.last_urge.people == ("bcd_zheng",)
    assert view_of(p.state).urges == 1
    assert "Urged (催办) 1×, last 2026-03-02 03:20 UTC by am_li (bcd_zheng)" in details(p.state)


def test_only_the_requester_may_urge() -> None:
    p = _contract(Clock(MONDAY_11))
    for who in ("bcd_zheng", "dsd_liu"):
        assert _refused(p, UrgeInput(actor=who)).code is ErrorCode.FORBIDDEN


def test_a_returned_request_has_nobody_to_urge() -> None:
    p = _contract(Clock(MONDAY_11))
    _ok(p, DecideInput(actor="bcd_zheng", action="return", comment="fix the price"))
    assert p.state.status is Status.RETURNED
    assert _refused(p, URGE).code is ErrorCode.INVALID_STATE


def test_a_second_urge_within_the_interval_is_too_soon_until_its_very_end() -> None:
    clock = Clock(MONDAY_11)
    p = _contract(clock, _every("PT10M"))
    _ok(p, URGE)
    clock.later(minutes=9, seconds=59)
    err = _refused(p, URGE)
    assert err.code is ErrorCode.TOO_SOON
    assert err.details["retry_after"] == 1
    assert err.details["next_allowed_at"] == (MONDAY_11 + timedelta(minutes=10)).isoformat()
    assert "may be urged again from 2026-03-02 03:10 UTC" in err.message
    clock.later(seconds=1)
    _ok(p, URGE)
    assert p.state.urges == 2


def test_retry_after_counts_whole_seconds_up() -> None:
    clock = Clock(MONDAY_11)
    p = _contract(clock, _every("PT10M"))
    _ok(p, URGE)
    clock.later(minutes=3, milliseconds=500)
    assert _refused(p, URGE).details["retry_after"] == 7 * 60  # 419.5 s, rounded up


def test_the_default_interval_is_one_working_hour() -> None:
    assert CONTRACT.urge.interval == Span(hours=1, working=True)
    clock = Clock(MONDAY_11 + timedelta(minutes=30))
    p = _contract(clock)
    _ok(p, URGE)
    # 11:30 + 1 working hour = 14:00 local: lunch is not working time.
    assert p.state.last_urge is not None
    assert p.state.last_urge.next_at == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    clock.later(hours=2, minutes=29)
    assert _refused(p, URGE).code is ErrorCode.TOO_SOON
    clock.later(minutes=1)
    _ok(p, URGE)


def test_an_urge_late_on_friday_may_come_again_on_monday_morning() -> None:
    clock = Clock(FRIDAY_1730)
    p = _contract(clock)
    _ok(p, URGE)
    err = _refused(p, URGE)
    # 30 working minutes on Friday, 30 on Monday: 09:30 local on Monday.
    assert err.details["next_allowed_at"] == datetime(2026, 3, 9, 1, 30, tzinfo=UTC).isoformat()
    clock.now = datetime(2026, 3, 9, 1, 29, tzinfo=UTC)
    assert _refused(p, URGE).details["retry_after"] == 60
    clock.now = datetime(2026, 3, 9, 1, 30, tzinfo=UTC)
    _ok(p, URGE)


def test_each_stage_and_each_round_of_a_stage_may_be_urged_afresh() -> None:
    clock = Clock(MONDAY_11)
    p = _contract(clock)
    _ok(p, URGE)
    clock.later(minutes=1)
    _ok(p, DecideInput(actor="bcd_zheng", action="return", comment="fix it"))
    clock.later(minutes=1)
    _ok(p, ResubmitInput(actor="am_li", comment="fixed"))
    # The stage passed again is a new round: it may be urged at once.
    _ok(p, URGE)
    clock.later(minutes=1)
    _ok(p, DecideInput(actor="bcd_zheng", action="approve"))
    assert current_approvers(p.state) == ["dsd_liu"]
    _ok(p, URGE)  # another stage
    assert p.state.urges == 3
    assert _refused(p, URGE).code is ErrorCode.TOO_SOON


def test_an_urge_sent_as_a_signal_too_soon_is_recorded_as_ignored() -> None:
    p = _contract(Clock(MONDAY_11))
    _ok(p, URGE)
    p.feed(Handle(URGE, from_signal=True))
    event = p.state.history[-1]
    assert event.kind is EventKind.IGNORED
    assert event.data["code"] == "too_soon"
    assert p.state.urges == 1


def test_a_policy_says_how_often_in_its_own_words() -> None:
    assert UrgeOptions.model_validate({"interval": "2 working hours"}).interval == Span(
        hours=2, working=True
    )
    assert not UrgeOptions.model_validate({"interval": "PT30M"}).interval.working
    with pytest.raises(ValueError, match="positive"):
        UrgeOptions.model_validate({"interval": "PT0M"})


# --------------------------------------------------------------- reassign


def _reassign(frm: str = "bcd_zheng", to: str = "price_lin", actor: str = "admin") -> ReassignInput:
    return ReassignInput(
        actor=actor, from_user=frm, to_user=to, comment="bcd_zheng is on sick leave"
    )


def test_an_administrator_moves_a_pending_step_and_both_holders_are_told() -> None:
    clock = Clock(MONDAY_11)
    p = _contract(clock)
    clock.later(hours=1)
    _ok(p, _reassign())
    assert current_approvers(p.state) == ["price_lin"]
    assert step_round(p.state, "price_lin") == clock.now
    stage = active_stage(p.state)
    assert stage is not None
    [actor] = [a for slot in stage.slots for a in slot.actors]
    assert actor.via == Via.ADMIN
    event = p.state.history[-1]
    assert event.kind is EventKind.REASSIGNED
    assert (event.actor, event.comment) == ("admin", "bcd_zheng is on sick leave")
    assert (event.data["from"], event.data["to"]) == ("bcd_zheng", "price_lin")
    notices = {n.recipient: n for n in p.driver.records[-1].notices}
    assert notices["price_lin"].template == "reassigned_to"
    assert notices["bcd_zheng"].template == "reassigned_away"
    assert notices["price_lin"].payload["due"] == stage.reply_due.isoformat()  # type: ignore[union-attr]
    # The reply timer starts afresh from the reassignment.
    assert stage.reply_due is not None and stage.reply_due > clock.now
    assert _refused(p, DecideInput(actor="bcd_zheng", action="approve")).code is (
        ErrorCode.NOT_ELIGIBLE
    )
    _ok(p, DecideInput(actor="price_lin", action="approve"))
    assert current_approvers(p.state) == ["dsd_liu"]


def test_reassign_refuses_a_from_who_holds_nothing_and_names_the_holders() -> None:
    p = _contract(Clock(MONDAY_11))
    err = _refused(p, _reassign(frm="dsd_liu"))
    assert err.code is ErrorCode.VALIDATION
    assert err.details["field"] == "from_user"
    assert err.details["holders"] == ["bcd_zheng"]


@pytest.mark.parametrize("to", ["bcd_zheng", "am_li"])
def test_reassign_refuses_the_same_holder_and_the_requester(to: str) -> None:
    p = _contract(Clock(MONDAY_11))
    err = _refused(p, _reassign(to=to))
    assert (err.code, err.details["field"]) == (ErrorCode.VALIDATION, "to_user")


def test_the_requester_may_take_the_step_where_the_policy_lets_them_approve_their_own() -> None:
    resolution = CONTRACT.resolution.model_copy(
        update={"requester_approver": RequesterApprover.SELF}
    )
    p = _contract(Clock(MONDAY_11), CONTRACT.model_copy(update={"resolution": resolution}))
    _ok(p, _reassign(to="am_li"))
    assert current_approvers(p.state) == ["am_li"]


def test_reassign_to_someone_who_left_is_refused_and_changes_nothing() -> None:
    directory = FakeDirectory.demo()
    p = _contract(Clock(MONDAY_11), directory=directory)
    directory.left.add("price_lin")
    err = _refused(p, _reassign())
    assert (err.code, err.details["field"]) == (ErrorCode.VALIDATION, "to_user")
    assert current_approvers(p.state) == ["bcd_zheng"]


def test_nothing_to_reassign_once_the_request_is_returned() -> None:
    p = _contract(Clock(MONDAY_11))
    _ok(p, DecideInput(actor="bcd_zheng", action="return", comment="fix it"))
    assert _refused(p, _reassign()).code is ErrorCode.INVALID_STATE
