"""Comments (评论) in the pure core: mentions, attachments, every open state, closed refused.

A 250,000 contract by am_li: bcd_zheng decides the first stage, dsd_liu the second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.policy_store import load_policies
from domain.core.details import details
from domain.core.discussion import check_comment, mentioned, unreadable_refusal
from domain.core.inputs import Submit
from domain.core.projection import view_of
from domain.core.queries import current_approvers
from domain.errors import DomainError, ErrorCode
from domain.process import (
    AttachmentRef,
    CommentInput,
    DecideInput,
    EventKind,
    Status,
    WithdrawInput,
)
from domain.signing import payload_of
from tests.support.machine_driver import (
    Clock,
    Driver,
    FakeDirectory,
    Request,
    accepted,
    approval_input,
    refused,
)

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
CONTRACT = POLICIES["big_customer_contract"]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HASH = "ab" * 32
REF = AttachmentRef(id="0b6f2a4e-2f44-4a53-9a57-3c5b0b4f6d11", sha256=HASH)


def _contract(directory: FakeDirectory | None = None) -> Request:
    p = Request(
        approval_input(
            CONTRACT, Decimal(250000), {"contract_no": "HT-1", "settlement_floor_price": "1"}
        ),
        Clock(T0),
        Driver(directory or FakeDirectory.demo()),
    )
    p.feed(Submit())
    assert current_approvers(p.state) == ["bcd_zheng"]
    return p


def test_a_comment_is_recorded_counted_and_tells_the_people_mentioned() -> None:
    p = _contract()
    accepted(
        p,
        CommentInput(
            actor="am_li", comment="@bcd_zheng see the annex", mentions=["bcd_zheng", "bcd_zheng"]
        ),
    )
    event = p.state.history[-1]
    assert (event.kind, event.actor, event.comment, event.data) == (
        EventKind.COMMENTED,
        "am_li",
        "@bcd_zheng see the annex",
        {"mentions": ["bcd_zheng"]},
    )
    assert [(n.recipient, n.template) for n in p.driver.records[-1].notices] == [
        ("bcd_zheng", "mentioned")
    ]
    assert p.driver.records[-1].notices[0].payload["by"] == "am_li"
    # A comment decides nothing: the step still waits for bcd_zheng.
    assert current_approvers(p.state) == ["bcd_zheng"]
    assert p.state.status is Status.IN_REVIEW
    accepted(p, CommentInput(actor="bcd_zheng", comment="ok"))
    assert p.state.comments == 2
    assert view_of(p.state).comments == 2
    assert "Comments (评论): 2" in details(p.state)


def test_a_mention_of_someone_who_may_not_read_the_request_is_refused_naming_them() -> None:
    directory = FakeDirectory.demo()
    directory.strangers = {"fin_he"}
    p = _contract(directory)
    err = refused(p, CommentInput(actor="am_li", comment="x", mentions=["bcd_zheng", "fin_he"]))
    assert err.code is ErrorCode.VALIDATION
    assert err.details == {"field": "mentions", "unreadable": ["fin_he"]}
    assert "fin_he" in err.message
    assert p.driver.records[-1].event.kind is not EventKind.COMMENTED  # nobody was told
    err = refused(p, CommentInput(actor="am_li", comment="x", mentions=["ghost"]))
    assert err.details["unreadable"] == ["ghost"]


def test_mentioning_oneself_or_naming_an_attachment_twice_is_refused() -> None:
    p = _contract()
    err = refused(p, CommentInput(actor="am_li", comment="x", mentions=["am_li"]))
    assert (err.code, err.details) == (ErrorCode.VALIDATION, {"field": "mentions"})
    err = refused(p, CommentInput(actor="am_li", comment="x", attachments=[REF, REF]))
    assert (err.code, err.details) == (ErrorCode.VALIDATION, {"field": "attachments"})


def test_comments_are_allowed_in_every_open_state_and_refused_once_closed() -> None:
    p = _contract()
    accepted(p, DecideInput(actor="bcd_zheng", action="return", comment="fix"))
    assert p.state.status is Status.RETURNED
    accepted(p, CommentInput(actor="bcd_zheng", comment="while returned"))
    accepted(p, WithdrawInput(actor="am_li"))
    assert p.state.finished
    err = refused(p, CommentInput(actor="am_li", comment="too late"))
    assert err.code is ErrorCode.INVALID_STATE


def test_attachments_travel_as_ids_and_hashes_on_comments_and_decisions() -> None:
    p = _contract()
    accepted(p, CommentInput(actor="am_li", comment="the annex", attachments=[REF]))
    assert p.state.history[-1].data["attachments"] == [{"id": REF.id, "sha256": HASH}]
    accepted(p, DecideInput(actor="bcd_zheng", action="approve", attachments=[REF]))
    approved = next(e for e in p.state.history if e.kind is EventKind.APPROVED)
    assert approved.data["attachments"] == [{"id": REF.id, "sha256": HASH}]
    completed = next(e for e in p.state.history if e.kind is EventKind.STAGE_COMPLETED)
    assert "attachments" not in completed.data


def test_a_decision_without_attachments_is_signed_as_before_the_field_existed() -> None:
    assert payload_of(DecideInput(actor="bcd_zheng", action="approve")) == {
        "actor": "bcd_zheng",
        "action": "approve",
        "comment": None,
    }


ids = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)


@given(actor=ids, mentions=st.lists(ids, max_size=20))
def test_mention_rules_hold_for_any_mentions(actor: str, mentions: list[str]) -> None:
    msg = CommentInput(actor=actor, comment="x", mentions=mentions)
    people = mentioned(msg)
    assert len(people) == len(set(people)) and set(people) == set(mentions)
    if actor in mentions:
        with pytest.raises(DomainError):
            check_comment(msg)
    else:
        check_comment(msg)
    if people:
        err = unreadable_refusal(list(reversed(people)))
        assert err.details["unreadable"] == sorted(set(people))
        assert all(u in err.message for u in people)
