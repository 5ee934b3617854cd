"""The one rule of who may submit a request type (domain.submitters)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from common.policy_store import load_policies
from domain.policy import Submitters
from domain.submitters import may_submit, submittable
from tests.support.paths import ROOT

POLICIES = load_policies(ROOT / "policies")
GIFT = POLICIES["customer_gift"]
NAMES = st.sampled_from(["a", "b", "c", "d"])


def test_a_policy_without_submitters_is_open_to_everyone() -> None:
    assert all(p.submitters is None for p in POLICIES.values())
    assert [p.type for p in submittable(POLICIES.values(), "x", [])] == sorted(POLICIES)


def test_submitters_names_someone() -> None:
    with pytest.raises(ValidationError, match="at least one role or user"):
        Submitters()


def test_a_policy_without_submitters_dumps_as_before() -> None:
    assert "submitters" not in GIFT.model_dump()


@given(
    roles=st.lists(NAMES, max_size=3, unique=True),
    users=st.lists(NAMES, max_size=3, unique=True),
    user=NAMES,
    held=st.lists(NAMES, max_size=3),
)
def test_one_may_submit_when_named_or_holding_a_named_role(
    roles: list[str], users: list[str], user: str, held: list[str]
) -> None:
    who = Submitters(roles=tuple(roles), users=tuple(users)) if roles or users else None
    policy = GIFT.model_copy(update={"submitters": who})
    expected = who is None or user in users or bool(set(held) & set(roles))
    assert may_submit(policy, user, held) is expected
    assert (policy in submittable([policy], user, held)) is expected
