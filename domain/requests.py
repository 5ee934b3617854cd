"""What a requester submits, and its validation against the request type's policy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import DomainError, ErrorCode
from domain.inbound import (
    FIELD_INTEGER_DIGITS,
    Comment,
    FormFields,
    Id,
    InboundError,
    Money,
    OptionalShortText,
    ShortText,
    check_number,
    check_text,
)
from domain.policy import FieldSpec, FieldType, Policy

__all__ = [  # Comment, Money and ShortText live in domain.inbound; kept importable here
    "STRING_FIELD_MAX",
    "Comment",
    "FieldProblem",
    "Money",
    "ShortText",
    "Submission",
    "condition_values",
    "validate_fields",
]

STRING_FIELD_MAX = 500
"""A ``string`` form field is one line of at most this many characters (or its
``max_length``, if smaller); ``text`` fields are multi-line up to ``max_length``."""


class Submission(BaseModel):
    """The body of ``POST /v1/requests``."""

    model_config = ConfigDict(extra="forbid")

    type: Id
    title: ShortText
    customer: OptionalShortText | None = None
    amount: Money | None = None
    fields: FormFields = Field(default_factory=dict, max_length=100)
    comment: Comment | None = None
    attachments: list[UUID] = Field(
        default_factory=list,
        max_length=20,
        # Absent when empty: bodies without files hash as before (Idempotency-Key replays).
        exclude_if=lambda v: not v,
        description="Ids of files you uploaded (`POST /v1/attachments`) and attached nowhere "
        "yet; at most `APPROVALS_ATTACHMENT_MAX_COUNT` (default 10).",
    )


class FieldProblem(BaseModel):
    field: str
    message: str


def _problem(field: str, message: str) -> FieldProblem:
    return FieldProblem(field=field, message=message)


def _coerce(spec: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    """Return (normalized JSON-safe value, error message or None)."""
    t = spec.type
    try:
        if t in (FieldType.STRING, FieldType.TEXT):
            multiline = t is FieldType.TEXT
            limit = spec.max_length if multiline else min(spec.max_length, STRING_FIELD_MAX)
            value = check_text(raw, max_length=limit, multiline=multiline)
            if spec.required and not value:
                return None, "must not be empty"
            return value, None
        if t is FieldType.CHOICE:
            if not isinstance(raw, str) or raw not in spec.choices:
                return None, f"must be one of {list(spec.choices)}"
            return raw, None
        if t is FieldType.BOOLEAN:
            if not isinstance(raw, bool):
                return None, "must be true or false"
            return raw, None
        if t is FieldType.DATE:
            if not isinstance(raw, str) or len(raw) != len("YYYY-MM-DD"):
                return None, "must be a date (YYYY-MM-DD)"
            try:
                return date.fromisoformat(raw).isoformat(), None
            except ValueError:
                return None, "must be a date (YYYY-MM-DD)"
        # Numbers: plain decimal strings or JSON numbers, within the digit budget,
        # checked before any arithmetic (see domain.inbound.check_number).
        places = 0 if t is FieldType.INTEGER else spec.decimal_places
        num = check_number(raw, integer_digits=FIELD_INTEGER_DIGITS, places=places)
    except InboundError as exc:
        return None, str(exc)
    if spec.min is not None and num < spec.min:
        return None, f"must be at least {spec.min}"
    if spec.max is not None and num > spec.max:
        return None, f"must be at most {spec.max}"
    if t is FieldType.INTEGER:
        return int(num), None
    # Plain notation always (bounded: the budget was checked above); a whole
    # number without its zero places, so 180000.00 is "180000".
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
    if amount is not None and policy.amount.positive and amount <= 0:
        problems.append(_problem("amount", "must be more than 0 for this request type"))
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
