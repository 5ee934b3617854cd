"""Revoke after approval (撤销): the rule and its step, without any server.

Within the window its policy sets (``revoke: {within: P31D}``), the requester or an
administrator takes an approval back with a reason. What still followed the approval
ends (milestones close as revoked, a payout not made yet is never made), payments
already recorded stay and are listed as needing reversal, everyone who decided is
told. A policy without the option behaves as before: its approvals cannot be revoked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.policy_store import load_policies
from domain.core import admission
from domain.core.admission import closed_revoke_refusal
from domain.core.deadlines import DeadlineKind
from domain.core.details import details
from domain.core.inputs import DeadlineReached, Handle, Submit
from domain.core.projection import view_of
from domain.core.queries import current_approvers
from domain.core.steps import put
from domain.durations import Span
from domain.errors import HTTP_STATUS, DomainError, ErrorCode
from domain.policy import Policy, RevokeSpec
from domain.process import (
    DecideInput,
    EventKind,
    MilestoneInput,
    MilestoneStatus,
    PayoutState,
    RevokeInput,
    Status,
    WithdrawInput,
)
from tests.support.machine_driver import Clock, Driver, FakeDirectory, Request, approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = Span(days=31)


def revocable(policy: Policy) -> Policy:
    return policy.model_copy(update={"revoke": RevokeSpec(within=WINDOW)})


GIFT = POLICIES["customer_gift"]
GIFT_FIELDS = {"gift": "Mooncakes, 300 CNY", "reason": "Top customer"}
BULK = POLICIES["retail_bulk_discount"]
BULK_FIELDS = {"gross_margin_pct": "12"}
DISCOUNT = POLICIES["special_discount"]
DISCOUNT_FIELDS = {"invoice_total": "10000", "discount_pct": "5", "reason": "Loyal customer"}
CREDIT = POLICIES["credit_line"]
CREDIT_FIELDS = {
    "cooperation_months": 6,
    "avg_monthly_orders": "8000",
    "credit_rating": "good",
    "profile": "A long-standing customer",
    "assessment": "Pays on time",
}


def submitted(
    policy: Policy, amount: str, fields: dict[str, Any], clock: Clock, driver: Driver | None = None
) -> Request:
    p = Request(
        approval_input(policy, Decimal(amount), fields),
        clock,
        driver or Driver(FakeDirectory.demo()),
    )
    assert p.feed(Submit()) is None
    return p


def approved(
    policy: Policy, amount: str, fields: dict[str, Any], clock: Clock, driver: Driver | None = None
) -> Request:
    """Submitted, then approved by everyone on the route, stage after stage."""
    p = submitted(policy, amount, fields, clock, driver)
    while p.state.status is Status.IN_REVIEW:
        for user in current_approvers(p.state):
            clock.later(minutes=5)
            assert p.feed(Handle(DecideInput(actor=user, action="approve"), False)) is None
    return p


def refusal(p: Request, msg: RevokeInput) -> DomainError:
    seq = p.state.seq
    err = p.feed(Handle(msg, from_signal=False))
    assert err is not None
    assert p.state.seq == seq  # a refused update writes nothing
    return err


def revoke(actor: str = "am_li", **kw: Any) -> RevokeInput:
    return RevokeInput(actor=actor, comment=kw.pop("comment", "The customer cancelled"), **kw)


def test_a_final_approval_stays_open_for_its_window_and_the_requester_revokes_it() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = approved(revocable(GIFT), "300", GIFT_FIELDS, clock, driver)
    approved_at = clock.now
    assert p.state.status is Status.APPROVED
    assert not p.finished  # kept open: nothing follows, but it may still be revoked
    assert p.state.revocable_until == approved_at + WINDOW
    deadline = p.next_deadline()
    assert deadline is not None and deadline.kind is DeadlineKind.REVOKE_WINDOW
    assert deadline.at == approved_at + WINDOW
    assert "May be revoked until" in details(p.state)

    clock.later(days=30)
    assert p.feed(Handle(revoke(comment="The customer cancelled the order"), False)) is None

    assert p.finished and p.state.status is Status.REVOKED and p.state.closed_at == clock.now
    assert p.next_deadline() is None
    event = p.state.history[-1]
    assert event.kind is EventKind.REVOKED and event.actor == "am_li"
    assert event.comment == "The customer cancelled the order"
    assert event.data["as"] == "requester" and event.data["was"] == "approved"
    assert event.data["to_reverse"] == []
    told = {n.recipient for n in driver.records[-1].notices if n.template == "revoked"}
    assert told == {"csc_tang", "bgm_feng"}  # everyone who decided
    assert driver.records[-1].view is not None
    assert driver.records[-1].view.status == "revoked"
    assert "Revoked" in details(p.state)


def test_the_revoke_window_ends_by_its_deadline_and_closes_the_approval() -> None:
    clock = Clock(T0)
    p = approved(revocable(GIFT), "300", GIFT_FIELDS, clock)
    clock.now = p.state.revocable_until or T0
    assert p.feed(DeadlineReached(DeadlineKind.REVOKE_WINDOW)) is None
    assert p.finished and p.state.status is Status.APPROVED
    assert p.state.history[-1].kind is EventKind.REVOKE_WINDOW_CLOSED
    assert p.next_deadline() is None


def test_without_the_option_an_approval_closes_at_once_and_cannot_be_revoked() -> None:
    clock = Clock(T0)
    p = approved(GIFT, "300", GIFT_FIELDS, clock)
    assert GIFT.revoke is None
    assert p.finished and p.state.status is Status.APPROVED  # today's behaviour
    assert p.state.revocable_until is None
    request_approved = next(e for e in p.state.history if e.kind is EventKind.REQUEST_APPROVED)
    assert "revocable_until" not in request_approved.data  # the same record as before
    with pytest.raises(DomainError) as info:
        admission.check(p.state, GIFT, revoke())
    assert info.value.code is ErrorCode.INVALID_STATE
    assert "sets no revoke window" in info.value.message


def test_a_revoke_after_its_window_is_refused_naming_when_it_ended() -> None:
    clock = Clock(T0)
    p = approved(revocable(BULK), "3000", BULK_FIELDS, clock)
    assert p.state.label == "awaiting_deposit"
    until = p.state.revocable_until
    assert until is not None
    clock.now = until
    err = refusal(p, revoke())
    assert err.code is ErrorCode.INVALID_STATE and HTTP_STATUS[err.code] == 409
    assert "revoke window of this approval ended at" in err.message
    assert err.details["revocable_until"] == until.isoformat()


def test_a_partly_paid_deposit_closes_as_revoked_and_its_payments_need_reversal() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = approved(revocable(BULK), "3000", BULK_FIELDS, clock, driver)
    deciders = {e.actor for e in p.state.history if e.kind is EventKind.APPROVED}
    pay = MilestoneInput(actor="fin_he", milestone="deposit", amount=Decimal(400), reference="B-1")
    assert p.feed(Handle(pay, False)) is None
    clock.later(days=1)

    assert p.feed(Handle(revoke(), False)) is None

    assert p.state.status is Status.REVOKED and p.finished
    deposit = p.state.milestones[0]
    assert deposit.status is MilestoneStatus.REVOKED
    assert deposit.paid == Decimal(400)  # the payment stays in the history
    (reversal,) = p.state.to_reverse
    assert (reversal.milestone, reversal.amount, reversal.reference, reversal.by) == (
        "deposit",
        Decimal(400),
        "B-1",
        "fin_he",
    )
    event = p.state.history[-1]
    assert event.data["was"] == "awaiting_deposit"
    assert event.data["milestones_revoked"] == ["deposit"]
    assert [r["reference"] for r in event.data["to_reverse"]] == ["B-1"]
    view = driver.records[-1].view
    assert view is not None and [r.reference for r in view.to_reverse] == ["B-1"]
    told = {n.recipient for n in driver.records[-1].notices if n.template == "revoked"}
    assert told == deciders | {"fin_he"}  # who decided, and who recorded the payment


def completed(clock: Clock, driver: Driver | None = None) -> Request:
    """A bulk discount whose deposit was paid in full, in two payments: completed."""
    p = approved(revocable(BULK), "3000", BULK_FIELDS, clock, driver)
    for amount, reference in (("400", "B-1"), ("500", "B-2")):
        clock.later(hours=2)
        pay = MilestoneInput(
            actor="fin_he", milestone="deposit", amount=Decimal(amount), reference=reference
        )
        assert p.feed(Handle(pay, False)) is None
    return p


def test_a_completed_request_stays_open_for_its_window_and_its_payments_need_reversal() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = completed(clock, driver)
    until = p.state.revocable_until
    assert p.state.status is Status.COMPLETED and until is not None
    assert not p.finished  # every milestone met, but it may still be revoked
    assert p.state.history[-1].kind is EventKind.COMPLETED
    assert p.state.history[-1].data["revocable_until"] == until.isoformat()
    deadline = p.next_deadline()
    assert deadline is not None and deadline.kind is DeadlineKind.REVOKE_WINDOW
    assert deadline.at == until
    assert "May be revoked until" in details(p.state)
    admission.check(p.state, p.policy, revoke(), clock.now)  # completed, yet revocable
    with pytest.raises(DomainError) as info:  # nothing else is open on it
        admission.check(p.state, p.policy, WithdrawInput(actor="am_li"), clock.now)
    assert info.value.code is ErrorCode.INVALID_STATE

    clock.later(days=3)
    assert p.feed(Handle(revoke(), False)) is None

    assert p.finished and p.state.status is Status.REVOKED
    assert p.state.milestones[0].status is MilestoneStatus.MET  # met stays met
    assert [(r.reference, r.amount) for r in p.state.to_reverse] == [
        ("B-1", Decimal(400)),
        ("B-2", Decimal(500)),
    ]
    event = p.state.history[-1]
    assert event.data["was"] == "completed" and event.data["milestones_revoked"] == []
    assert "fin_he" in {n.recipient for n in driver.records[-1].notices}


def test_the_window_closing_ends_a_completed_request_as_completed() -> None:
    clock = Clock(T0)
    p = completed(clock)
    clock.now = p.state.revocable_until or T0
    assert p.feed(DeadlineReached(DeadlineKind.REVOKE_WINDOW)) is None
    assert p.finished and p.state.status is Status.COMPLETED
    assert p.state.closed_at == clock.now
    assert p.state.history[-1].kind is EventKind.REVOKE_WINDOW_CLOSED
    assert p.next_deadline() is None
    view = view_of(p.state)
    assert "revoke window has ended" in closed_revoke_refusal(view).message


def test_a_request_completed_after_its_window_closes_at_once() -> None:
    clock = Clock(T0)
    policy = BULK.model_copy(update={"revoke": RevokeSpec(within=Span(hours=1))})
    p = approved(policy, "3000", BULK_FIELDS, clock)
    clock.later(hours=2)  # the deposit is paid after the window ended
    pay = MilestoneInput(actor="fin_he", milestone="deposit", amount=Decimal(900))
    assert p.feed(Handle(pay, False)) is None
    assert p.finished and p.state.status is Status.COMPLETED
    assert "revocable_until" not in p.state.history[-1].data


def test_an_administrator_revokes_for_the_requester_who_is_told() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    p = approved(revocable(GIFT), "300", GIFT_FIELDS, clock, driver)
    err = refusal(p, revoke("bgm_feng"))
    assert err.code is ErrorCode.FORBIDDEN and HTTP_STATUS[err.code] == 403

    assert p.feed(Handle(revoke("admin", as_admin=True), False)) is None

    event = p.state.history[-1]
    assert event.actor == "admin" and event.data["as"] == "admin"
    told = {n.recipient for n in driver.records[-1].notices if n.template == "revoked"}
    assert told == {"csc_tang", "bgm_feng", "am_li"}


def test_a_payout_not_made_yet_is_cancelled_and_one_made_cannot_be_revoked() -> None:
    clock = Clock(T0)
    driver = Driver(FakeDirectory.demo())
    policy = revocable(DISCOUNT)
    p = approved(policy, "500", DISCOUNT_FIELDS, clock, driver)
    pay = MilestoneInput(
        actor="fin_he", milestone="paid_in_full", amount=Decimal(10000), reference="INV-9"
    )
    assert p.feed(Handle(pay, False)) is None
    assert p.state.status is Status.AWAITING_PAYOUT

    paid = put(
        p.state,
        payout=put(
            p.state.payout or PayoutState(title="x", amount=None),
            paid_at=clock.now,
            reference="PO-7",
        ),
    )
    with pytest.raises(DomainError) as info:
        admission.check(paid, policy, revoke(), clock.now)
    assert info.value.code is ErrorCode.INVALID_STATE
    assert info.value.message.startswith("the payout was made (reference PO-7)")

    assert p.feed(Handle(revoke(), False)) is None
    assert p.state.status is Status.REVOKED and driver.payouts == []
    assert p.state.history[-1].data["payout_cancelled"] is True
    assert [r.reference for r in p.state.to_reverse] == ["INV-9"]
    assert p.next_deadline() is None  # the payout window never fires


def test_a_credit_line_in_force_may_be_revoked_within_its_window() -> None:
    clock = Clock(T0)
    p = approved(revocable(CREDIT), "50000", CREDIT_FIELDS, clock)
    assert p.state.status is Status.ACTIVE
    carried = Request(p.carry(), clock, p.driver)  # in force: each cycle is a fresh run
    assert carried.state.revocable_until == p.state.revocable_until
    assert carried.feed(Handle(revoke(), False)) is None
    assert carried.state.status is Status.REVOKED


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("in_review", "only an approved request can be revoked; it is in_review (withdraw"),
        ("withdrawn", "no approval to revoke"),
        ("revoked", "already revoked"),
        ("completed", "carried out in full"),
    ],
)
def test_only_an_approval_whose_process_is_open_can_be_revoked(setup: str, message: str) -> None:
    clock = Clock(T0)
    policy = revocable(GIFT)
    p = submitted(policy, "300", GIFT_FIELDS, clock)
    state = p.state
    if setup == "withdrawn":
        assert p.feed(Handle(WithdrawInput(actor="am_li"), False)) is None
        state = p.state
    elif setup in ("revoked", "completed"):
        state = put(state, status=Status(setup), closed_at=clock.now, revocable_until=clock.now)
    with pytest.raises(DomainError) as info:
        admission.check(state, policy, revoke(), clock.now)
    assert info.value.code is ErrorCode.INVALID_STATE
    assert message in info.value.message


def test_a_revoke_needs_a_reason_and_a_policy_window_is_calendar_time() -> None:
    with pytest.raises(ValidationError):
        RevokeInput(actor="am_li", comment="  ")
    with pytest.raises(ValidationError):
        RevokeInput.model_validate({"actor": "am_li"})
    assert RevokeSpec.model_validate({"within": "P31D"}).within == timedelta(days=31)
    for bad in ("P3D working", "PT0S"):
        with pytest.raises(ValidationError):
            RevokeSpec.model_validate({"within": bad})
    data = GIFT.model_dump(mode="json")
    assert Policy.model_validate(data).revoke is None  # a policy without it loads as today


def test_a_closed_request_is_refused_naming_why_from_its_view() -> None:
    clock = Clock(T0)
    view = view_of(approved(GIFT, "300", GIFT_FIELDS, clock).state)
    assert closed_revoke_refusal(view).message == (
        "requests of type 'customer_gift' cannot be revoked: their policy sets no revoke window"
    )
    window_ended = view.model_copy(update={"revocable_until": clock.now})
    assert "revoke window has ended" in closed_revoke_refusal(window_ended).message
    paid = view.model_copy(
        update={
            "status": "completed",
            "payout": PayoutState(title="Rebate", amount=None, paid_at=clock.now, reference="PO-1"),
        }
    )
    err = closed_revoke_refusal(paid)
    assert err.code is ErrorCode.INVALID_STATE and HTTP_STATUS[err.code] == 409
    assert err.message == (
        "the payout was made (reference PO-1): a request whose payout was made cannot be revoked"
    )
