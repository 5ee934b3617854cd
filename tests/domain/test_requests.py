"""Form validation against a policy: normalized values, every problem named."""

from decimal import Decimal

import pytest

from domain.errors import DomainError
from domain.policy import Policy
from domain.requests import validate_fields

POLICY = Policy.model_validate(
    {
        "type": "form_test",
        "version": 1,
        "title": "Form test",
        "fields": [
            {"name": "price", "type": "decimal", "min": 0},
            {"name": "units", "type": "integer", "required": False},
            {"name": "kind", "type": "choice", "choices": ["a", "b"], "required": False},
        ],
    }
)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("180000", "180000"),
        (180000, "180000"),
        (1.8e5, "180000"),  # a JSON number whose plain form fits
        ("0.10", "0.10"),
        ("-0", "0"),
        ("1234.5", "1234.5"),
        (0.1, "0.1"),
    ],
)
def test_decimal_fields_are_stored_in_plain_notation(raw: object, stored: str) -> None:
    assert validate_fields(POLICY, Decimal(1), {"price": raw})["price"] == stored


@pytest.mark.parametrize("raw", ["1.8E+5", "1e-1000000", "1_000", " 1 ", "\u0661\u0662", "0x10"])
def test_decimal_fields_refuse_anything_but_plain_ascii_decimals(raw: str) -> None:
    with pytest.raises(DomainError) as info:
        validate_fields(POLICY, Decimal(1), {"price": raw})
    problems = info.value.details["fields"]
    assert isinstance(problems, list)
    assert [p["field"] for p in problems] == ["fields.price"]
    assert "plain decimal" in info.value.message


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(DomainError) as info:
        validate_fields(POLICY, None, {"price": "-1", "units": "2.5", "kind": "c", "extra": 1})
    problems = info.value.details["fields"]
    assert isinstance(problems, list)
    fields = {p["field"] for p in problems}
    assert fields == {"fields.price", "fields.units", "fields.kind", "fields.extra", "amount"}


def test_a_stage_may_not_name_the_requester_as_approver() -> None:
    with pytest.raises(ValueError, match="cannot approve their own request"):
        Policy.model_validate(
            {
                "type": "self_approval",
                "version": 1,
                "title": "Self approval",
                "stages": [{"key": "me", "name": "Me", "approvers": [{"requester": True}]}],
            }
        )


def test_money_always_has_two_places() -> None:
    from domain.requests import Submission

    body = Submission.model_validate({"type": "t", "title": "x", "amount": "265000"})
    assert str(body.amount) == "265000.00"
    with pytest.raises(ValueError):
        Submission.model_validate({"type": "t", "title": "x", "amount": "1.005"})
