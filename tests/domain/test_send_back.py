"""Sending a request back to a stage it has passed, or to its requester (退回到指定节点).

A 350,000 contract by am_li runs three stages: bcd_zheng signs, dsd_liu signs,
sd_chen approves. The policy's ``send_back.resume`` says what follows the new
decision: ``rerun`` (the default) runs the route on from the stage sent back to,
``jump_back`` goes straight back to the stage that sent it. Decisions of the stages
passed again are kept on their stage as superseded, never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.policy_store import load_policies
from domain.core import admission
from domain.core.details import details
from domain.core.inputs import Submit
from domain.core.projection import view_of
from domain.core.queries import current_approvers, step_round
from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from domain.policy import Policy, SendBackOptions, SendBackResume
from domain.process import (
    DecideInput,
    EventKind,
    ResubmitInput,
    SendBackInput,
    StageState,
    StageStatus,
    Status,
    SupersededDecision,
)
from domain.working_time import clock_start
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _ok
from tests.support.machine_driver import refused as _refused

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
JUMP_BACK = CONTRACT.model_copy(
    update={"send_back": SendBackOptions(resume=SendBackResume.JUMP_BACK)}
)
FIELDS = {"contract_no": "HT-1", "settlement_floor_price": "1"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGN, DEPUTY, DIRECTOR = (
    "big_customer_dept_sign",
    "deputy_sales_director_sign",
    "sales_director_approve",
)


def _contract(clock: Callable[[], datetime], driver: Driver, policy: Policy = CONTRACT) -> Request:
    return Request(approval_input(policy, Decimal(350000), FIELDS), clock, driver)


def _approve(p: Request, actor: str) -> None:
    _ok(p, DecideInput(actor=actor, action="approve"))


def _at_director(clock: Clock, policy: Policy = CONTRACT) -> tuple[Request, Driver]:
    """The contract waiting on sd_chen, its first two stages approved an hour apart."""
    driver = Driver(FakeDirectory.demo())
    p = _contract(clock, driver, policy)
    p.feed(Submit())
    clock.later(hours=1)
    _approve(p, "bcd_zheng")
    clock.later(hours=1)
    _approve(p, "dsd_liu")
    clock.later(hours=1)
    assert current_approvers(p.state) == ["sd_chen"]
    return p, driver


def _back(actor: str, to: str | int, comment: str = "the floor price is wrong") -> SendBackInput:
    return SendBackInput(actor=actor, to_stage=to, comment=comment)


def _stage(p: Request, key: str) -> StageState:
    return next(st for st in p.state.stages if st.key == key)


# ---------------------------------------------------------------- rerun


def test_sent_back_to_a_passed_stage_it_decides_again_in_a_new_round_and_the_route_reruns() -> None:
    clock = Clock(T0)
    p, driver = _at_director(clock)
    resolve_due = p.state.resolve_due
    first_round = T0
    seen = len(driver.records)

    _ok(p, _back("sd_chen", SIGN))

    s = p.state
    assert s.status is Status.IN_REVIEW and s.stage_index == 0
    assert current_approvers(s) == ["bcd_zheng"]
    # Re-resolved now: a new round, a new reply deadline; the resolve deadline runs on.
    assert step_round(s, "bcd_zheng") == clock.now != first_round
    sign = _stage(p, SIGN)
    span = CONTRACT.timers.reply
    restarted = driver.directory.calendar.due(clock_start(clock.now, span), span).at
    assert sign.status is StageStatus.ACTIVE and sign.reply_due == restarted
    assert s.resolve_due == resolve_due
    # The decisions passed again are kept, superseded by sd_chen's send-back.
    kinds = [r.event.kind for r in driver.records[seen:]]
    assert kinds == [EventKind.SENT_BACK, EventKind.ASSIGNED]
    event = driver.records[seen].event
    assert event.actor == "sd_chen" and event.comment == "the floor price is wrong"
    assert event.data["from_stage"] == DIRECTOR and event.data["to_stage"] == SIGN
    assert event.data["resume"] == "rerun"
    assert event.data["decide_again"] == [SIGN, DEPUTY, DIRECTOR]
    assert sign.superseded == (
        SupersededDecision(
            label=sign.superseded[0].label,
            decision="approve",
            decided_by="bcd_zheng",
            decided_at=T0 + timedelta(hours=1),
            superseded_at=clock.now,
            superseded_by="sd_chen",
            event_seq=event.seq,
        ),
    )
    deputy = _stage(p, DEPUTY)
    assert deputy.status is StageStatus.PENDING and not deputy.slots
    assert [d.decided_by for d in deputy.superseded] == ["dsd_liu"]
    director = _stage(p, DIRECTOR)
    assert director.status is StageStatus.PENDING and director.superseded == ()
    # Told: the people of the stage sent back to, asked to decide again.
    notices = driver.records[seen + 1].notices
    assert [(n.recipient, n.template) for n in notices] == [("bcd_zheng", "sent_back")]
    assert notices[0].payload["stage"] == sign.name
    # The view shows the superseded decisions and the send-back.
    view = view_of(s)
    assert view.stages[0].superseded[0].superseded_by == "sd_chen"
    assert view.sent_back is not None and view.sent_back.to_key == SIGN
    assert "Last sent back" in details(s) and f"to *{SIGN}*" in details(s)

    # A decision link of the old round no longer acts (410 on the link page).
    old = DecideInput(actor="bcd_zheng", action="approve", round_since=first_round)
    with pytest.raises(DomainError) as info:
        admission.check(s, CONTRACT, old)
    assert info.value.code is ErrorCode.ROUND_ENDED

    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["dsd_liu"]  # rerun: the next stage again
    _approve(p, "dsd_liu")
    _approve(p, "sd_chen")
    assert p.state.status is not Status.IN_REVIEW
    assert [r.event.kind for r in driver.records].count(EventKind.REQUEST_APPROVED) == 1


def test_a_stage_is_named_by_its_index_too() -> None:
    clock = Clock(T0)
    p, _ = _at_director(clock)
    _ok(p, _back("sd_chen", 1))
    assert current_approvers(p.state) == ["dsd_liu"]
    # rerun from the deputy: the first stage's approval stands.
    assert _stage(p, SIGN).status is StageStatus.APPROVED
    assert _stage(p, SIGN).superseded == ()
    assert [d.decided_by for d in _stage(p, DEPUTY).superseded] == ["dsd_liu"]


# ----------------------------------------------------------------- jump back


def test_under_jump_back_the_stage_sent_back_to_decides_then_the_route_jumps_back() -> None:
    clock = Clock(T0)
    p, driver = _at_director(clock, JUMP_BACK)
    _ok(p, _back("sd_chen", SIGN))
    assert current_approvers(p.state) == ["bcd_zheng"]
    # The deputy's approval stands: only the stage sent back to and the sender decide again.
    assert _stage(p, DEPUTY).status is StageStatus.APPROVED
    assert _stage(p, DEPUTY).superseded == ()
    sent = driver.records[-2].event
    assert sent.kind is EventKind.SENT_BACK and sent.data["decide_again"] == [SIGN, DIRECTOR]
    assert "then straight back to *sales_director_approve*" in details(p.state)

    clock.later(minutes=10)
    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["sd_chen"]
    assert step_round(p.state, "sd_chen") == clock.now  # a new round for the sender too
    completed = [r.event for r in driver.records if r.event.kind is EventKind.STAGE_COMPLETED]
    assert completed[-1].data["jumps_back_to"] == DIRECTOR
    assert p.state.return_to == ()
    _approve(p, "sd_chen")
    assert p.state.status is not Status.IN_REVIEW


def test_nested_send_backs_under_jump_back_come_back_one_sender_at_a_time() -> None:
    clock = Clock(T0)
    p, _ = _at_director(clock, JUMP_BACK)
    _ok(p, _back("sd_chen", DEPUTY))
    _ok(p, _back("dsd_liu", SIGN, "ask the customer first"))
    assert current_approvers(p.state) == ["bcd_zheng"]
    _approve(p, "bcd_zheng")
    assert current_approvers(p.state) == ["dsd_liu"]
    _approve(p, "dsd_liu")
    assert current_approvers(p.state) == ["sd_chen"]


# ----------------------------------------------------------------- requester


def test_sent_back_to_the_requester_it_is_returned_and_reruns_from_the_start() -> None:
    clock = Clock(T0)
    p, driver = _at_director(clock)
    seen = len(driver.records)
    _ok(p, _back("sd_chen", "requester"))
    s = p.state
    assert s.status is Status.RETURNED and current_approvers(s) == []
    span = CONTRACT.timers.resubmit
    assert s.resubmit_due == driver.directory.calendar.due(clock_start(clock.now, span), span).at
    (record,) = driver.records[seen:]
    assert record.event.kind is EventKind.SENT_BACK
    assert record.event.data["to_stage"] == "requester"
    assert [(n.recipient, n.template) for n in record.notices] == [("am_li", "return")]
    assert [len(st.superseded) for st in s.stages] == [1, 1, 0]
    assert "the requester (am_li)" in details(s)

    clock.later(hours=2)
    _ok(p, ResubmitInput(actor="am_li", comment="fixed"))
    assert current_approvers(p.state) == ["bcd_zheng"]
    # The route resolved again keeps what was superseded, stage by stage.
    assert [len(st.superseded) for st in p.state.stages] == [1, 1, 0]


def test_under_jump_back_a_resubmission_goes_straight_back_to_the_sender() -> None:
    clock = Clock(T0)
    p, driver = _at_director(clock, JUMP_BACK)
    _ok(p, _back("sd_chen", "requester"))
    assert _stage(p, SIGN).status is StageStatus.APPROVED
    _ok(p, ResubmitInput(actor="am_li", comment="fixed"))
    assert current_approvers(p.state) == ["sd_chen"]
    assert driver.records[-2].event.data["jumps_back_to"] == DIRECTOR
    assert [d.decided_by for st in p.state.stages for d in st.superseded] == []


def test_under_jump_back_a_resubmission_that_changes_the_route_runs_it_from_the_start() -> None:
    clock = Clock(T0)
    p, driver = _at_director(clock, JUMP_BACK)
    _ok(p, _back("sd_chen", "requester"))
    _ok(p, ResubmitInput(actor="am_li", amount=Decimal(250000)))
    assert [st.key for st in p.state.stages] == [SIGN, "deputy_sales_director_approve"]
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert "jumps_back_to" not in driver.records[-2].event.data
    # The approvals given on the old route no longer count: superseded by the resubmission.
    (gone,) = p.state.stages[0].superseded
    assert gone.decided_by == "bcd_zheng" and gone.superseded_by == "am_li"
    assert p.state.return_to == ()


def test_a_plain_return_after_a_jump_back_send_back_reruns_from_the_start() -> None:
    clock = Clock(T0)
    p, _ = _at_director(clock, JUMP_BACK)
    _ok(p, _back("sd_chen", DEPUTY))
    _ok(p, DecideInput(actor="dsd_liu", action="return", comment="needs the customer's stamp"))
    assert p.state.return_to == ()
    _ok(p, ResubmitInput(actor="am_li"))
    assert current_approvers(p.state) == ["bcd_zheng"]


# ------------------------------------------------------------------ refusals


def test_only_a_holder_of_the_active_stage_may_send_back_and_only_to_a_passed_stage() -> None:
    clock = Clock(T0)
    p, _ = _at_director(clock)
    refused = _refused(p, _back("dsd_liu", SIGN))
    assert refused.code is ErrorCode.NOT_ELIGIBLE and HTTP_STATUS[refused.code] == 403
    for to in (DIRECTOR, 2, 7, "no_such_stage"):
        refused = _refused(p, _back("sd_chen", to))
        assert refused.code is ErrorCode.VALIDATION, to
        assert refused.details["field"] == "to_stage"
        assert refused.details["allowed"] == ["requester", SIGN, DEPUTY]
    refused = _refused(p, _back("sd_chen", DIRECTOR))
    assert "not one the request has passed" in refused.message


def test_the_first_stage_can_send_back_to_the_requester_only() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = _contract(clock, driver)
    p.feed(Submit())
    refused = _refused(p, _back("bcd_zheng", SIGN))
    assert refused.details["allowed"] == ["requester"]
    _ok(p, _back("bcd_zheng", "requester"))
    assert p.state.status is Status.RETURNED
    refused = _refused(p, _back("bcd_zheng", "requester"))
    assert refused.code is ErrorCode.INVALID_STATE and HTTP_STATUS[refused.code] == 409


def test_a_policy_may_forbid_sending_back() -> None:
    clock = Clock(T0)
    closed = CONTRACT.model_copy(update={"send_back": SendBackOptions(allowed=False)})
    p, _ = _at_director(clock, closed)
    refused = _refused(p, _back("sd_chen", SIGN))
    assert refused.code is ErrorCode.FORBIDDEN and HTTP_STATUS[refused.code] == 403
    assert "cannot be sent back" in refused.message
    _ok(p, DecideInput(actor="sd_chen", action="return"))  # today's return still works


def test_a_send_back_says_why() -> None:
    for blank in ("", "  \n "):
        with pytest.raises(ValidationError):
            SendBackInput(actor="sd_chen", to_stage=SIGN, comment=blank)
    with pytest.raises(ValidationError):
        SendBackInput.model_validate({"actor": "sd_chen", "to_stage": SIGN})
    with pytest.raises(ValidationError):
        SendBackInput.model_validate({"actor": "sd_chen", "to_stage": True, "comment": "x"})


# ------------------------------------------------------------------- policies


def test_policies_without_the_option_send_back_and_rerun() -> None:
    assert all(p.send_back == SendBackOptions() for p in POLICIES.values())
    assert SendBackOptions().allowed and SendBackOptions().resume is SendBackResume.RERUN
    data = CONTRACT.model_dump(mode="json", exclude={"send_back"})
    assert Policy.model_validate(data).send_back == SendBackOptions()
    jump = Policy.model_validate({**data, "send_back": {"resume": "jump_back"}})
    assert jump.send_back.resume is SendBackResume.JUMP_BACK
    with pytest.raises(ValidationError):
        Policy.model_validate({**data, "send_back": {"resume": "sideways"}})


def test_no_stage_may_be_keyed_requester() -> None:
    data = CONTRACT.model_dump(mode="json")
    data["stages"][0]["key"] = "requester"
    with pytest.raises(ValidationError, match="must not be 'requester'"):
        Policy.model_validate(data)
