"""Every request type of POLICIES.md end to end through the API, on the real stack.

One scenario per type: submitted by a sensible requester, decided stage by stage
by the people the demo org gives each role, and carried to its end (approved, or
completed after its milestones). Timers (milestone lapses, payout windows, the
six-monthly credit review, the receivable ladder) are tested under time skipping
in tests/workflows; here the API shows what each type looks like after
submission and after approval. Each scenario uses its own customer name.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from common.business_calendar import default_calendar
from domain.durations import Span
from tests.policies.test_catalogue import TYPES
from tests.support.api import Auth, Db
from tests.support.policy_versions import version_of

pytestmark = pytest.mark.usefixtures("worker")

CST = timedelta(hours=8)  # the payout windows are days of the company's calendar


class Requests:
    """Drive requests through the API as different demo users."""

    def __init__(self, api: httpx.AsyncClient, auth: Auth) -> None:
        self.api, self.auth = api, auth

    async def submit(
        self,
        user: str,
        type_: str,
        amount: str | None,
        fields: dict[str, Any],
        customer: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": type_,
            "title": f"{type_} for {customer or 'a customer'}",
            "customer": customer or unique(type_),
            "fields": fields,
        }
        if amount is not None:
            body["amount"] = amount
        resp = await self.api.post("/v1/requests", json=body, headers=self.auth(user))
        assert resp.status_code == 201, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def decide(self, user: str, rid: str, action: str = "approve") -> dict[str, Any]:
        resp = await self.api.post(
            f"/v1/requests/{rid}/decisions",
            json={"action": action, "comment": f"{user}: ok"},
            headers=self.auth(user),
        )
        assert resp.status_code == 200, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def approve_in_turn(
        self, rid: str, view: dict[str, Any], steps: list[tuple[str, list[str]]]
    ) -> dict[str, Any]:
        """For each (stage key, people): the stage is current, waits on exactly those
        people, and each of them approves it."""
        for key, people in steps:
            assert view["status"] == "in_review", view["status"]
            assert view["stages"][view["stage_index"]]["key"] == key
            assert sorted(view["current_approvers"]) == sorted(people), key
            for user in people:
                view = await self.decide(user, rid)
        return view

    async def milestone(
        self, user: str, rid: str, name: str, amount: str | None, reference: str = "BT"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"reference": reference}
        if amount is not None:
            body["amount"] = amount
        resp = await self.api.post(
            f"/v1/requests/{rid}/milestones/{name}", json=body, headers=self.auth(user)
        )
        assert resp.status_code == 200, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def get(self, user: str, rid: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/requests/{rid}", headers=self.auth(user))
        assert resp.status_code == 200, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def wait_for(
        self, user: str, rid: str, statuses: set[str], seconds: float = 20
    ) -> dict[str, Any]:
        """The view once the workflow has moved on by itself (a timer already due)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            view = await self.get(user, rid)
            if view["status"] in statuses:
                return view
            assert asyncio.get_running_loop().time() < deadline, view["status"]
            await asyncio.sleep(0.2)


@pytest.fixture
def req(api: httpx.AsyncClient, auth: Auth) -> Requests:
    return Requests(api, auth)


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def kinds(view: dict[str, Any]) -> list[str]:
    return [h["kind"] for h in view["history"]]


def stage_keys(view: dict[str, Any]) -> list[str]:
    return [s["key"] for s in view["stages"]]


