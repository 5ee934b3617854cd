"""The process remembers how each update id ended, across continue-as-new and bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from common.policy_store import load_policies
from domain.core.machine import MAX_APPLIED, carry, remember, start
from domain.core.queries import handled
from domain.errors import DomainError, ErrorCode
from domain.process import ApprovalInput, Carried
from tests.support.machine_driver import approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _input() -> ApprovalInput:
    policy = POLICIES["retail_bulk_discount"]
    return approval_input(policy, Decimal(5000), {"gross_margin_pct": "3"})


def test_an_outcome_is_carried_into_the_next_run() -> None:
    inp = _input()
    s = remember(start(inp, T0), "record_milestone:fin_he:k1", None, T0)
    s = remember(s, "decide:bcd_zheng:k2", DomainError(ErrorCode.CONFLICT, "already decided"), T0)

    resumed = start(ApprovalInput.model_validate_json(carry(inp, s).model_dump_json()), T0)

    applied = handled(resumed, "record_milestone:fin_he:k1")
    assert applied is not None and applied.code is None
    refused = handled(resumed, "decide:bcd_zheng:k2")
    assert refused is not None
    assert (refused.code, refused.message) == (ErrorCode.CONFLICT.value, "already decided")
    assert handled(resumed, "never-seen") is None


def test_state_carried_before_this_existed_has_none() -> None:
    """Runs before RequestState carried {view, seq, resolve_fired, nonces}: it still reads."""
    inp = _input()
    s = start(inp, T0)
    old_view = s.model_dump(
        mode="json", exclude={"seq", "resolve_fired", "nonces", "applied", "awaiting"}
    )
    old = {"view": {**old_view, "current_approvers": []}, "seq": 7, "resolve_fired": True}
    carried = Carried.model_validate(old)
    assert carried.state.applied == {}
    assert (carried.state.seq, carried.state.resolve_fired) == (7, True)
    assert carried.state.model_dump(exclude={"seq", "resolve_fired"}) == s.model_dump(
        exclude={"seq", "resolve_fired"}
    )


def test_an_awaiting_status_carried_as_its_label_is_read_as_status_and_milestone() -> None:
    s = start(_input(), T0)
    old_view = {**s.model_dump(mode="json", exclude={"awaiting"}), "status": "awaiting_deposit"}
    carried = Carried.model_validate({"view": old_view, "seq": 3, "resolve_fired": False})
    assert (carried.state.status.value, carried.state.awaiting) == ("awaiting", "deposit")
    assert carried.state.label == "awaiting_deposit"


@given(st.lists(st.integers(min_value=0, max_value=3 * MAX_APPLIED), min_size=1, max_size=1500))
def test_the_most_recent_ids_are_kept_and_no_more(ids: list[int]) -> None:
    s = start(_input(), T0)
    for n in ids:
        s = remember(s, f"u-{n}", None, T0)
    # Exactly the most recently remembered distinct ids, up to the bound.
    recent = list(dict.fromkeys(reversed(ids)))[:MAX_APPLIED]
    assert set(s.applied) == {f"u-{n}" for n in recent}
    assert all(a.at == T0 and a.code is None for a in s.applied.values())
