"""The pure route resolver: ``(request, policy) -> Route``.

Used by submission, by resubmission inside the workflow (deterministically, from
the policy snapshot the request was submitted under) and by the preview endpoint.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.conditions import evaluate, explain
from domain.errors import DomainError, ErrorCode
from domain.policy import ApproverSpec, Policy, StageMode
from domain.requests import condition_values


class RouteStage(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    mode: StageMode
    approvers: tuple[ApproverSpec, ...]
    reason: str


class Route(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_type: str
    policy_version: int
    stages: tuple[RouteStage, ...]


def check_rules(policy: Policy, amount: Decimal | None, fields: dict[str, Any]) -> None:
    """Refuse a request that breaks a hard rule of its policy.

    Raises:
        DomainError: RULE_VIOLATION naming the first rule broken.
    """
    values = condition_values(amount, fields)
    for rule in policy.rules:
        if evaluate(rule.refuse_when, values):
            raise DomainError(
                ErrorCode.RULE_VIOLATION,
                rule.message,
                {"rule": rule.name, "because": explain(rule.refuse_when, values)},
            )


def resolve_route(policy: Policy, amount: Decimal | None, fields: dict[str, Any]) -> Route:
    """The ordered stages that apply to this request, each with why it applies.

    The caller has validated the fields (:func:`domain.requests.validate_fields`);
    hard rules are checked here too, so no route exists for a refused request.
    """
    check_rules(policy, amount, fields)
    values = condition_values(amount, fields)
    stages: list[RouteStage] = []
    for spec in policy.stages:
        if spec.when is not None and not evaluate(spec.when, values):
            continue
        who = ", ".join(a.describe() for a in spec.approvers)
        mode = "all must approve" if spec.mode is StageMode.ALL else "any one decides"
        why = explain(spec.when, values) if spec.when is not None else "always"
        stages.append(
            RouteStage(
                key=spec.key,
                name=spec.name,
                mode=spec.mode,
                approvers=spec.approvers,
                reason=f"{why} → {who} ({mode})",
            )
        )
    return Route(policy_type=policy.type, policy_version=policy.version, stages=tuple(stages))
