"""Decisions made in bulk, in the pure core: never blind, never where the policy forbids.

A bulk item is an ordinary decision (``DecideInput``) with the version of the request
its maker saw (``version_seen``) and ``bulk`` set. The core refuses it with
``version_conflict`` when the request changed since (its ``seq`` moved on), and with
``bulk_not_allowed`` on a stage whose policy says ``bulk: {allowed: false}`` or whose
``max_amount`` the request's amount is above. Both fields absent: judged as before.

A 250,000 contract by am_li: bcd_zheng signs (big_customer_dept_sign), dsd_liu approves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from common.policy_store import load_policies
from domain.core.details import details
from domain.core.inputs import Submit
from domain.errors import HTTP_STATUS, ErrorCode
from domain.policy import BulkDecisions, Policy
from domain.process import CcInput, DecideInput, EventKind
from domain.signing import payload_of
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input
from tests.support.machine_driver import accepted as _ok
from tests.support.machine_driver import refused as _refused

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _with_bulk(rule: BulkDecisions, key: str = "big_customer_dept_sign") -> Policy:
    stages = tuple(
        s.model_copy(update={"bulk": rule}) if s.key == key else s for s in CONTRACT.stages
    )
    return CONTRACT.model_copy(update={"stages": stages})


def _contract(policy: Policy = CONTRACT) -> Request:
    fields = {"contract_no": "HT-1", "settlement_floor_price": "1"}
    p = Request(
        approval_input(policy, Decimal(250000), fields), Clock(T0), Driver(FakeDirectory.demo())
    )
    p.feed(Submit())
    return p


def _bulk(p: Request, actor: str = "bcd_zheng", **changes: object) -> DecideInput:
    return DecideInput(
        actor=actor, action="approve", comment="ok", version_seen=p.state.seq, bulk=True
    ).model_copy(update=changes)


def test_a_decision_on_the_version_the_decider_saw_is_admitted_and_recorded_as_bulk() -> None:
    p = _contract()
    _ok(p, _bulk(p))
    approved = [e for e in p.state.history if e.kind is EventKind.APPROVED]
    assert [e.data.get("bulk") for e in approved] == [True]
    # What follows from it (the stage completing) was not itself decided in bulk.
    completed = [e for e in p.state.history if e.kind is EventKind.STAGE_COMPLETED]
    assert completed and all("bulk" not in e.data for e in completed)
    # The Temporal UI's details say so too.
    assert "Decided in bulk (批量审批): approved by bcd_zheng" in details(p.state)


def test_a_decision_on_a_version_the_request_has_moved_past_is_refused_version_conflict() -> None:
    p = _contract()
    seen = p.state.seq
    _ok(p, CcInput(actor="am_li", people=["fin_he"]))  # the request changes meanwhile
    err = _refused(p, _bulk(p, version_seen=seen))
    assert err.code is ErrorCode.VERSION_CONFLICT
    assert HTTP_STATUS[err.code] == 409
    assert err.details == {"version_seen": seen, "version": p.state.seq}
    # Seen again at its version now, the same decision goes through.
    _ok(p, _bulk(p))


def test_a_decision_without_version_seen_or_bulk_is_judged_as_before() -> None:
    p = _contract(_with_bulk(BulkDecisions(allowed=False)))
    _ok(p, CcInput(actor="am_li", people=["fin_he"]))
    _ok(p, DecideInput(actor="bcd_zheng", action="approve"))
    approved = [e for e in p.state.history if e.kind is EventKind.APPROVED]
    assert "bulk" not in approved[0].data
    assert "in bulk" not in details(p.state)


def test_someone_not_holding_the_step_is_refused_not_eligible_before_any_version_check() -> None:
    p = _contract()
    err = _refused(p, _bulk(p, actor="dsd_liu", version_seen=p.state.seq + 5))
    assert err.code is ErrorCode.NOT_ELIGIBLE


def test_a_stage_that_forbids_bulk_refuses_a_bulk_decision_naming_the_stage() -> None:
    p = _contract(_with_bulk(BulkDecisions(allowed=False)))
    err = _refused(p, _bulk(p))
    assert err.code is ErrorCode.BULK_NOT_ALLOWED
    assert HTTP_STATUS[err.code] == 403
    assert err.details["stage"] == "big_customer_dept_sign"
    assert "Big-customer management department signs" in err.message
    # The same person may still decide it on its own.
    _ok(p, DecideInput(actor="bcd_zheng", action="approve", version_seen=p.state.seq))


def test_a_stage_with_max_amount_refuses_bulk_above_it_and_admits_it_up_to_it() -> None:
    p = _contract(_with_bulk(BulkDecisions(max_amount=Decimal("100000"))))
    err = _refused(p, _bulk(p))
    assert err.code is ErrorCode.BULK_NOT_ALLOWED
    assert err.details["max_amount"] == "100000"
    assert "Contract amount (CNY) 100,000" in err.message
    q = _contract(_with_bulk(BulkDecisions(max_amount=Decimal("250000"))))
    _ok(q, _bulk(q))  # the limit itself is within it


def test_a_bulk_rule_on_another_stage_does_not_touch_this_one() -> None:
    p = _contract(_with_bulk(BulkDecisions(allowed=False), key="deputy_sales_director_approve"))
    _ok(p, _bulk(p))
    err = _refused(p, _bulk(p, actor="dsd_liu"))
    assert err.code is ErrorCode.BULK_NOT_ALLOWED
    assert err.details["stage"] == "deputy_sales_director_approve"


def test_absent_bulk_fields_are_neither_sent_nor_signed_and_policies_dump_as_before() -> None:
    plain = DecideInput(actor="bcd_zheng", action="approve")
    assert payload_of(plain) == {"actor": "bcd_zheng", "action": "approve", "comment": None}
    bulk = DecideInput(actor="bcd_zheng", action="approve", version_seen=3, bulk=True)
    assert payload_of(bulk)["version_seen"] == 3 and payload_of(bulk)["bulk"] is True
    assert all("bulk" not in s for s in CONTRACT.model_dump(mode="json")["stages"])
    forbidden = _with_bulk(BulkDecisions(allowed=False)).model_dump(mode="json")
    assert forbidden["stages"][2]["bulk"] == {"allowed": False, "max_amount": None}


@given(offset=st.integers(min_value=-3, max_value=3))
def test_only_the_current_version_is_admitted(offset: int) -> None:
    p = _contract()
    seen = p.state.seq + offset
    msg = _bulk(p, version_seen=max(seen, 0))
    if max(seen, 0) == p.state.seq:
        _ok(p, msg)
    else:
        assert _refused(p, msg).code is ErrorCode.VERSION_CONFLICT
