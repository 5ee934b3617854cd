"""What an unreadable signal's audit row says: short, printable, and never the sent values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.errors import MAX_UNREADABLE_PROBLEM, unreadable_problems
from domain.process import DecideInput, MilestoneInput

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
payloads = st.dictionaries(
    st.sampled_from(["actor", "action", "comment", "milestone", "amount", "proof"]) | st.text(),
    json_values,
    max_size=6,
)


KINDS: list[type[DecideInput] | type[MilestoneInput]] = [DecideInput, MilestoneInput]


@given(payloads, st.sampled_from(KINDS))
def test_the_problem_is_short_printable_ascii_and_quotes_no_sent_text(
    payload: dict[str, Any], kind: type[DecideInput] | type[MilestoneInput]
) -> None:
    try:
        kind.model_validate(payload)
    except ValidationError as exc:
        problem = unreadable_problems(exc)
    else:
        return  # a readable payload is not this test's business
    assert 0 < len(problem) <= MAX_UNREADABLE_PROBLEM
    assert problem.isascii() and problem.isprintable()
    sent = [v for v in payload.values() if isinstance(v, str) and len(v) >= 4]
    assert not any(v in problem for v in sent if not v.isidentifier())


def test_names_the_fields_and_what_was_wrong() -> None:
    with pytest.raises(ValidationError) as info:
        DecideInput.model_validate({"actor": "x" * 500, "action": "maybe"})
    assert unreadable_problems(info.value).split("; ") == [
        "actor: invalid_input",
        "action: literal_error",
    ]


def test_a_payload_that_is_not_even_json_says_so() -> None:
    problem = unreadable_problems(ValueError("Expecting value: line 1 column 1 \x00"))
    assert problem == "the payload could not be decoded (ValueError)"
