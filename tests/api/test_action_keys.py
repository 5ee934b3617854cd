"""Idempotency-Keys of actions belong to the caller: another caller's reuse never
collides, the same caller's other body is 409, the same call again is one action.

End to end: the API, the real worker, PostgreSQL and the Temporal dev server.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from api.commands import action_update_id
from tests.support.api import Auth, Db

pytestmark = pytest.mark.usefixtures("worker")


def contract(customer: str, amount: str = "250000") -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": amount,
        "fields": {"contract_no": "C-KEY-1", "settlement_floor_price": "90000"},
    }


def retail(customer: str) -> dict[str, Any]:
    return {
        "type": "retail_bulk_discount",
        "title": f"Bulk order for {customer}",
        "customer": customer,
        "amount": "10000",
        "fields": {"gross_margin_pct": "9.5"},
    }


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


class Caller:
    def __init__(self, api: httpx.AsyncClient, auth: Auth) -> None:
        self.api, self.auth = api, auth

    async def submit(self, body: dict[str, Any]) -> str:
        resp = await self.api.post("/v1/requests", json=body, headers=self.auth("am_li"))
        assert resp.status_code == 201, resp.text
        rid: str = resp.json()["id"]
        return rid

    async def decide(
        self, user: str, rid: str, action: str = "approve", key: str | None = None, **extra: Any
    ) -> httpx.Response:
        headers = self.auth(user) | ({"Idempotency-Key": key} if key else {})
        return await self.api.post(
            f"/v1/requests/{rid}/decisions",
            json={"action": action, **extra},
            headers=headers,
        )


@pytest.fixture
def caller(api: httpx.AsyncClient, auth: Auth) -> Caller:
    return Caller(api, auth)


def approvers_in_history(view: dict[str, Any]) -> list[str]:
    return [h["actor"] for h in view["history"] if h["kind"] == "approved"]


async def test_countersign_approvers_reusing_one_key_each_get_their_decision(
    caller: Caller, db: Db
) -> None:
    rid = await caller.submit(retail(unique("Shared key mart")))
    assert (await caller.decide("mm_hu", rid)).status_code == 200
    key = "approve-it"  # the same key, e.g. from one shared front-end default
    for user, left in (("opm_guo", ["mm_hu", "pm_luo"]), ("pm_luo", ["mm_hu"])):
        resp = await caller.decide(user, rid, key=key)
        assert resp.status_code == 200, resp.text
        assert sorted(resp.json()["current_approvers"]) == left, user
    resp = await caller.decide("mm_hu", rid, key=key)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "awaiting_deposit"
    assert await db.status(rid) == "awaiting_deposit"
    assert (await db.event_kinds(rid)).count("approved") == 4


async def test_approvers_of_consecutive_stages_reusing_one_key_both_decide(
    caller: Caller, db: Db
) -> None:
    rid = await caller.submit(contract(unique("Shared key contract")))
    first = await caller.decide("bcd_zheng", rid, key="k1")
    assert first.status_code == 200, first.text
    assert first.json()["current_approvers"] == ["dsd_liu"]
    second = await caller.decide("dsd_liu", rid, key="k1")
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "approved"
    assert approvers_in_history(second.json()) == ["bcd_zheng", "dsd_liu"]
    assert await db.status(rid) == "approved"


async def test_the_same_caller_changing_the_body_under_one_key_is_409(
    caller: Caller, db: Db
) -> None:
    rid = await caller.submit(contract(unique("Changed mind")))
    first = await caller.decide("bcd_zheng", rid, key="decision-1")
    assert first.status_code == 200, first.text
    kinds = await db.event_kinds(rid)

    for action, extra in (("reject", {}), ("approve", {"comment": "now with a comment"})):
        resp = await caller.decide("bcd_zheng", rid, action, key="decision-1", **extra)
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "conflict"
        assert "Idempotency-Key" in error["message"]
        assert error["details"]["request_id"] == rid
    # Another action (withdraw) under a decision's key is refused the same way.
    resp = await caller.api.post(
        f"/v1/requests/{rid}/withdraw",
        json={},
        headers=caller.auth("am_li") | {"Idempotency-Key": "decision-1"},
    )
    assert resp.status_code == 200, resp.text  # am_li's key, not bcd_zheng's
    assert await db.status(rid) == "withdrawn"
    assert (await db.event_kinds(rid))[: len(kinds)] == kinds


async def test_the_same_call_twice_is_one_decision_and_the_same_answer(
    caller: Caller, db: Db
) -> None:
    rid = await caller.submit(contract(unique("Twice")))
    first, again = await asyncio.gather(
        caller.decide("bcd_zheng", rid, key="once", comment="signed"),
        caller.decide("bcd_zheng", rid, key="once", comment="signed"),
    )
    assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
    assert first.json() == again.json()
    later = await caller.decide("bcd_zheng", rid, key="once", comment="signed")
    assert later.status_code == 200, later.text
    assert later.json() == first.json()
    assert (await db.event_kinds(rid)).count("approved") == 1

    # The final decision closes the workflow; the same call again still answers
    # with that outcome, not "the request is closed".
    final = await caller.decide("dsd_liu", rid, key="final")
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "approved"
    repeated = await caller.decide("dsd_liu", rid, key="final")
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["status"] == "approved"
    assert repeated.json()["id"] == rid
    assert approvers_in_history(repeated.json()) == ["bcd_zheng", "dsd_liu"]
    # Another body under that key is still a conflict; a new key meets the closed request.
    assert (await caller.decide("dsd_liu", rid, "reject", key="final")).status_code == 409
    closed = await caller.decide("dsd_liu", rid, key="another")
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "invalid_state"
    assert (await db.event_kinds(rid)).count("approved") == 2


def test_update_ids_are_the_callers_own_and_hide_the_key() -> None:
    a = action_update_id("decide", "bcd_zheng", "k" * 200)
    b = action_update_id("decide", "dsd_liu", "k" * 200)
    assert a != b
    assert a.startswith("decide:bcd_zheng:")
    assert "k" * 10 not in a
    assert len(a.rsplit(":", 1)[1]) == 32