def milestone(view: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in view["milestones"] if m["name"] == name)
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_all_fifteen_request_types_are_listed(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/policies", headers=auth("am_li"))
    assert resp.status_code == 200
    listed = [(p["type"], p["version"]) for p in resp.json()["items"]]
    assert listed == [(t, version_of(t)) for t in TYPES]


# --- 1. customer discount -------------------------------------------------------------


async def test_customer_discount_through_pricing_to_the_sales_director(
    req: Requests, db: Db
) -> None:
    fields = {
        "product": "Copier paper A4",
        "discount_form": "rate",
        "discount_pct": "12",
        "reason": "bulk purchase for a new campus",
    }
    view = await req.submit("am_li", "customer_discount", "80000", fields)
    rid = view["id"]
    assert view["cc"] == ["od_peng"]  # the order desk applies it after approval
    view = await req.approve_in_turn(
        rid,
        view,
        [
            ("sales_head_review", ["sh_zhou"]),
            ("finance_review", ["fin_he"]),
            ("pricing_review", ["price_lin"]),
            ("sales_director_approve", ["sd_chen"]),
        ],
    )
    assert view["status"] == "approved"
    assert await db.status(rid) == "approved"
    assert kinds(view)[:3] == ["submitted", "cc", "assigned"]
    assert kinds(view)[-1] == "request_approved"


# --- 2. big-customer contract ---------------------------------------------------------


async def test_big_customer_contract_middle_tier(req: Requests, db: Db) -> None:
    fields = {"contract_no": "C-2026-11", "settlement_floor_price": "200000"}
    view = await req.submit("am_li", "big_customer_contract", "250000", fields)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [("big_customer_dept_sign", ["bcd_zheng"]), ("deputy_sales_director_approve", ["dsd_liu"])],
    )
    assert view["status"] == "approved"
    assert await db.status(view["id"]) == "approved"


# --- 3. real-estate group purchase ----------------------------------------------------


async def test_group_purchase_below_floor_then_the_whole_payment_chain(
    req: Requests, db: Db
) -> None:
    fields = {
        "units": 12,
        "project": "Lakeside",
        "batch": "2",
        "employer": "City Hospital",
        "below_floor": True,
    }
    view = await req.submit("am_li", "real_estate_group_purchase", "10000000", fields)
    rid = view["id"]
    view = await req.approve_in_turn(
        rid,
        view,
        [
            ("value_loss_approval", ["gm_wang"]),  # before the price stages
            ("sales_manager_review", ["sh_zhou"]),
            ("price_approval", ["sd_chen"]),
        ],
    )
    assert view["status"] == "awaiting_deposit"
    assert [(m["name"], Decimal(m["required"])) for m in view["milestones"]] == [
        ("deposit", Decimal("500000")),
        ("down_payment", Decimal("2500000")),
        ("full_payment", Decimal("7000000")),
    ]
    opened = at(milestone(view, "deposit")["opened_at"])
    assert at(milestone(view, "deposit")["due"]) - opened == timedelta(days=7)

    view = await req.milestone("fin_he", rid, "deposit", "500000", "BT-DEP")
    assert view["status"] == "awaiting_down_payment"
    down = milestone(view, "down_payment")
    assert at(down["due"]) - at(down["opened_at"]) == timedelta(days=7)

    view = await req.milestone("fin_he", rid, "down_payment", "2500000", "BT-DOWN")
    assert view["status"] == "awaiting_full_payment"
    full = milestone(view, "full_payment")
    assert at(full["due"]) - at(full["opened_at"]) == timedelta(days=183)

    view = await req.milestone("fin_he", rid, "full_payment", "3000000", "MORTGAGE-1")
    assert view["status"] == "awaiting_full_payment"
    view = await req.milestone("am_li", rid, "full_payment", "4000000", "MORTGAGE-2")
    assert view["status"] == "completed"
    assert [m["status"] for m in view["milestones"]] == ["met", "met", "met"]
    assert await db.status(rid) == "completed"


# --- 4. retail bulk discount ----------------------------------------------------------


async def test_retail_long_term_unit_below_2000_with_deposit(req: Requests, db: Db) -> None:
    fields = {"gross_margin_pct": "6", "monthly_purchase": "30000"}
    view = await req.submit("am_li", "retail_bulk_discount", "1500", fields)
    rid = view["id"]
    view = await req.approve_in_turn(
        rid,
        view,
        [
            ("merchant_manager_check", ["mm_hu"]),
            ("deputy_general_manager_approve", ["dgm_zhao"]),
        ],
    )
    assert view["status"] == "awaiting_deposit"
    assert Decimal(milestone(view, "deposit")["required"]) == Decimal("450")
    view = await req.milestone("fin_he", rid, "deposit", "450")
    assert view["status"] == "completed"
    assert await db.status(rid) == "completed"


# --- 5. customer operating expense ----------------------------------------------------


