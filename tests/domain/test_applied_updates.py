"""The process remembers how each update id ended, across continue-as-new and bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from common.policy_store import load_policies
from domain.core.machine import MAX_APPLIED, Process
from domain.errors import DomainError, ErrorCode
from domain.process import ApprovalInput
from tests.support.machine_driver import approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _process(inp: ApprovalInput | None = None) -> Process:
    if inp is None:
        policy = POLICIES["retail_bulk_discount"]
        inp = approval_input(policy, Decimal(5000), {"gross_margin_pct": "3"})
    return Process(inp, lambda: T0)


def test_an_outcome_is_carried_into_the_next_run() -> None:
    p = _process()
    p.remember("record_milestone:fin_he:k1", None)
    p.remember("decide:bcd_zheng:k2", DomainError(ErrorCode.CONFLICT, "already decided"))

    resumed = _process(p.carry())

    applied = resumed.handled("record_milestone:fin_he:k1")
    assert applied is not None and applied.code is None
    refused = resumed.handled("decide:bcd_zheng:k2")
    assert refused is not None
    assert (refused.code, refused.message) == (ErrorCode.CONFLICT.value, "already decided")
    assert resumed.handled("never-seen") is None


def test_state_carried_before_this_existed_has_none() -> None:
    inp = _process().carry()
    assert inp.carried is not None
    old = inp.carried.model_dump(mode="json")
    del old["applied"]
    carried = type(inp.carried).model_validate(old)
    assert _process(inp.model_copy(update={"carried": carried})).applied == {}


@given(st.lists(st.integers(min_value=0, max_value=3 * MAX_APPLIED), min_size=1, max_size=1500))
def test_the_most_recent_ids_are_kept_and_no_more(ids: list[int]) -> None:
    p = _process()
    for n in ids:
        p.remember(f"u-{n}", None)
    # Exactly the most recently remembered distinct ids, up to the bound.
    recent = list(dict.fromkeys(reversed(ids)))[:MAX_APPLIED]
    assert set(p.applied) == {f"u-{n}" for n in recent}
    assert all(a.at == T0 and a.code is None for a in p.applied.values())
