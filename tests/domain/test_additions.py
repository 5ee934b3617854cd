"""Approvers added to a stage (加签) and people copied in mid-flow (抄送), in the pure core.

A 250,000 contract by am_li: bcd_zheng decides the first stage, dsd_liu the second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from common.policy_store import load_policies
from domain.core.deadlines import DeadlineKind
from domain.core.details import details
from domain.core.inputs import DeadlineReached, Handle, Submit
from domain.core.projection import view_of
from domain.core.queries import active_stage, current_approvers, step_round
from domain.errors import ErrorCode
from domain.policy import AddApprovers, Policy
from domain.process import (
    AddApproversInput,
    CcInput,
    DecideInput,
    EventKind,
    Status,
)
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _ok

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _contract(clock: Callable[[], datetime] | None = None, policy: Policy = CONTRACT) -> Request:
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    p = Request(
        approval_input(policy, Decimal(250000), fields),
        clock or Clock(T0),
        Driver(FakeDirectory.demo()),
    )
    p.feed(Submit())
    assert current_approvers(p.state) == ["bcd_zheng"]
    return p


def _refused(p: Request, msg: Any) -> tuple[ErrorCode, dict[str, Any]]:
    seq = p.state.seq
    refusal = p.feed(Handle(msg, from_signal=False))
    assert refusal is not None
    assert p.state.seq == seq  # nothing written
    return refusal.code, refusal.details


def _add(people: list[str], position: str, mode: str = "all", actor: str = "bcd_zheng") -> Any:
    return AddApproversInput.model_validate(
        {
            "actor": actor,
            "people": people,
            "position": position,
            "mode": mode,
            "comment": "the price needs pricing's eye",
        }
    )


def _approve(p: Request, actor: str) -> None:
    _ok(p, DecideInput(actor=actor, action="approve"))


def _stage_key(p: Request) -> str:
    stage = active_stage(p.state)
    assert stage is not None
    return stage.key


def test_added_before_decide_first_then_the_step_comes_back_to_the_adder() -> None:
    clock = Clock(T0)
    p = _contract(clock)
    first = _stage_key(p)
    clock.later(hours=1)
    _add_ok = _add(["price_lin", "fh_gao"], "before", "all")
    _ok(p, _add_ok)
    assert current_approvers(p.state) == ["fh_gao", "price_lin"]
    # The adder is held: they may not decide until those added approved.
    code, _ = _refused(p, DecideInput(actor="bcd_zheng", action="approve"))
    assert code is ErrorCode.NOT_ELIGIBLE
    event = p.state.history[-1]
    assert event.kind is EventKind.APPROVERS_ADDED
    assert (event.actor, event.comment) == ("bcd_zheng", "the price needs pricing's eye")
    assert event.data["position"] == "before"
    notices = {n.recipient: n for n in p.driver.records[-1].notices}
    assert set(notices) == {"price_lin", "fh_gao"}
    assert notices["price_lin"].template == "approver_added"
    # The route shows them as added, by whom.
    view = view_of(p.state)
    added = [s for s in view.stages[0].slots if s.added_by == "bcd_zheng"]
    assert [a.user for s in added for a in s.actors] == ["price_lin", "fh_gao"]
    assert {s.added_as for s in added} == {"before"}

    _approve(p, "price_lin")
    assert current_approvers(p.state) == ["fh_gao"]
    clock.later(minutes=5)
    _approve(p, "fh_gao")
    # Back to the adder, in a new round of their step.
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert step_round(p.state, "bcd_zheng") == clock.now
    assert p.state.history[-1].kind is EventKind.ASSIGNED
    assert _stage_key(p) == first
    _approve(p, "bcd_zheng")
    assert _stage_key(p) != first
    assert current_approvers(p.state) == ["dsd_liu"]


def test_added_after_follow_once_the_adder_approved_in_turn() -> None:
    p = _contract()
    _ok(p, _add(["price_lin", "fh_gao"], "after", "in_turn"))
    assert current_approvers(p.state) == ["bcd_zheng"]  # nobody added decides yet
    view = view_of(p.state)
    assert [[a.user for a in s.queued] for s in view.stages[0].slots[1:]] == [
        ["price_lin"],
        ["fh_gao"],
    ]
    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["price_lin"]
    _approve(p, "price_lin")
    assert current_approvers(p.state) == ["fh_gao"]
    _approve(p, "fh_gao")
    assert current_approvers(p.state) == ["dsd_liu"]


def test_added_alongside_all_must_approve_too_and_any_may_decide_for_the_adder() -> None:
    p = _contract()
    _ok(p, _add(["price_lin"], "alongside", "all"))
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]
    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["price_lin"]  # the stage waits for the added
    _approve(p, "price_lin")
    assert current_approvers(p.state) == ["dsd_liu"]

    q = _contract()
    _ok(q, _add(["price_lin"], "alongside", "any"))
    assert current_approvers(q.state) == ["bcd_zheng", "price_lin"]
    _approve(q, "price_lin")  # decides the adder's step, on their behalf
    assert q.state.history[-3].on_behalf_of == "bcd_zheng"
    assert current_approvers(q.state) == ["dsd_liu"]


def test_added_alongside_in_turn_open_one_after_another_beside_the_adder() -> None:
    p = _contract()
    _ok(p, _add(["price_lin", "fh_gao"], "alongside", "in_turn"))
    assert current_approvers(p.state) == ["bcd_zheng", "price_lin"]  # the first opens now
    view = view_of(p.state)
    assert [[a.user for a in s.queued] for s in view.stages[0].slots[1:]] == [[], ["fh_gao"]]
    _approve(p, "bcd_zheng")  # the adder's own step is done; the stage waits for theirs
    assert current_approvers(p.state) == ["price_lin"]
    _approve(p, "price_lin")
    assert current_approvers(p.state) == ["fh_gao"]  # the next one, once the first approved
    _approve(p, "fh_gao")
    assert current_approvers(p.state) == ["dsd_liu"]  # the stage completes with all of them


def test_added_alongside_in_turn_the_stage_waits_for_the_adder_too() -> None:
    p = _contract()
    _ok(p, _add(["price_lin", "fh_gao"], "alongside", "in_turn"))
    _approve(p, "price_lin")
    assert current_approvers(p.state) == ["bcd_zheng", "fh_gao"]
    _approve(p, "fh_gao")
    assert current_approvers(p.state) == ["bcd_zheng"]  # the adder has not approved yet
    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["dsd_liu"]


def test_one_added_alongside_in_turn_who_rejects_rejects_the_request() -> None:
    p = _contract()
    _ok(p, _add(["price_lin", "fh_gao"], "alongside", "in_turn"))
    _approve(p, "price_lin")
    _ok(p, DecideInput(actor="fh_gao", action="reject"))
    assert p.state.status is Status.REJECTED


def test_a_request_that_ran_before_alongside_in_turn_still_refuses_it() -> None:
    p = _contract()
    p.driver.patched = False  # replaying a history made when it was refused
    code, data = _refused(p, _add(["price_lin"], "alongside", "in_turn"))
    assert (code, data["field"]) == (ErrorCode.VALIDATION, "mode")


def test_an_added_approver_who_rejects_rejects_the_request() -> None:
    p = _contract()
    _ok(p, _add(["price_lin"], "before", "any"))
    _ok(p, DecideInput(actor="price_lin", action="reject"))
    assert p.state.status is Status.REJECTED


@pytest.mark.parametrize(
    ("msg", "code", "field"),
    [
        (_add(["am_li"], "before"), ErrorCode.VALIDATION, "people"),  # the requester
        (_add(["bcd_zheng"], "before"), ErrorCode.VALIDATION, "people"),  # oneself
        (_add(["price_lin"], "before", actor="dsd_liu"), ErrorCode.NOT_ELIGIBLE, None),
        (_add(["nobody_here"], "before"), ErrorCode.VALIDATION, "people"),  # not in directory
    ],
)
def test_additions_the_core_refuses(msg: Any, code: ErrorCode, field: str | None) -> None:
    p = _contract()
    got, data = _refused(p, msg)
    assert got is code
    if field is not None:
        assert data["field"] == field


def test_a_reason_is_required_and_nobody_pending_is_added_twice() -> None:
    p = _contract()
    no_reason = _add(["price_lin"], "before").model_copy(update={"comment": "  "})
    assert _refused(p, no_reason)[0] is ErrorCode.VALIDATION
    _ok(p, _add(["price_lin"], "after"))
    code, data = _refused(p, _add(["price_lin"], "alongside"))
    assert (code, data["pending"]) == (ErrorCode.VALIDATION, ["price_lin"])


def test_a_stage_may_forbid_additions_or_limit_them_to_the_reporting_line() -> None:
    def with_rule(rule: AddApprovers) -> Policy:
        stages = tuple(st.model_copy(update={"add_approvers": rule}) for st in CONTRACT.stages)
        return CONTRACT.model_copy(update={"stages": stages})

    p = _contract(policy=with_rule(AddApprovers(allowed=False)))
    assert _refused(p, _add(["price_lin"], "before"))[0] is ErrorCode.FORBIDDEN
    p = _contract(policy=with_rule(AddApprovers(within="reporting_line")))
    code, data = _refused(p, _add(["price_lin"], "before"))  # another branch of the tree
    assert (code, list(data["refused"])) == (ErrorCode.VALIDATION, ["price_lin"])
    _ok(p, _add(["dsd_liu"], "before"))  # bcd_zheng's own manager


def test_a_policy_without_the_option_dumps_as_it_did() -> None:
    assert "add_approvers" not in CONTRACT.stages[0].model_dump()


def test_added_people_are_reminded_and_escalated_when_they_do_not_reply() -> None:
    clock = Clock(T0)
    p = _contract(clock)
    _ok(p, _add(["price_lin"], "before", "any"))
    deadline = p.next_deadline()
    assert deadline is not None and deadline.kind is DeadlineKind.REPLY
    clock.now = deadline.at
    p.feed(DeadlineReached(DeadlineKind.REPLY))
    kinds = [e.kind for e in p.state.history[-2:]]
    assert kinds == [EventKind.REMINDED, EventKind.ESCALATED]
    assert p.state.history[-2].data["people"] == ["price_lin"]  # not the held adder
    assert p.state.history[-1].data["to"] == ["dgm_zhao"]  # price_lin's manager
    assert "Added approvers (加签): price_lin, dgm_zhao (before, by bcd_zheng)" in details(p.state)


def test_the_requester_or_a_current_approver_copies_people_in() -> None:
    p = _contract()
    _ok(p, CcInput(actor="am_li", people=["fin_he"], comment="for the invoice"))
    assert p.state.cc == ("fin_he",)
    event = p.state.history[-1]
    assert (event.kind, event.actor, event.data) == (
        EventKind.CC_ADDED,
        "am_li",
        {"people": ["fin_he"]},
    )
    assert [(n.recipient, n.template) for n in p.driver.records[-1].notices] == [
        ("fin_he", "cc_added")
    ]
    _ok(p, CcInput(actor="bcd_zheng", people=["fin_he", "fh_gao"]))
    assert p.state.cc == ("fin_he", "fh_gao")
    assert current_approvers(p.state) == ["bcd_zheng"]  # copied people decide nothing
    assert _refused(p, CcInput(actor="dsd_liu", people=["om_wu"]))[0] is ErrorCode.FORBIDDEN
    assert _refused(p, CcInput(actor="am_li", people=["fin_he"]))[0] is ErrorCode.VALIDATION
    assert _refused(p, CcInput(actor="am_li", people=["ghost"]))[0] is ErrorCode.VALIDATION
    # They are told of the outcome like people copied at submission.
    _ok(p, DecideInput(actor="bcd_zheng", action="reject"))
    outcome = {n.recipient for n in p.driver.records[-1].notices if n.template == "cc_outcome"}
    assert outcome == {"fin_he", "fh_gao"}


def test_a_signal_the_directory_refuses_is_recorded_as_ignored() -> None:
    p = _contract()
    refusal = p.feed(Handle(_add(["ghost"], "before"), from_signal=True))
    assert refusal is not None and refusal.code is ErrorCode.VALIDATION
    event = p.state.history[-1]
    assert (event.kind, event.actor, event.data["signal"]) == (
        EventKind.IGNORED,
        "bcd_zheng",
        "AddApproversInput",
    )
    assert current_approvers(p.state) == ["bcd_zheng"]  # nothing else changed


def test_someone_acting_for_the_adder_adds_and_copies_on_their_behalf() -> None:
    p = _contract()
    _ok(p, _add(["price_lin"], "alongside", "any"))  # price_lin holds bcd_zheng's step too
    _ok(p, CcInput(actor="price_lin", people=["fin_he"]))
    assert (p.state.history[-1].kind, p.state.history[-1].on_behalf_of) == (
        EventKind.CC_ADDED,
        "bcd_zheng",
    )
    _ok(p, _add(["fh_gao"], "after", actor="price_lin"))
    assert (p.state.history[-1].kind, p.state.history[-1].on_behalf_of) == (
        EventKind.APPROVERS_ADDED,
        "bcd_zheng",
    )
