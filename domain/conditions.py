"""Evaluate structured policy conditions and explain why they held.

Values are compared as :class:`~decimal.Decimal` when both sides are numeric,
so ``100000`` and ``"100000.00"`` are the same amount and no float ever decides
a tier boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.policy import AllOf, AnyOf, Comparison, Condition, Not, Op

_SYMBOL = {
    Op.EQ: "=",
    Op.NE: "≠",
    Op.GT: ">",
    Op.GTE: "≥",
    Op.LT: "<",
    Op.LTE: "≤",
    Op.IN: "in",
    Op.NOT_IN: "not in",
}


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int | str):
        try:
            return Decimal(str(v))
        except InvalidOperation:
            return None
    return None


def _eq(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    return bool(a == b)


def _compare(op: Op, actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    if op is Op.EQ:
        return _eq(actual, expected)
    if op is Op.NE:
        return not _eq(actual, expected)
    if op is Op.IN:
        return any(_eq(actual, e) for e in expected)
    if op is Op.NOT_IN:
        return not any(_eq(actual, e) for e in expected)
    a, e = _num(actual), _num(expected)
    if a is None or e is None:
        return False
    return {
        Op.GT: a > e,
        Op.GTE: a >= e,
        Op.LT: a < e,
        Op.LTE: a <= e,
    }[op]


def evaluate(cond: Condition, values: Mapping[str, Any]) -> bool:
    """True when ``cond`` holds for ``values`` (``amount`` plus the form fields).

    A comparison on a missing value is false, so an optional field left out
    never puts a stage on the route by accident.
    """
    if isinstance(cond, Comparison):
        return _compare(cond.op, values.get(cond.field), cond.value)
    if isinstance(cond, AllOf):
        return all(evaluate(c, values) for c in cond.all)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, values) for c in cond.any)
    if isinstance(cond, Not):
        return not evaluate(cond.not_, values)
    raise TypeError(f"unknown condition {cond!r}")


def _fmt(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    n = None if isinstance(v, bool) or v is None else _num(v)
    if n is None:
        return str(v)
    if n == n.to_integral_value():
        n = n.quantize(Decimal(1))
    return f"{n:,}"


def describe(cond: Condition) -> str:
    """The condition as a person reads it: ``amount > 100,000 and amount ≤ 300,000``."""
    if isinstance(cond, Comparison):
        return f"{cond.field} {_SYMBOL[cond.op]} {_fmt(cond.value)}"
    if isinstance(cond, AllOf):
        return " and ".join(_paren(c) for c in cond.all)
    if isinstance(cond, AnyOf):
        return " or ".join(_paren(c) for c in cond.any)
    return f"not ({describe(cond.not_)})"


def _paren(c: Condition) -> str:
    return f"({describe(c)})" if isinstance(c, AllOf | AnyOf) else describe(c)


def explain(cond: Condition, values: Mapping[str, Any]) -> str:
    """Why the condition holds here: the actual values, then the rule."""
    refs = _referenced(cond)
    actual = ", ".join(f"{f} = {_fmt(values.get(f))}" for f in refs)
    return f"{actual}: {describe(cond)}"


def _referenced(cond: Condition) -> list[str]:
    out: list[str] = []

    def walk(c: Condition) -> None:
        if isinstance(c, Comparison):
            if c.field not in out:
                out.append(c.field)
        elif isinstance(c, AllOf):
            for x in c.all:
                walk(x)
        elif isinstance(c, AnyOf):
            for x in c.any:
                walk(x)
        else:
            walk(c.not_)

    walk(cond)
    return out
