"""End to end as different users: the API, the real worker, PostgreSQL and Temporal.

Each test uses its own customer name so that list queries see only its requests.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support.api import Auth, Db, pending_steps

pytestmark = pytest.mark.usefixtures("worker")


def contract(customer: str, amount: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": amount,
        "fields": {"contract_no": "C-2026-7", "settlement_floor_price": "90000"},
    }
    body.update(over)
    return body


def retail(customer: str, amount: str, margin: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "retail_bulk_discount",
        "title": f"Bulk order for {customer}",
        "customer": customer,
        "amount": amount,
        "fields": {"gross_margin_pct": margin, **fields},
    }


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


class Flow:
    """One request driven through the API as different people."""

    def __init__(self, api: httpx.AsyncClient, auth: Auth, db: Db) -> None:
        self.api, self.auth, self.db = api, auth, db

    async def submit(
        self, user: str, body: dict[str, Any], key: str | None = None, expect: int = 201
    ) -> dict[str, Any]:
        headers = self.auth(user) | ({"Idempotency-Key": key} if key else {})
        resp = await self.api.post("/v1/requests", json=body, headers=headers)
        assert resp.status_code == expect, resp.text
        view: dict[str, Any] = resp.json()
        return view

    async def act(
        self, user: str, rid: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.api.post(
            f"/v1/requests/{rid}/{path}", json=body or {}, headers=self.auth(user)
        )

    async def decide(
        self, user: str, rid: str, action: str = "approve", expect: int = 200
    ) -> dict[str, Any]:
        resp = await self.act(user, rid, "decisions", {"action": action, "comment": f"{user} ok"})
        assert resp.status_code == expect, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def get(self, user: str, rid: str) -> httpx.Response:
        return await self.api.get(f"/v1/requests/{rid}", headers=self.auth(user))


@pytest.fixture
def flow(api: httpx.AsyncClient, auth: Auth, db: Db) -> Flow:
    return Flow(api, auth, db)


def stage_keys(view: dict[str, Any]) -> list[str]:
    return [s["key"] for s in view["stages"]]


@pytest.mark.parametrize(
    ("amount", "stages", "first_approvers"),
    [
        ("100000", ["office_manager_sign", "big_customer_dept_approve"], ["om_wu", "om_yang"]),
        ("300000", ["big_customer_dept_sign", "deputy_sales_director_approve"], ["bcd_zheng"]),
        (
            "300000.01",
            ["big_customer_dept_sign", "deputy_sales_director_sign", "sales_director_approve"],
            ["bcd_zheng"],
        ),
    ],
)
async def test_submit_routes_each_contract_tier_and_assigns_the_first_stage(
    flow: Flow, db: Db, amount: str, stages: list[str], first_approvers: list[str]
) -> None:
    view = await flow.submit("am_li", contract(unique("Tier"), amount))
    assert view["status"] == "in_review"
    assert stage_keys(view) == stages
    assert view["stage_index"] == 0
    assert sorted(view["current_approvers"]) == first_approvers
    assert Decimal(view["amount"]) == Decimal(amount)
    assert await db.status(view["id"]) == "in_review"
    assert await db.event_kinds(view["id"]) == ["submitted", "assigned"]


async def test_approve_through_all_stages_as_different_users(flow: Flow, db: Db) -> None:
    view = await flow.submit("am_li", contract(unique("Acme"), "450000"))
    rid = view["id"]

    # Neither the requester nor a non-approver may decide; an outsider cannot even see it.
    refused = await flow.decide("am_li", rid, expect=403)
    assert refused["error"]["code"] == "not_eligible"
    refused = await flow.decide("auditor_qin", rid, expect=403)
    assert refused["error"]["code"] == "not_eligible"
    assert (await flow.act("am_sun", rid, "decisions", {"action": "approve"})).status_code == 404

    view = await flow.decide("bcd_zheng", rid)
    assert (view["stage_index"], view["current_approvers"]) == (1, ["dsd_liu"])
    assert await db.status(rid) == "in_review"
    # bcd_zheng's stage is done: a second decision is refused, nothing changes.
    again = await flow.decide("bcd_zheng", rid, expect=403)
    assert again["error"]["code"] == "not_eligible"

    view = await flow.decide("dsd_liu", rid)
    assert view["current_approvers"] == ["sd_chen"]
    view = await flow.decide("sd_chen", rid)
    assert view["status"] == "approved"
    assert [s["status"] for s in view["stages"]] == ["approved"] * 3
    assert await db.status(rid) == "approved"
    assert await db.event_kinds(rid) == [
        "submitted", "assigned",
        "approved", "stage_completed", "assigned",
        "approved", "stage_completed", "assigned",
        "approved", "stage_completed", "request_approved",
    ]  # fmt: skip

    # The workflow has closed: further actions are 409, the record stays readable.
    closed = await flow.decide("sd_chen", rid, expect=409)
    assert closed["error"] == {
        "code": "invalid_state",
        "message": "the request is closed",
        "details": {},
    }
    resp = await flow.get("bcd_zheng", rid)
    assert resp.status_code == 200
    history = resp.json()["history"]
    assert [h["seq"] for h in history] == list(range(1, 12))
    assert [h["actor"] for h in history if h["kind"] == "approved"] == [
        "bcd_zheng",
        "dsd_liu",
        "sd_chen",
    ]


async def test_visibility_requester_assignees_admin_auditor_only(flow: Flow) -> None:
    view = await flow.submit("am_li", contract(unique("Secret"), "120000"))
    rid = view["id"]
    for user in ("am_li", "bcd_zheng", "admin", "auditor_qin"):
        assert (await flow.get(user, rid)).status_code == 200, user
    for user in ("am_sun", "dsd_liu", "gm_wang", "om_wu"):  # dsd_liu: not assigned yet
        resp = await flow.get(user, rid)
        assert resp.status_code == 404, user
        assert resp.json()["error"]["code"] == "not_found"


async def test_countersign_needs_all_three_then_the_deposit_in_two_parts_completes(
    flow: Flow, db: Db
) -> None:
    view = await flow.submit("am_li", retail(unique("Mart"), "10000", "9.5"))
    rid = view["id"]
    assert stage_keys(view) == ["merchant_manager_check", "managers_countersign"]
    view = await flow.decide("mm_hu", rid)
    countersign = view["stages"][1]
    assert countersign["mode"] == "all"
    assert len(countersign["slots"]) == 3
    assert sorted(view["current_approvers"]) == ["mm_hu", "opm_guo", "pm_luo"]

    view = await flow.decide("opm_guo", rid)
    assert view["status"] == "in_review"
    assert sorted(view["current_approvers"]) == ["mm_hu", "pm_luo"]
    view = await flow.decide("pm_luo", rid)
    assert view["status"] == "in_review"
    assert view["current_approvers"] == ["mm_hu"]
    view = await flow.decide("mm_hu", rid)
    assert view["status"] == "awaiting_deposit"
    assert await db.status(rid) == "awaiting_deposit"
    deposit = view["milestones"][0]
    assert (deposit["name"], Decimal(deposit["required"])) == ("deposit", Decimal("3000"))

    # Only the requester, finance staff, the order desk or admins record payments.
    resp = await flow.act("mm_hu", rid, "milestones/deposit", {"amount": "1000"})
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"

    resp = await flow.act(
        "fin_he", rid, "milestones/deposit", {"amount": "1000", "reference": "BT-1"}
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "awaiting_deposit"
    assert Decimal(view["milestones"][0]["paid"]) == Decimal("1000")
    assert await db.status(rid) == "awaiting_deposit"

    resp = await flow.act(
        "am_li", rid, "milestones/deposit", {"amount": "2000", "reference": "BT-2"}
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "completed"
    assert view["milestones"][0]["status"] == "met"
    assert await db.status(rid) == "completed"
    assert (await db.event_kinds(rid))[-6:] == [
        "request_approved",
        "milestone_opened",
        "milestone",
        "milestone",
        "milestone_met",
        "completed",
    ]


async def test_a_milestone_that_is_not_open_is_refused(flow: Flow) -> None:
    view = await flow.submit("am_li", retail(unique("Early"), "10000", "20"))
    resp = await flow.act("am_li", view["id"], "milestones/deposit", {"amount": "3000"})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "invalid_state"


async def test_return_then_resubmit_takes_the_new_route(flow: Flow, db: Db) -> None:
    view = await flow.submit("am_li", contract(unique("Return"), "50000"))
    rid = view["id"]
    view = await flow.decide("om_yang", rid, action="return")
    assert view["status"] == "returned"
    assert await db.status(rid) == "returned"

    # Only the requester resubmits.
    resp = await flow.act("om_wu", rid, "resubmit", {"amount": "150000"})
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "forbidden"
    # Invalid new data is refused naming the field; the request stays returned.
    resp = await flow.act("am_li", rid, "resubmit", {"fields": {"contract_no": "C-1"}})
    assert resp.status_code == 422
    assert [f["field"] for f in resp.json()["error"]["details"]["fields"]] == [
        "fields.settlement_floor_price"
    ]
    assert await db.status(rid) == "returned"

    resp = await flow.act("am_li", rid, "resubmit", {"amount": "150000", "comment": "bigger"})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["status"] == "in_review"
    assert stage_keys(view) == ["big_customer_dept_sign", "deputy_sales_director_approve"]
    assert view["current_approvers"] == ["bcd_zheng"]
    assert await db.status(rid) == "in_review"
    assert await db.event_kinds(rid) == [
        "submitted", "assigned", "returned", "resubmitted", "assigned",
    ]  # fmt: skip
    # Whoever returned it still sees it after the route changed.
    assert (await flow.get("om_yang", rid)).status_code == 200


async def test_withdraw_is_for_the_requester_before_a_final_decision(flow: Flow, db: Db) -> None:
    view = await flow.submit("am_li", contract(unique("Withdraw"), "80000"))
    rid = view["id"]
    resp = await flow.act("om_wu", rid, "withdraw", {"comment": "not mine"})
    assert resp.status_code == 403
    resp = await flow.act("am_li", rid, "withdraw", {"comment": "customer cancelled"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "withdrawn"
    assert await db.status(rid) == "withdrawn"
    assert await db.event_kinds(rid) == ["submitted", "assigned", "withdrawn"]
    resp = await flow.act("am_li", rid, "withdraw", {})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "invalid_state"


async def test_transfer_hands_the_step_to_another_user(flow: Flow, db: Db) -> None:
    view = await flow.submit("am_li", contract(unique("Transfer"), "20000"))
    rid = view["id"]
    for to_user, why in (("am_li", "requester"), ("om_wu", "yourself"), ("ghost", "not an active")):
        resp = await flow.act("om_wu", rid, "transfer", {"to_user": to_user})
        assert resp.status_code == 422, to_user
        error = resp.json()["error"]
        assert error["details"]["fields"][0]["field"] == "to_user"
        assert why in error["details"]["fields"][0]["message"]
    # Someone who is not an approver of the current stage cannot transfer it.
    resp = await flow.act("auditor_qin", rid, "transfer", {"to_user": "cd_xu"})
    assert resp.status_code == 403

    resp = await flow.act("om_wu", rid, "transfer", {"to_user": "cd_xu", "comment": "on leave"})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert sorted(view["current_approvers"]) == ["cd_xu", "om_yang"]
    assert (await db.event_kinds(rid))[-1] == "transferred"

    inbox = await pending_steps(flow.api, flow.auth("cd_xu"))
    mine = [i for i in inbox if i["request_id"] == rid]
    assert len(mine) == 1
    assert (mine[0]["via"], mine[0]["stage_key"]) == ("transfer", "office_manager_sign")
    view = await flow.decide("cd_xu", rid)
    assert view["current_approvers"] == ["bcd_zheng"]
    # The transferor acted on it, so still sees it; the step left their inbox.
    assert (await flow.get("om_wu", rid)).status_code == 200
    inbox = await pending_steps(flow.api, flow.auth("om_wu"))
    assert rid not in [i["request_id"] for i in inbox]


async def test_idempotent_submit(flow: Flow, db: Db) -> None:
    customer = unique("Idem")
    key = f"key-{uuid.uuid4()}"
    first = await flow.submit("am_li", contract(customer, "60000"), key=key, expect=201)
    again = await flow.submit("am_li", contract(customer, "60000"), key=key, expect=200)
    assert again["id"] == first["id"]
    assert again["status"] == "in_review"
    assert [h["kind"] for h in again["history"]] == ["submitted", "assigned"]
    resp = await flow.api.post(
        "/v1/requests",
        json=contract(customer, "60001"),
        headers=flow.auth("am_li") | {"Idempotency-Key": key},
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "conflict"
    # The key is the requester's own: another requester with it gets a new request.
    other = await flow.submit("am_sun", contract(customer, "60000"), key=key, expect=201)
    assert other["id"] != first["id"]
    listed = await flow.api.get(
        "/v1/requests", params={"customer": customer}, headers=flow.auth("admin")
    )
    assert sorted(i["id"] for i in listed.json()["items"]) == sorted([first["id"], other["id"]])


async def test_inbox_lists_my_pending_steps_most_urgent_first(flow: Flow) -> None:
    customer = unique("Inbox")
    ids = [(await flow.submit("am_li", contract(customer, a)))["id"] for a in ("150000", "160000")]
    items = await pending_steps(flow.api, flow.auth("bcd_zheng"))
    dues = [i["due"] for i in items]
    # Most urgent first; a step with no reply deadline (escalated to the top) last.
    assert dues == sorted(dues, key=lambda d: (d is None, d or ""))
    mine = [i for i in items if i["request_id"] in ids]
    assert [i["request_id"] for i in mine] == ids
    item = mine[0]
    assert item["type"] == "big_customer_contract"
    assert item["title"] == f"Contract with {customer}"
    assert Decimal(item["amount"]) == Decimal("150000")
    assert item["stage_name"] == "Big-customer management department signs"
    assert item["overdue"] is False
    assert item["on_behalf_of"] is None
    # After deciding, the step leaves the inbox; the requester has no steps of their own.
    await flow.decide("bcd_zheng", ids[0])
    items = await pending_steps(flow.api, flow.auth("bcd_zheng"))
    assert ids[0] not in [i["request_id"] for i in items]
    items = await pending_steps(flow.api, flow.auth("am_li"))
    assert not [i for i in items if i["request_id"] in ids]


async def test_inbox_pages_in_urgency_order_with_a_total_and_no_step_twice(flow: Flow) -> None:
    customer = unique("InboxPages")
    for amount in ("150001", "150002", "150003"):
        await flow.submit("am_li", contract(customer, amount))

    async def page(**params: Any) -> dict[str, Any]:
        resp = await flow.api.get("/v1/inbox", params=params, headers=flow.auth("bcd_zheng"))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    everything = await page(limit=200)
    assert everything["total"] == len(everything["items"]) >= 3
    seen: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        got = await page(limit=2, **({"cursor": cursor} if cursor else {}))
        assert got["total"] == everything["total"] and len(got["items"]) <= 2
        seen += [(i["request_id"], i["stage_index"]) for i in got["items"]]
        cursor = got["next_cursor"]
        if cursor is None:
            break
    assert seen == [(i["request_id"], i["stage_index"]) for i in everything["items"]]
    assert len(set(seen)) == len(seen)
    bad = await flow.api.get(
        "/v1/inbox", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=flow.auth("bcd_zheng")
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "cursor"


async def test_list_filters_visibility_and_cursor_paging(flow: Flow) -> None:
    customer = unique("List")
    ids = [
        (await flow.submit("am_li", contract(customer, a)))["id"]
        for a in ("5000", "150000", "400000")
    ]
    await flow.decide("om_wu", ids[0])

    async def listed(user: str, **params: Any) -> list[str]:
        resp = await flow.api.get(
            "/v1/requests", params={"customer": customer, **params}, headers=flow.auth(user)
        )
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["items"]]

    newest_first = list(reversed(ids))
    assert await listed("am_li") == newest_first
    assert await listed("auditor_qin") == newest_first
    assert await listed("am_sun") == []
    # bcd_zheng is assigned to all three now (the first reached its second stage).
    assert await listed("bcd_zheng", assignee="me") == newest_first
    assert await listed("om_wu") == [ids[0]]
    assert await listed("om_wu", assignee="me") == []
    assert await listed("am_li", requester="am_li", type="big_customer_contract") == newest_first
    assert await listed("am_li", status="in_review", overdue="false") == newest_first
    assert await listed("am_li", status="approved") == []
    assert await listed("am_li", overdue="true") == []

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"customer": customer, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        resp = await flow.api.get("/v1/requests", params=params, headers=flow.auth("am_li"))
        body = resp.json()
        assert len(body["items"]) <= 1
        pages += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == newest_first
    summary = (
        await flow.api.get(
            "/v1/requests", params={"customer": customer}, headers=flow.auth("am_li")
        )
    ).json()["items"][0]
    assert summary["status"] == "in_review"
    assert summary["stage_key"] == "big_customer_dept_sign"
    assert summary["current_approvers"] == ["bcd_zheng"]


async def test_concurrent_submits_with_one_key_make_one_request(flow: Flow, db: Db) -> None:
    customer = unique("Race")
    key = f"race-{uuid.uuid4()}"
    headers = flow.auth("am_li") | {"Idempotency-Key": key}
    responses = await asyncio.gather(
        *(
            flow.api.post("/v1/requests", json=contract(customer, "70000"), headers=headers)
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    rid = responses[0].json()["id"]
    assert await db.event_kinds(rid) == ["submitted", "assigned"]
    listed = await flow.api.get(
        "/v1/requests", params={"customer": customer}, headers=flow.auth("am_li")
    )
    assert [i["id"] for i in listed.json()["items"]] == [rid]
