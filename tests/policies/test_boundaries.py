"""Every threshold of POLICIES.md pinned on both sides, one table per request type.

The boundary value belongs to the lower tier; 超过 ("exceeds") and 含
("inclusive") are followed literally. Each row is validated as a submission is
and routed by the pure resolver; the expected stage keys are exact and ordered.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.conditions import evaluate
from domain.durations import Span
from domain.policy import Policy
from tests.support.policies import refused_by, stages_of, values_of

Row = tuple[str | None, dict[str, Any], list[str]]


def route(policies: dict[str, Policy], type_: str, amount: str | None, fields: Any) -> list[str]:
    return stages_of(policies[type_], amount, fields)


# --- 1. customer discount [000 §2–3] ------------------------------------------------

DISCOUNT = {"product": "Copier paper", "discount_form": "rate", "reason": "bulk purchase"}
DISCOUNT_REVIEW = ["sales_head_review", "finance_review"]


@pytest.mark.parametrize(
    ("amount", "fields", "stages"),
    [
        ("0.01", {}, [*DISCOUNT_REVIEW, "deputy_sales_director_approve"]),
        ("50000", {}, [*DISCOUNT_REVIEW, "deputy_sales_director_approve"]),
        ("50000.01", {}, [*DISCOUNT_REVIEW, "sales_director_approve"]),
        ("200000", {}, [*DISCOUNT_REVIEW, "sales_director_approve"]),
        ("200000.01", {}, [*DISCOUNT_REVIEW, "general_manager_approve"]),
        # The pricing department "where applicable": a discount rate above 10 %.
        ("50000", {"discount_pct": "10"}, [*DISCOUNT_REVIEW, "deputy_sales_director_approve"]),
        (
            "50000",
            {"discount_pct": "10.01"},
            [*DISCOUNT_REVIEW, "pricing_review", "deputy_sales_director_approve"],
        ),
        (
            "200000.01",
            {"discount_pct": "25"},
            [*DISCOUNT_REVIEW, "pricing_review", "general_manager_approve"],
        ),
    ],
)
def test_customer_discount_tiers(
    policies: dict[str, Policy], amount: str, fields: dict[str, Any], stages: list[str]
) -> None:
    assert route(policies, "customer_discount", amount, DISCOUNT | fields) == stages


# --- 2. big-customer contract [001 big-customer system §3] --------------------------

CONTRACT = {"contract_no": "C-1", "settlement_floor_price": "1"}
LOW = ["office_manager_sign", "big_customer_dept_approve"]
MID = ["big_customer_dept_sign", "deputy_sales_director_approve"]
HIGH = ["big_customer_dept_sign", "deputy_sales_director_sign", "sales_director_approve"]


@pytest.mark.parametrize(
    ("amount", "stages"),
    [
        ("0.01", LOW),
        ("100000", LOW),
        ("100000.01", MID),
        ("300000", MID),
        ("300000.01", HIGH),
    ],
)
def test_big_customer_contract_tiers(
    policies: dict[str, Policy], amount: str, stages: list[str]
) -> None:
    assert route(policies, "big_customer_contract", amount, CONTRACT) == stages


# --- 3. real-estate group purchase [001 group-purchase guide] -----------------------

GROUP = {"project": "Lakeside", "batch": "2", "employer": "City Hospital"}
PRICE = ["sales_manager_review", "price_approval"]


@pytest.mark.parametrize(
    ("fields", "rule", "stages"),
    [
        ({"units": 9}, "minimum_units", None),
        ({"units": 10}, None, PRICE),
        ({"units": 10, "below_floor": False}, None, PRICE),
        # The value-loss approval comes BEFORE the price stages.
        ({"units": 40, "below_floor": True}, None, ["value_loss_approval", *PRICE]),
        ({"units": 9, "below_floor": True}, "minimum_units", None),
    ],
)
def test_real_estate_group_purchase_eligibility_and_order(
    policies: dict[str, Policy], fields: dict[str, Any], rule: str | None, stages: list[str] | None
) -> None:
    policy = policies["real_estate_group_purchase"]
    assert refused_by(policy, "5000000", GROUP | fields) == rule
    if stages is not None:
        assert stages_of(policy, "5000000", GROUP | fields) == stages


def test_real_estate_milestones_are_the_full_chain(policies: dict[str, Policy]) -> None:
    policy = policies["real_estate_group_purchase"]
    chain = [(m.name, m.due.days, m.remind_before) for m in policy.milestones]
    assert [(name, days) for name, days, _ in chain] == [
        ("deposit", 7),
        ("down_payment", 7),
        ("full_payment", 183),
    ]
    assert [r.days if r else None for _, _, r in chain] == [1, 1, 7]
    shares = [m.amount.percent_of_amount for m in policy.milestones if m.amount]
    assert sum(s for s in shares if s is not None) == 100  # deposit + down payment + balance


# --- 4. retail bulk discount [001 retail sections] ----------------------------------

MERCHANT = "merchant_manager_check"


@pytest.mark.parametrize(
    ("margin", "rule", "stages"),
    [
        ("-0.01", "negative_margin", None),
        ("0", None, [MERCHANT, "general_manager_approve"]),
        ("4.99", None, [MERCHANT, "general_manager_approve"]),
        ("5", None, [MERCHANT, "deputy_general_manager_approve"]),
        ("8.99", None, [MERCHANT, "deputy_general_manager_approve"]),
        ("9", None, [MERCHANT, "managers_countersign"]),
        ("10", None, [MERCHANT, "managers_countersign"]),
        ("10.01", None, [MERCHANT]),
    ],
)
def test_retail_margin_tiers(
    policies: dict[str, Policy], margin: str, rule: str | None, stages: list[str] | None
) -> None:
    policy = policies["retail_bulk_discount"]
    fields = {"gross_margin_pct": margin}
    assert refused_by(policy, "50000", fields) == rule
    if stages is not None:
        assert stages_of(policy, "50000", fields) == stages


@pytest.mark.parametrize(
    ("amount", "monthly", "rule"),
    [
        ("1999.99", None, "bulk_minimum"),
        ("2000", None, None),
        # Or a long-term unit buying MORE than 20,000 a month (超过: exactly 20,000 is not).
        ("1999.99", "20000", "bulk_minimum"),
        ("1999.99", "20000.01", None),
        ("100", "50000", None),
    ],
)
def test_retail_bulk_is_2000_per_purchase_or_above_20000_a_month(
    policies: dict[str, Policy], amount: str, monthly: str | None, rule: str | None
) -> None:
    fields: dict[str, Any] = {"gross_margin_pct": "20"}
    if monthly is not None:
        fields["monthly_purchase"] = monthly
    assert refused_by(policies["retail_bulk_discount"], amount, fields) == rule


def test_retail_countersign_needs_all_three_managers(policies: dict[str, Policy]) -> None:
    stage = next(s for s in policies["retail_bulk_discount"].stages if s.mode == "all")
    assert stage.key == "managers_countersign"
    assert [a.role for a in stage.approvers] == [
        "operations_manager",
        "purchasing_manager",
        "merchant_manager",
    ]


# --- 5. customer operating expense [002] --------------------------------------------

EXPENSE = {
    "purpose": "Spring customer meeting",
    "payment_method": "bank transfer",
    "expected_payment_date": "2026-04-01",
    "budget_basis": "2026 customer budget line 4",
    "within_budget": True,
}
EXPENSE_CHECKS = ["department_head_review", "finance_first_check", "finance_second_check"]


@pytest.mark.parametrize(
    ("amount", "stages"),
    [
        ("0.01", [*EXPENSE_CHECKS, "division_leader_approve"]),
        ("50000", [*EXPENSE_CHECKS, "division_leader_approve"]),
        ("50000.01", [*EXPENSE_CHECKS, "general_manager_approve"]),
    ],
)
def test_operating_expense_threshold(
    policies: dict[str, Policy], amount: str, stages: list[str]
) -> None:
    assert route(policies, "customer_operating_expense", amount, EXPENSE) == stages


def test_operating_expense_beyond_budget_is_refused(policies: dict[str, Policy]) -> None:
    policy = policies["customer_operating_expense"]
    assert refused_by(policy, "100", EXPENSE | {"within_budget": False}) == "beyond_budget"
    assert refused_by(policy, "100", EXPENSE) is None


# --- 6. commercial terms beyond authority [003 §5] ----------------------------------

TERMS = {"term": "payment_terms", "details": "90 days instead of 30"}


@pytest.mark.parametrize(
    ("fields", "stages"),
    [
        ({}, ["customer_director_approve"]),
        ({"beyond_director": False}, ["customer_director_approve"]),
        ({"beyond_director": True}, ["customer_director_approve", "general_manager_approve"]),
    ],
)
def test_commercial_terms_director_then_general_manager(
    policies: dict[str, Policy], fields: dict[str, Any], stages: list[str]
) -> None:
    assert route(policies, "commercial_terms_beyond_authority", None, TERMS | fields) == stages


def test_commercial_terms_copy_the_customer_support_supervisor(
    policies: dict[str, Policy],
) -> None:
    cc = policies["commercial_terms_beyond_authority"].cc
    assert [(c.who.role, c.when) for c in cc] == [("customer_support_supervisor", None)]


# --- 7. customer commission [003 §6] ------------------------------------------------

DIRECTOR = "customer_director_approve"
GM = "general_manager_approve"


@pytest.mark.parametrize(
    ("pct", "stages"),
    [
        ("0", []),  # within the account manager's own authority: approved at once
        ("5", []),
        ("5.01", [DIRECTOR]),
        ("9.99", [DIRECTOR]),
        ("10", [DIRECTOR, GM]),  # 达到和超过10%: 10 itself goes to the general manager
        ("30", [DIRECTOR, GM]),
    ],
)
def test_commission_tiers(policies: dict[str, Policy], pct: str, stages: list[str]) -> None:
    fields = {"received_amount": "100000", "commission_pct": pct}
    assert route(policies, "customer_commission", "5000", fields) == stages


# --- 8. compensation volume [003 §4] ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pct", "stages"),
    [
        ("platform", "1", []),
        ("platform", "1.01", [DIRECTOR]),
        ("database", "1.5", []),
        ("database", "2", []),
        ("database", "2.01", [DIRECTOR]),
        ("platform", "5", [DIRECTOR]),
        ("platform", "5.01", [DIRECTOR, GM]),
        ("database", "5", [DIRECTOR]),
        ("database", "5.01", [DIRECTOR, GM]),
    ],
)
def test_compensation_volume_tiers(
    policies: dict[str, Policy], kind: str, pct: str, stages: list[str]
) -> None:
    fields = {
        "customer_kind": kind,
        "monthly_volume": 2_000_000,
        "compensation_pct": pct,
        "failure": "a day of sends lost",
    }
    assert route(policies, "compensation_volume", None, fields) == stages


# --- 9. agreement change [003 §2] ---------------------------------------------------


def test_agreement_change_director_first_then_supervisor(policies: dict[str, Policy]) -> None:
    fields = {"agreement_no": "A-7", "changes": "payment in 45 days"}
    assert route(policies, "agreement_change", None, fields) == [
        "customer_director_review",
        "customer_support_final_check",
    ]


# --- 10. gift [004 §6.12] -----------------------------------------------------------

GIFT = {"gift": "Mooncakes, 2 boxes", "reason": "good payer for 3 years"}


@pytest.mark.parametrize(
    ("amount", "stages"),
    [
        ("0.01", ["cs_center_review", "branch_general_manager_approve"]),
        ("500", ["cs_center_review", "branch_general_manager_approve"]),  # 500 (含)
        ("500.01", ["cs_center_review", "group_finance_director_approve"]),  # 超过 500
    ],
)
def test_gift_threshold(policies: dict[str, Policy], amount: str, stages: list[str]) -> None:
    assert route(policies, "customer_gift", amount, GIFT) == stages


# --- 11. special discount [004 §6.14] -----------------------------------------------

SPECIAL = {"invoice_total": "60000", "discount_pct": "5", "reason": "year-end volume"}


@pytest.mark.parametrize(
    ("margin", "rule"),
    [("-0.01", "negative_margin"), ("0", None), (None, None)],
)
def test_special_discount_route_and_margin(
    policies: dict[str, Policy], margin: str | None, rule: str | None
) -> None:
    policy = policies["special_discount"]
    fields = SPECIAL | ({"gross_margin_pct": margin} if margin is not None else {})
    assert refused_by(policy, "3000", fields) == rule
    if rule is None:
        assert stages_of(policy, "3000", fields) == ["cs_center_review", "authority_approve"]


def test_special_discount_pays_out_after_full_payment_in_windows(
    policies: dict[str, Policy],
) -> None:
    policy = policies["special_discount"]
    (paid,) = policy.milestones
    assert paid.amount is not None and paid.amount.from_field == "invoice_total"
    assert policy.payout is not None
    assert policy.payout.after_milestone == paid.name
    assert policy.payout.windows == ((7, 10), (25, 27))
    assert (policy.timers.reply, policy.timers.resolve) == (
        Span.parse("4 working hours"),
        Span.parse("3 working days"),  # 三个工作日内 [004 §6.14.2]
    )


# --- 12. credit line [004 §5.11] ----------------------------------------------------

CREDIT = {
    "cooperation_months": 3,
    "avg_monthly_orders": "5000",
    "credit_rating": "good",
    "profile": "Office supplies buyer for a hospital group",
    "assessment": "Pays on time",
}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({}, None),
        ({"cooperation_months": 2}, "cooperation_too_short"),
        ({"cooperation_months": 3}, None),
        ({"avg_monthly_orders": "4999.99"}, "orders_too_small"),
        ({"avg_monthly_orders": "5000"}, None),
        ({"credit_rating": "fair"}, "credit_not_good"),
        ({"credit_rating": "poor"}, "credit_not_good"),
    ],
)
def test_credit_line_eligibility(
    policies: dict[str, Policy], change: dict[str, Any], rule: str | None
) -> None:
    assert refused_by(policies["credit_line"], "100000", CREDIT | change) == rule


def test_credit_line_countersign_then_branch_gm_every_six_months(
    policies: dict[str, Policy],
) -> None:
    policy = policies["credit_line"]
    assert stages_of(policy, "100000", CREDIT) == [
        "credit_review_countersign",
        "branch_general_manager_approve",
    ]
    countersign = policy.stages[0]
    assert countersign.mode == "all"
    assert [a.role for a in countersign.approvers] == [
        "office_supervisor",
        "sales_management_manager",
        "finance_staff",
    ]
    assert policy.review_cycle is not None and policy.review_cycle.every.days == 182


# --- 13. special / custom order [004 §6.5.5, §5.10] ---------------------------------

ORDER = {"goods": "Branded notebooks", "custom_goods": False}


@pytest.mark.parametrize(
    ("amount", "fields", "stages"),
    [
        ("4999.99", {}, []),
        ("5000", {}, ["cs_center_approve"]),  # 5000元以上: 5,000 included
        ("4999.99", {"custom_goods": True}, ["custom_inquiry_review"]),
        ("5000", {"custom_goods": True}, ["cs_center_approve"]),
        ("4999.99", {"exceeds_credit": True}, ["branch_general_manager_approve"]),
        (
            "5000",
            {"custom_goods": True, "exceeds_credit": True},
            ["cs_center_approve", "branch_general_manager_approve"],
        ),
    ],
)
def test_custom_order_tiers(
    policies: dict[str, Policy], amount: str, fields: dict[str, Any], stages: list[str]
) -> None:
    assert route(policies, "special_custom_order", amount, ORDER | fields) == stages


@pytest.mark.parametrize(("custom", "applies"), [(True, True), (False, False)])
def test_custom_order_deposit_only_for_custom_goods(
    policies: dict[str, Policy], custom: bool, applies: bool
) -> None:
    policy = policies["special_custom_order"]
    (deposit,) = policy.milestones
    assert deposit.when is not None and deposit.amount is not None
    assert deposit.amount.percent_of_amount == 30
    values = values_of(policy, "8000", ORDER | {"custom_goods": custom})
    assert evaluate(deposit.when, values) is applies


# --- 14. complaint [004 §6.10] ------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "stages", "role"),
    [
        ("staff", ["acknowledge_staff", "resolve_staff"], "cs_center_manager"),
        (
            "product_quality",
            ["acknowledge_product_quality", "resolve_product_quality"],
            "office_supervisor",
        ),
        (
            "beyond_department",
            ["acknowledge_beyond_department", "resolve_beyond_department"],
            "customer_management_dept",
        ),
    ],
)
def test_complaint_routes_by_category(
    policies: dict[str, Policy], category: str, stages: list[str], role: str
) -> None:
    policy = policies["customer_complaint"]
    fields = {"category": category, "major": False, "description": "rude courier"}
    assert stages_of(policy, None, fields) == stages
    by_key = {s.key: s for s in policy.stages}
    assert [[a.role for a in by_key[k].approvers] for k in stages] == [[role], [role]]


@pytest.mark.parametrize(("major", "copied"), [(True, True), (False, False)])
def test_major_complaints_copy_customer_management(
    policies: dict[str, Policy], major: bool, copied: bool
) -> None:
    policy = policies["customer_complaint"]
    (cc,) = policy.cc
    assert cc.who.role == "customer_management_dept" and cc.when is not None
    fields = {"category": "staff", "major": major, "description": "late delivery"}
    assert evaluate(cc.when, values_of(policy, None, fields)) is copied


def test_complaint_timers_are_reply_4h_resolve_3d(policies: dict[str, Policy]) -> None:
    policy = policies["customer_complaint"]
    assert policy.timers.reply == Span.parse("4 working hours")
    assert policy.timers.resolve == Span.parse("P3D")  # 三日内解决: calendar days
    assert policy.timers.resubmit == Span.parse("5 working days")
    assert policy.amount.required is False


# --- 15. overdue receivable [003 §8] ------------------------------------------------


def test_overdue_receivable_ladder_then_management_then_board(
    policies: dict[str, Policy],
) -> None:
    policy = policies["overdue_receivable"]
    fields = {"invoice_no": "INV-9", "due_date": "2026-01-31"}
    assert stages_of(policy, "80000", fields) == ["management_review", "board_write_off_decision"]
    watch = policy.watch
    assert watch is not None
    assert (watch.settles_with, watch.anchor_field) == ("payment_received", "due_date")
    ladder = [(s.after.days, s.repeat_every.days if s.repeat_every else None) for s in watch.steps]
    assert ladder == [(60, None), (120, 7)]
    assert watch.review_after.days == 180
    reported_to = [(a.role, a.manager) for a in watch.steps[0].notify]
    assert reported_to == [(None, 1), ("finance_head", None)]


# --- timers: human deadlines in working time (issue 14, item 9) ------------------------


def test_every_policy_times_its_people_in_working_time(policies: dict[str, Policy]) -> None:
    """4 working hours to reply, 3 working days to decide, 5 working days to resubmit;
    only the complaint's 三日内解决 stays in calendar days [004 §6.10.5]."""
    for policy in policies.values():
        t = policy.timers
        resolve = "P3D" if policy.type == "customer_complaint" else "P3D working"
        assert (t.reply, t.resolve, t.resubmit) == (
            Span.parse("PT4H working"),
            Span.parse(resolve),
            Span.parse("P5D working"),
        ), policy.type


def test_milestone_deadlines_stay_calendar_time(policies: dict[str, Policy]) -> None:
    """ "A 7-day deadline must fire on day 7": deposits and payments count every day."""
    dues = {(p.type, m.name): m.due for p in policies.values() for m in p.milestones}
    assert dues and not any(d.working for d in dues.values())
    assert dues[("retail_bulk_discount", "deposit")] == Span.parse("P7D")