async def test_operating_expense_above_threshold_goes_to_the_general_manager(
    req: Requests, db: Db
) -> None:
    fields = {
        "purpose": "Customer appreciation day",
        "payment_method": "bank transfer",
        "expected_payment_date": "2026-05-20",
        "budget_basis": "2026 key-account budget",
        "within_budget": True,
    }
    view = await req.submit("am_li", "customer_operating_expense", "60000", fields)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [
            ("department_head_review", ["sh_zhou"]),  # am_li's own department head
            ("finance_first_check", ["fin_he"]),
            ("finance_second_check", ["fh_gao"]),
            ("general_manager_approve", ["gm_wang"]),
        ],
    )
    assert view["status"] == "approved"
    assert await db.status(view["id"]) == "approved"


# --- 6. commercial terms beyond authority ---------------------------------------------


async def test_commercial_terms_beyond_the_director_copy_the_support_supervisor(
    req: Requests, db: Db
) -> None:
    fields = {"term": "payment_terms", "details": "90 days", "beyond_director": True}
    view = await req.submit("am_li", "commercial_terms_beyond_authority", None, fields)
    rid = view["id"]
    assert view["cc"] == ["css_ma"]
    view = await req.approve_in_turn(
        rid,
        view,
        [("customer_director_approve", ["cd_xu"]), ("general_manager_approve", ["gm_wang"])],
    )
    assert view["status"] == "approved"
    assert view["cc"] == ["css_ma"]
    assert await db.status(rid) == "approved"


# --- 7. customer commission -----------------------------------------------------------


async def test_commission_within_own_authority_is_approved_at_once(req: Requests, db: Db) -> None:
    fields = {"received_amount": "100000", "commission_pct": "5"}
    view = await req.submit("am_li", "customer_commission", "5000", fields)
    view = await req.wait_for("am_li", view["id"], {"approved"})
    assert view["stages"] == []
    approved = [h for h in view["history"] if h["kind"] == "request_approved"]
    assert [h["data"] for h in approved] == [{"within_authority": True}]
    assert kinds(view) == ["submitted", "request_approved"]
    assert await db.status(view["id"]) == "approved"


async def test_commission_of_10_percent_goes_through_the_director_to_the_gm(
    req: Requests,
) -> None:
    fields = {"received_amount": "100000", "commission_pct": "10"}
    view = await req.submit("am_li", "customer_commission", "10000", fields)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [("customer_director_approve", ["cd_xu"]), ("general_manager_approve", ["gm_wang"])],
    )
    assert view["status"] == "approved"


# --- 8. compensation volume -----------------------------------------------------------


async def test_compensation_volume_authority_depends_on_the_customer_kind(
    req: Requests,
) -> None:
    base = {"monthly_volume": 1_000_000, "failure": "gateway outage", "compensation_pct": "2"}
    within = await req.submit(
        "am_li", "compensation_volume", None, base | {"customer_kind": "database"}
    )
    within = await req.wait_for("am_li", within["id"], {"approved"})
    assert within["stages"] == []
    assert kinds(within) == ["submitted", "request_approved"]

    beyond = await req.submit(
        "am_li", "compensation_volume", None, base | {"customer_kind": "platform"}
    )
    beyond = await req.approve_in_turn(
        beyond["id"], beyond, [("customer_director_approve", ["cd_xu"])]
    )
    assert beyond["status"] == "approved"


# --- 9. agreement change --------------------------------------------------------------


async def test_agreement_change_director_then_support_supervisor(req: Requests, db: Db) -> None:
    fields = {"agreement_no": "A-2026-3", "changes": "payment within 45 days"}
    view = await req.submit("am_li", "agreement_change", None, fields)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [
            ("customer_director_review", ["cd_xu"]),
            ("customer_support_final_check", ["css_ma"]),
        ],
    )
    assert view["status"] == "approved"
    assert await db.status(view["id"]) == "approved"


# --- 10. gift -------------------------------------------------------------------------


async def test_gift_above_500_goes_to_the_group_finance_director(req: Requests, db: Db) -> None:
    fields = {"gift": "Mid-autumn hamper", "reason": "top customer, pays on time"}
    view = await req.submit("am_li", "customer_gift", "800", fields)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [("cs_center_review", ["csc_tang"]), ("group_finance_director_approve", ["gfd_cao"])],
    )
    assert view["status"] == "approved"
    assert await db.status(view["id"]) == "approved"


# --- 11. special discount -------------------------------------------------------------


