"""Delegations (委托/代理) end to end: the API, the real worker, PostgreSQL and Temporal.

A 250,000 contract by am_li waits for bcd_zheng; bcd_zheng (or their manager dsd_liu,
or the admin) hands their steps to price_lin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.reconcile import ReconcileActivities
from db.models import DelegationEventRow, NotificationRow
from tests.support.api import Auth, pending_steps, submit_contract

pytestmark = pytest.mark.usefixtures("worker", "no_delegations_left")


@pytest.fixture
async def no_delegations_left(
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    """Each test's delegations end with it: the other API tests expect the org as it is."""
    yield
    async with db_sessions() as s, s.begin():
        await s.execute(
            text(
                "UPDATE delegations SET ends_at = now(),"
                " start_told_at = coalesce(start_told_at, now()), end_told_at = now()"
                " WHERE source = 'api' AND ends_at > now()"
            )
        )


def _later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _approvers(api: httpx.AsyncClient, auth: Auth, rid: str, want: list[str]) -> None:
    """Wait (a signal is asynchronous) until the request waits for ``want``."""
    seen: Any = None
    for _ in range(100):
        seen = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()
        if seen["current_approvers"] == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"approvers {seen['current_approvers']}, wanted {want}")


async def _audit(sessions: async_sessionmaker[AsyncSession], delegation_id: int) -> list[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(DelegationEventRow.kind)
            .where(DelegationEventRow.delegation_id == delegation_id)
            .order_by(DelegationEventRow.id)
        )
        return list(rows)


async def test_a_delegation_made_while_a_step_waits_lets_the_delegate_decide_on_behalf(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid = await submit_contract(api, auth, "Delegated")
    body = {"to": "price_lin", "ends_at": _later(days=3), "reason": "on leave"}
    headers = auth("bcd_zheng") | {"Idempotency-Key": f"leave-{rid}"}
    r = await api.post("/v1/me/delegations", json=body, headers=headers)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["from"], made["to"], made["status"], made["source"]) == (
        "bcd_zheng",
        "price_lin",
        "active",
        "api",
    )
    assert made["request_types"] == "all"
    again = await api.post("/v1/me/delegations", json=body, headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, made["id"])
    # The same key for another delegation is a mistake, never the earlier one answered.
    other = await api.post("/v1/me/delegations", json=body | {"to": "fh_gao"}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.json()["error"]["details"] == {"delegation_id": made["id"]}

    await _approvers(api, auth, rid, ["bcd_zheng", "price_lin"])
    inbox = await pending_steps(api, auth("price_lin"))
    assert rid in {item["request_id"] for item in inbox}
    # Both sides see it in their list.
    mine = (await api.get("/v1/me/delegations", headers=auth("price_lin"))).json()["items"]
    assert {(d["id"], d["direction"]) for d in mine} >= {(made["id"], "received")}
    # The delegate decides, on bcd_zheng's behalf.
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("price_lin")
    )
    assert r.status_code == 200, r.text
    history = r.json()["history"]
    decided = next(e for e in history if e["kind"] == "approved")
    assert (decided["actor"], decided["on_behalf_of"]) == ("price_lin", "bcd_zheng")
    assert await _audit(db_sessions, made["id"]) == ["created"]
    async with db_sessions() as s:
        told = await s.scalars(
            select(NotificationRow.template).where(
                NotificationRow.dedupe_key == f"delegation:{made['id']}:started:price_lin"
            )
        )
        assert list(told) == ["delegation_started"]


