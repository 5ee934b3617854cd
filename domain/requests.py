"""What a requester submits, and its validation against the request type's policy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.errors import DomainError, ErrorCode
from domain.policy import FieldSpec, FieldType, Policy

Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False),
    AfterValidator(lambda d: d.quantize(Decimal("0.01"))),
]
"""Money in CNY: a non-negative decimal, always with two places ("265000.00"). Never a float."""

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class Submission(BaseModel):
    """The body of ``POST /v1/requests``."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    title: ShortText
    customer: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    amount: Money | None = None
    fields: dict[str, Any] = Field(default_factory=dict, max_length=100)
    comment: Comment | None = None


class FieldProblem(BaseModel):
    field: str
    message: str


def _problem(field: str, message: str) -> FieldProblem:
    return FieldProblem(field=field, message=message)


def _coerce(spec: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    """Return (normalized JSON-safe value, error message or None)."""
    t = spec.type
    if t in (FieldType.STRING, FieldType.TEXT):
        if not isinstance(raw, str):
            return None, "must be a string"
        value = raw.strip()
        limit = spec.max_length if t is FieldType.TEXT else min(spec.max_length, 500)
        if len(value) > limit:
            return None, f"must be at most {limit} characters"
        if spec.required and not value:
            return None, "must not be empty"
        return value, None
    if t is FieldType.CHOICE:
        if raw not in spec.choices:
            return None, f"must be one of {list(spec.choices)}"
        return raw, None
    if t is FieldType.BOOLEAN:
        if not isinstance(raw, bool):
            return None, "must be true or false"
        return raw, None
    if t is FieldType.DATE:
        if not isinstance(raw, str):
            return None, "must be a date (YYYY-MM-DD)"
        try:
            return date.fromisoformat(raw).isoformat(), None
        except ValueError:
            return None, "must be a date (YYYY-MM-DD)"
    # numbers: decimal strings or numbers; floats are accepted as input only
    # through their shortest repr, so 0.1 means exactly 0.1.
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        return None, "must be a number"
    try:
        num = Decimal(str(raw).strip())
    except InvalidOperation:
        return None, "must be a number"
    if not num.is_finite():
        return None, "must be a finite number"
    if t is FieldType.INTEGER:
        if num != num.to_integral_value():
            return None, "must be a whole number"
        num = num.quantize(Decimal(1))
    if abs(num) >= Decimal("1e15"):
        return None, "is too large"
    if spec.min is not None and num < spec.min:
        return None, f"must be at least {spec.min}"
    if spec.max is not None and num > spec.max:
        return None, f"must be at most {spec.max}"
    if t is FieldType.INTEGER:
        return int(num), None
    # Plain notation always: Decimal.normalize() would turn 180000 into "1.8E+5".
    return format(num.quantize(Decimal(1)) if num == num.to_integral_value() else num, "f"), None


def validate_fields(policy: Policy, amount: Decimal | None, raw: dict[str, Any]) -> dict[str, Any]:
    """Check ``amount`` and ``raw`` against the policy; return normalized fields.

    Raises:
        DomainError: VALIDATION, with every problem named in ``details.fields``.
    """
    problems: list[FieldProblem] = []
    if policy.amount.required and amount is None:
        problems.append(_problem("amount", "is required for this request type"))
    if amount is not None and amount > policy.amount.max:
        problems.append(_problem("amount", f"must be at most {policy.amount.max}"))
    known = {f.name for f in policy.fields}
    for name in raw:
        if name not in known:
            problems.append(_problem(f"fields.{name}", "is not a field of this request type"))
    out: dict[str, Any] = {}
    for spec in policy.fields:
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                problems.append(_problem(f"fields.{spec.name}", "is required"))
            continue
        norm, err = _coerce(spec, value)
        if err:
            problems.append(_problem(f"fields.{spec.name}", err))
        else:
            out[spec.name] = norm
    if problems:
        raise DomainError(
            ErrorCode.VALIDATION,
            "; ".join(f"{p.field} {p.message}" for p in problems),
            {"fields": [p.model_dump() for p in problems]},
        )
    return out


def condition_values(amount: Decimal | None, fields: dict[str, Any]) -> dict[str, Any]:
    """The values conditions see: the form fields plus the built-in ``amount``."""
    return {**fields, "amount": amount}