def _in_a_window(moment: datetime) -> bool:
    day = (moment.astimezone(UTC) + CST).day
    return 7 <= day <= 10 or 25 <= day <= 27


async def test_special_discount_waits_for_full_payment_then_the_payout_window(
    req: Requests, db: Db
) -> None:
    fields = {"invoice_total": "60000", "discount_pct": "5", "reason": "year-end volume"}
    view = await req.submit("am_li", "special_discount", "3000", fields)
    rid = view["id"]
    view = await req.approve_in_turn(
        rid,
        view,
        [("cs_center_review", ["csc_tang"]), ("authority_approve", ["bgm_feng"])],
    )
    assert view["status"] == "awaiting_paid_in_full"
    paid = milestone(view, "paid_in_full")
    assert Decimal(paid["required"]) == Decimal("60000")  # the invoice total, not the rebate
    assert at(paid["due"]) - at(paid["opened_at"]) == timedelta(days=90)

    view = await req.milestone("fin_he", rid, "paid_in_full", "40000", "BT-1")
    assert view["status"] == "awaiting_paid_in_full"
    paid_at = datetime.now(UTC)
    view = await req.milestone("fin_he", rid, "paid_in_full", "20000", "BT-2")
    # The rebate waits for the next window (or is paid at once inside one).
    assert view["status"] in {"awaiting_payout", "completed"}
    payout = view["payout"]
    assert payout is not None
    assert Decimal(payout["amount"]) == Decimal("3000")
    opens = at(payout["window_opens"])
    assert _in_a_window(opens)
    assert opens >= paid_at - timedelta(minutes=1)
    assert opens - paid_at < timedelta(days=31)
    if opens > datetime.now(UTC) + timedelta(seconds=5):
        # Outside a window: it waits (the time-skipping tests pay it out).
        assert view["status"] == "awaiting_payout"
        assert await db.status(rid) == "awaiting_payout"
        assert kinds(view)[-2:] == ["milestone_met", "payout_scheduled"]


# --- 12. credit line ------------------------------------------------------------------


async def test_credit_line_countersign_then_branch_gm_then_in_force(req: Requests, db: Db) -> None:
    fields = {
        "cooperation_months": 6,
        "avg_monthly_orders": "12000",
        "credit_rating": "good",
        "profile": "Hospital group, office supplies",
        "assessment": "Pays within terms for six months",
    }
    view = await req.submit("am_li", "credit_line", "100000", fields)
    rid = view["id"]
    countersign = view["stages"][0]
    assert (countersign["key"], countersign["mode"]) == ("credit_review_countersign", "all")
    view = await req.approve_in_turn(
        rid,
        view,
        [
            ("credit_review_countersign", ["os_deng", "smm_xie", "fin_he"]),
            ("branch_general_manager_approve", ["bgm_feng"]),
        ],
    )
    approved_at = datetime.now(UTC)
    view = await req.wait_for("am_li", rid, {"active"})
    assert view["next_review"] is not None
    until_review = at(view["next_review"]) - approved_at
    assert timedelta(days=182) - timedelta(minutes=1) < until_review <= timedelta(days=182)
    assert "in_force" in kinds(view)
    assert await db.status(rid) == "active"


# --- 13. special / custom order -------------------------------------------------------


async def test_custom_order_above_credit_with_a_30_percent_deposit(req: Requests, db: Db) -> None:
    fields = {"goods": "Notebooks with the customer's logo", "custom_goods": True}
    view = await req.submit(
        "am_li", "special_custom_order", "8000", fields | {"exceeds_credit": True}
    )
    rid = view["id"]
    view = await req.approve_in_turn(
        rid,
        view,
        [("cs_center_approve", ["csc_tang"]), ("branch_general_manager_approve", ["bgm_feng"])],
    )
    assert view["status"] == "awaiting_deposit"
    assert Decimal(milestone(view, "deposit")["required"]) == Decimal("2400")
    view = await req.milestone("od_peng", rid, "deposit", "2400", "BT-CUSTOM")
    assert view["status"] == "completed"
    assert await db.status(rid) == "completed"


async def test_catalogue_order_below_5000_needs_nobody_and_no_deposit(req: Requests) -> None:
    fields = {"goods": "Standard toner", "custom_goods": False}
    view = await req.submit("am_li", "special_custom_order", "4999.99", fields)
    view = await req.wait_for("am_li", view["id"], {"approved"})
    assert view["milestones"] == []
    assert kinds(view) == ["submitted", "request_approved"]