async def test_ending_a_delegation_gives_the_step_back(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    rid = await submit_contract(api, auth, "Delegated")
    r = await api.post(
        "/v1/me/delegations",
        json={"to": "price_lin", "ends_at": _later(days=1)},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    await _approvers(api, auth, rid, ["bcd_zheng", "price_lin"])
    # Someone else may not end it; the delegate sees it but may not end it.
    r = await api.post(f"/v1/delegations/{did}/end", headers=auth("fh_gao"))
    assert r.status_code == 404, r.text
    r = await api.post(f"/v1/delegations/{did}/end", headers=auth("price_lin"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await api.post(f"/v1/delegations/{did}/end", headers=auth("bcd_zheng"))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["ended_by"]) == ("ended", "bcd_zheng")
    await _approvers(api, auth, rid, ["bcd_zheng"])
    r = await api.post(
        f"/v1/requests/{rid}/decisions", json={"action": "approve"}, headers=auth("price_lin")
    )
    assert r.status_code == 403, r.text
    r = await api.post(f"/v1/delegations/{did}/end", headers=auth("bcd_zheng"))
    assert r.status_code == 409, r.text
    assert await _audit(db_sessions, did) == ["created", "ended"]


async def test_a_delegation_starting_later_takes_effect_at_the_next_pass_after_its_time(
    api: httpx.AsyncClient,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
    temporal_local: WorkflowEnvironment,
) -> None:
    rid = await submit_contract(api, auth, "Delegated")
    starts = datetime.now(UTC) + timedelta(seconds=2)
    r = await api.post(
        "/v1/me/delegations",
        json={
            "to": "price_lin",
            "starts_at": starts.isoformat(),
            "ends_at": _later(days=1),
            "request_types": ["big_customer_contract"],
        },
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "scheduled"
    reconcile = ReconcileActivities(db_sessions, temporal_local.client)
    # A pass before its time does not tell it (a first pass tells what else is due).
    await reconcile.tell_delegations(starts - timedelta(seconds=1))
    assert await reconcile.tell_delegations(starts - timedelta(seconds=1)) == 0
    await _approvers(api, auth, rid, ["bcd_zheng"])
    await asyncio.sleep(max((starts - datetime.now(UTC)).total_seconds(), 0) + 0.2)
    assert await reconcile.tell_delegations(datetime.now(UTC)) >= 1
    await _approvers(api, auth, rid, ["bcd_zheng", "price_lin"])
    assert await reconcile.tell_delegations(datetime.now(UTC)) == 0  # told once


async def test_a_delegation_for_other_types_leaves_the_step_alone(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    rid = await submit_contract(api, auth, "Delegated")
    r = await api.post(
        "/v1/me/delegations",
        json={"to": "price_lin", "ends_at": _later(days=1), "request_types": ["customer_gift"]},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 201, r.text
    await asyncio.sleep(0.5)
    view = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()
    assert view["current_approvers"] == ["bcd_zheng"]


async def test_a_manager_sets_one_for_a_direct_report_and_others_may_not(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = {"from": "bcd_zheng", "to": "price_lin", "ends_at": _later(days=2)}
    r = await api.post("/v1/delegations", json=body, headers=auth("fh_gao"))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await api.post("/v1/delegations", json=body, headers=auth("sd_chen"))  # not direct
    assert r.status_code == 403, r.text
    r = await api.post("/v1/delegations", json=body, headers=auth("dsd_liu"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["created_by"], made["direction"]) == ("dsd_liu", "other")
    async with db_sessions() as s:
        told = await s.scalars(
            select(NotificationRow.recipient).where(
                NotificationRow.template == "delegation_set_for_you",
                NotificationRow.dedupe_key == f"delegation:{made['id']}:set:bcd_zheng",
            )
        )
        assert list(told) == ["bcd_zheng"]
    # An admin for anyone.
    body = {"from": "fh_gao", "to": "fin_he", "ends_at": _later(days=2)}
    r = await api.post("/v1/delegations", json=body, headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert await _audit(db_sessions, r.json()["id"]) == ["created"]


async def test_a_loop_is_refused_naming_it(api: httpx.AsyncClient, auth: Auth) -> None:
    r = await api.post(
        "/v1/me/delegations",
        json={"to": "fh_gao", "ends_at": _later(days=2)},
        headers=auth("cd_xu"),
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        "/v1/me/delegations",
        json={"to": "cd_xu", "ends_at": _later(days=1)},
        headers=auth("fh_gao"),
    )
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"]["loop"]) == ("conflict", ["fh_gao", "cd_xu", "fh_gao"])
    assert "fh_gao -> cd_xu -> fh_gao" in error["message"]
    # Once the first is over, the other way round is fine.
    r = await api.post(
        "/v1/me/delegations",
        json={"to": "cd_xu", "starts_at": _later(days=3), "ends_at": _later(days=4)},
        headers=auth("fh_gao"),
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "nobody", "ends_at": "2030-01-01T00:00:00Z"}, "to"),
        ({"to": "cmd_han", "ends_at": "2030-01-01T00:00:00Z"}, "to"),  # themself
        ({"to": "css_ma", "ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"to": "css_ma", "ends_at": "2030-01-01T00:00:00"}, "ends_at"),  # no offset
        (
            {"to": "css_ma", "ends_at": "2030-01-01T00:00:00Z", "request_types": ["nope"]},
            "request_types",
        ),
        ({"to": "css_ma"}, "ends_at"),
    ],
)
async def test_bad_fields_are_422_naming_them(
    api: httpx.AsyncClient, auth: Auth, body: dict[str, Any], field: str
) -> None:
    r = await api.post("/v1/me/delegations", json=body, headers=auth("cmd_han"))
    assert r.status_code == 422, r.text
    assert field in {f["field"] for f in r.json()["error"]["details"]["fields"]}


async def test_org_delegations_show_read_only(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The demo org file has one (in the past) from sd_chen to dsd_liu.
    items = (await api.get("/v1/me/delegations", headers=auth("sd_chen"))).json()["items"]
    org = [d for d in items if d["source"] == "org"]
    assert org and all(not d["may_end"] for d in org)
    r = await api.post(f"/v1/delegations/{org[0]['id']}/end", headers=auth("sd_chen"))
    assert r.status_code == 409, r.text
