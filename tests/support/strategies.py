"""Hypothesis strategies for hostile input: text with control characters, lone
surrogates, emoji and long runs; number strings and numbers of every shape."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Characters that matter, mixed into arbitrary Unicode (surrogates included).
NASTY = [
    "\x00", "\x01", "\t", "\n", "\x0b", "\r", "\x1f", " ", "\x7f", "\x85", "\x9f", "\xa0",
    "\u2028", "\u3000", "\ufeff", "\ud800", "\udfff", "\U0001f600", "中", "é", "a", "-",
]  # fmt: skip
chars = st.one_of(st.characters(exclude_categories=()), st.sampled_from(NASTY))
texts = st.one_of(
    st.text(chars, max_size=40),
    st.text(chars, min_size=195, max_size=205),
    st.builds(lambda s, n: s * n, st.text(chars, min_size=1, max_size=3), st.integers(0, 1500)),
)


number_text = st.one_of(
    st.text(st.sampled_from("0123456789.-_ +eE\u0661\u0662\uff11x"), max_size=30),
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,5})?", fullmatch=True),
    st.builds(lambda n: f"1e-{n}", st.integers(0, 10**8)),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    number_text,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)

# Mostly valid values with one hostile character, so that whole bodies often pass
# the other checks and the hostile part is what decides.
clean_texts = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60)
worst = st.one_of(st.sampled_from(["\x00", "\ud800", "\x85", "\r"]), st.sampled_from(NASTY))
one_nasty = st.builds(lambda a, c, b: a + c + b, clean_texts, worst, clean_texts)
hostile_texts = st.one_of(clean_texts, one_nasty, one_nasty, texts)
plain_numbers = st.from_regex(r"[1-9][0-9]{0,6}(\.[0-9]{1,2})?", fullmatch=True)
hostile_numbers: st.SearchStrategy[Any] = st.one_of(plain_numbers, plain_numbers, numbers)
hostile_ids = st.one_of(
    st.sampled_from(["am_li", "bcd_zheng", "a.b@c-d", "x" * 64]),
    st.builds(lambda c: "am_li" + c, st.sampled_from(NASTY)),
    texts,
)


# --- valid submissions per request type -------------------------------------------
# For each shipped policy (policies/*.yaml): amounts and fields on both sides of its
# routing thresholds (see tests/policies/test_boundaries.py), every one valid and
# within the hard rules, so a request built from them can be submitted.

_DISCOUNT = {"product": "Copier paper", "discount_form": "rate", "reason": "bulk purchase"}
_CONTRACT = {"contract_no": "C-1", "settlement_floor_price": "1"}
_GROUP = {"project": "Lakeside", "batch": "2", "employer": "City Hospital"}
_EXPENSE = {
    "purpose": "Spring customer meeting",
    "payment_method": "bank transfer",
    "expected_payment_date": "2026-04-01",
    "budget_basis": "2026 customer budget line 4",
    "within_budget": True,
}
_TERMS = {"term": "payment_terms", "details": "90 days instead of 30"}
_VOLUME = {"monthly_volume": 2_000_000, "failure": "a day of sends lost"}
_GIFT = {"gift": "Mooncakes, 2 boxes", "reason": "good payer for 3 years"}
_SPECIAL = {"invoice_total": "60000", "discount_pct": "5", "reason": "year-end volume"}
_CREDIT = {
    "cooperation_months": 3,
    "avg_monthly_orders": "5000",
    "credit_rating": "good",
    "profile": "Office supplies buyer for a hospital group",
    "assessment": "Pays on time",
}
_ORDER = {"goods": "Branded notebooks", "custom_goods": False}

Case = tuple[str | None, dict[str, Any]]

SUBMISSIONS: dict[str, list[Case]] = {
    "customer_discount": [
        ("0.01", _DISCOUNT),
        ("50000", _DISCOUNT),
        ("50000.01", _DISCOUNT),
        ("200000", _DISCOUNT | {"discount_pct": "10"}),
        ("200000.01", _DISCOUNT | {"discount_pct": "10.01"}),
    ],
    "big_customer_contract": [
        ("100000", _CONTRACT),
        ("100000.01", _CONTRACT),
        ("300000", _CONTRACT),
        ("300000.01", _CONTRACT),
    ],
    "real_estate_group_purchase": [
        ("5000000", _GROUP | {"units": 10}),
        ("1000000", _GROUP | {"units": 40, "below_floor": True}),
    ],
    "retail_bulk_discount": [
        ("2000", {"gross_margin_pct": "0"}),
        ("5000", {"gross_margin_pct": "4.99", "fresh_food": True}),
        ("50000", {"gross_margin_pct": "5"}),
        ("50000", {"gross_margin_pct": "9"}),
        ("100", {"gross_margin_pct": "10.01", "monthly_purchase": "20000.01"}),
    ],
    "customer_operating_expense": [("50000", _EXPENSE), ("50000.01", _EXPENSE)],
    "commercial_terms_beyond_authority": [
        (None, _TERMS),
        (None, _TERMS | {"beyond_director": True}),
    ],
    "customer_commission": [
        ("5000", {"received_amount": "100000", "commission_pct": pct})
        for pct in ("5", "5.01", "9.99", "10")
    ],
    "compensation_volume": [
        (None, _VOLUME | {"customer_kind": kind, "compensation_pct": pct})
        for kind, pct in (("platform", "1"), ("database", "2.01"), ("platform", "5.01"))
    ],
    "agreement_change": [(None, {"agreement_no": "A-7", "changes": "payment in 45 days"})],
    "customer_gift": [("500", _GIFT), ("500.01", _GIFT)],
    "special_discount": [("3000", _SPECIAL), ("3000", _SPECIAL | {"gross_margin_pct": "0"})],
    "credit_line": [("100000", _CREDIT), ("100000", _CREDIT | {"cooperation_months": 24})],
    "special_custom_order": [
        ("4999.99", _ORDER),
        ("5000", _ORDER),
        ("4999.99", _ORDER | {"custom_goods": True}),
        ("4999.99", _ORDER | {"exceeds_credit": True}),
        ("8000", _ORDER | {"custom_goods": True, "exceeds_credit": True}),
    ],
    "customer_complaint": [
        (None, {"category": category, "major": major, "description": "rude courier"})
        for category, major in (
            ("staff", True),
            ("product_quality", False),
            ("beyond_department", True),
        )
    ],
    "overdue_receivable": [
        # Due date well in the past (the whole ladder, review included, already
        # behind), recently past, and in the future.
        ("80000", {"invoice_no": "INV-9", "due_date": due})
        for due in ("2025-06-01", "2026-01-31", "2026-04-15")
    ],
}

INVALID_RESUBMISSIONS: dict[str, list[Case]] = {
    "retail_bulk_discount": [("50000", {"gross_margin_pct": "-0.01"})],  # a hard rule
    "credit_line": [("100000", _CREDIT | {"credit_rating": "poor"})],
    "customer_operating_expense": [("100", _EXPENSE | {"within_budget": False})],
}
"""Resubmissions each policy must refuse (hard rules); any policy also refuses unknown fields."""


def submissions(policy_type: str) -> st.SearchStrategy[Case]:
    """A valid submission (amount, fields) of ``policy_type``, near its thresholds."""
    return st.sampled_from(SUBMISSIONS[policy_type])