# --- 14. complaint --------------------------------------------------------------------


async def test_major_product_quality_complaint(req: Requests, db: Db) -> None:
    fields = {"category": "product_quality", "major": True, "description": "toner leaks"}
    view = await req.submit("am_sun", "customer_complaint", None, fields)
    rid = view["id"]
    assert stage_keys(view) == ["acknowledge_product_quality", "resolve_product_quality"]
    assert view["cc"] == ["cmd_han"]  # major: filed with customer management
    # The complaint's 4-hour reply counts working time on the business calendar.
    started = at(view["stages"][0]["started_at"]).replace(second=0, microsecond=0)
    expected = default_calendar(started.year).due(started, Span.parse("PT4H working"))
    assert at(view["stages"][0]["reply_due"]) == expected.at
    assert view["working_time"]["reply"]["span"] == "4 working hours"
    assert view["provisional"] == expected.provisional
    assert at(view["resolve_due"]) - at(view["submitted_at"]) == timedelta(days=3)
    view = await req.approve_in_turn(
        rid,
        view,
        [("acknowledge_product_quality", ["os_deng"]), ("resolve_product_quality", ["os_deng"])],
    )
    assert view["status"] == "approved"
    assert await db.status(rid) == "approved"


async def test_minor_staff_complaint_copies_nobody(req: Requests) -> None:
    fields = {"category": "staff", "major": False, "description": "courier was rude"}
    view = await req.submit("am_sun", "customer_complaint", None, fields)
    assert view["cc"] == []
    assert "cc" not in kinds(view)
    view = await req.approve_in_turn(
        view["id"],
        view,
        [("acknowledge_staff", ["csc_tang"]), ("resolve_staff", ["csc_tang"])],
    )
    assert view["status"] == "approved"


# --- 15. overdue receivable -----------------------------------------------------------


async def test_receivable_is_watched_then_settled_by_payment(req: Requests, db: Db) -> None:
    due = date.today() - timedelta(days=10)
    fields = {"invoice_no": "INV-2026-88", "due_date": due.isoformat()}
    view = await req.submit("am_li", "overdue_receivable", "80000", fields)
    rid = view["id"]
    assert view["status"] == "watching"
    assert stage_keys(view) == ["management_review", "board_write_off_decision"]
    watch = view["watch"]
    anchor = datetime(due.year, due.month, due.day, tzinfo=UTC)
    assert at(watch["anchor"]) == anchor
    assert at(watch["next_at"]) == anchor + timedelta(days=60)
    assert at(watch["review_at"]) == anchor + timedelta(days=180)
    received = milestone(view, "payment_received")
    assert (received["status"], Decimal(received["required"])) == ("open", Decimal("80000"))

    view = await req.milestone("fin_he", rid, "payment_received", "30000", "BT-PART")
    assert view["status"] == "watching"
    view = await req.milestone("fin_he", rid, "payment_received", "50000", "BT-REST")
    assert view["status"] == "completed"
    assert kinds(view)[-1] == "settled"
    assert await db.status(rid) == "completed"


async def test_receivable_six_months_overdue_goes_to_management_then_the_board(
    req: Requests, db: Db
) -> None:
    due = date.today() - timedelta(days=200)
    fields = {"invoice_no": "INV-2025-17", "due_date": due.isoformat()}
    view = await req.submit("am_li", "overdue_receivable", "45000", fields)
    rid = view["id"]
    # Every rung of the ladder is already past: the notices go out and the review starts.
    view = await req.wait_for("am_li", rid, {"in_review"})
    notices = [h for h in view["history"] if h["kind"] == "watch_notice"]
    assert [sorted(h["data"]["people"]) for h in notices] == [
        ["fh_gao", "sh_zhou"],
        ["am_li", "sh_zhou"],  # weekly progress: the account manager and their head
    ]
    view = await req.approve_in_turn(
        rid,
        view,
        [("management_review", ["gm_wang"]), ("board_write_off_decision", ["gfd_cao"])],
    )
    assert view["status"] == "approved"  # written off
    assert await db.status(rid) == "approved"
