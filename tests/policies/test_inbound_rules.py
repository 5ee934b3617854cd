"""Policy files and inbound values: which amounts must be positive, and files whose
text or ids could not be stored fail at load, naming the file and the field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.policy_store import PolicyError, load_policy_file
from domain.errors import DomainError
from domain.policy import Policy
from domain.requests import validate_fields
from tests.support.paths import ROOT

POSITIVE = {
    "big_customer_contract",  # a contract
    "customer_gift",  # a gift
    "real_estate_group_purchase",  # an order
    "retail_bulk_discount",  # an order
    "special_custom_order",  # an order
}


def _amount_problem(policy: Policy, amount: str) -> str | None:
    """What validation says of ``amount`` (other fields left out on purpose)."""
    try:
        validate_fields(policy, Decimal(amount), {})
    except DomainError as err:
        problems = err.details["fields"]
        assert isinstance(problems, list)
        return next((p["message"] for p in problems if p["field"] == "amount"), None)
    return None


def test_contracts_orders_and_gifts_need_a_positive_amount(policies: dict[str, Policy]) -> None:
    assert {t for t, p in policies.items() if p.amount.positive} == POSITIVE


@pytest.mark.parametrize("type_", sorted(POSITIVE))
def test_positive_amount_boundary(policies: dict[str, Policy], type_: str) -> None:
    policy = policies[type_]
    assert _amount_problem(policy, "0") == "must be more than 0 for this request type"
    assert _amount_problem(policy, "0.00") is not None
    assert _amount_problem(policy, "0.01") is None


def test_other_types_still_take_zero(policies: dict[str, Policy]) -> None:
    for type_, policy in policies.items():
        if type_ not in POSITIVE:
            assert _amount_problem(policy, "0") is None, type_


def _policy_file(tmp_path: Path, **over: Any) -> Path:
    data: dict[str, Any] = yaml.safe_load(
        (ROOT / "policies" / "agreement_change.yaml").read_text(encoding="utf-8")
    )
    data.update(over)
    path = tmp_path / "agreement_change.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


STAGE = {"key": "k", "name": "Someone decides", "approvers": [{"role": "sales_head"}]}


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"title": "Agreement\u0000change"}, "title"),
        ({"stages": [{**STAGE, "name": "Two\nlines"}]}, "stages.0.name"),
        ({"stages": [{**STAGE, "approvers": [{"user": "am li"}]}]}, "stages.0.approvers.0.user"),
        (
            {"fields": [{"name": "kind", "type": "choice", "choices": ["a\u0000"]}]},
            "fields.0.choices.0",
        ),
        ({"amount": {"positive": "maybe"}}, "amount.positive"),
        ({"fields": [{"name": "x", "type": "decimal", "decimal_places": 99}]}, "fields.0"),
    ],
)
def test_a_malformed_policy_file_names_the_file_and_field(
    tmp_path: Path, over: dict[str, Any], field: str
) -> None:
    path = _policy_file(tmp_path, **over)
    with pytest.raises(PolicyError) as info:
        load_policy_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert f" {field}" in message or f"{path}: {field}" in message, message
