"""Policy tests: the shipped policy files, through the pure resolver. No servers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from domain.requests import condition_values, validate_fields
from domain.routing import check_rules, resolve_route


def _money(amount: str | None) -> Decimal | None:
    return None if amount is None else Decimal(amount)


def stages_of(policy: Policy, amount: str | None, fields: dict[str, Any]) -> list[str]:
    """The stage keys a request takes, validated exactly as a submission is."""
    norm = validate_fields(policy, _money(amount), fields)
    return [s.key for s in resolve_route(policy, _money(amount), norm).stages]


def refused_by(policy: Policy, amount: str | None, fields: dict[str, Any]) -> str | None:
    """The hard rule that refuses the request at submission, or None."""
    norm = validate_fields(policy, _money(amount), fields)
    try:
        check_rules(policy, _money(amount), norm)
    except DomainError as err:
        assert err.code is ErrorCode.RULE_VIOLATION
        rule = err.details["rule"]
        assert isinstance(rule, str)
        return rule
    return None


def values_of(policy: Policy, amount: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """What conditions see for this request (after validation)."""
    return condition_values(_money(amount), validate_fields(policy, _money(amount), fields))
