"""Bulk decisions (批量审批) end to end: the API, the real worker, PostgreSQL and Temporal.

The app runs on a copy of the shipped policies in which the big-customer department's
signing stage decides in bulk only up to 200,000, on the worker's task queue. A 150,000
contract by am_li waits for bcd_zheng and may be decided in bulk; a 250,000 one may not.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from common.settings import Settings
from tests.support.api import Auth, Db, make_settings, pending_steps, running, temporal_target
from tests.support.paths import ROOT

pytestmark = pytest.mark.usefixtures("worker")

BULK = "/v1/decisions/bulk"


@pytest.fixture(scope="module")
async def bulk_api(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    settings: Settings,
    demo_org: None,
) -> AsyncIterator[httpx.AsyncClient]:
    policy_dir = tmp_path_factory.mktemp("bulk") / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    path = policy_dir / "big_customer_contract.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for stage in doc["stages"]:
        if stage["key"] == "big_customer_dept_sign":
            stage["bulk"] = {"max_amount": "200000"}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    app_settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_POLICY_DIR=policy_dir,
        APPROVALS_TASK_QUEUE=settings.task_queue,  # the worker fixture's queue
    )
    async with running(create_app(app_settings)) as client:
        yield client


async def _submit(api: httpx.AsyncClient, auth: Auth, amount: str = "150000") -> dict[str, Any]:
    body = {
        "type": "big_customer_contract",
        "title": "Bulk contract",
        "customer": f"Bulk {uuid.uuid4().hex[:6]}",
        "amount": amount,
        "fields": {"contract_no": "C-2026-B", "settlement_floor_price": "90000"},
    }
    r = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert r.status_code == 201, r.text
    assert r.json()["current_approvers"] == ["bcd_zheng"]
    view: dict[str, Any] = r.json()
    return view


def _item(view: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": view["id"], "version_seen": view["version"]}


async def test_each_item_is_decided_or_refused_as_on_its_own_in_input_order(
    bulk_api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    first, stale, too_big, not_mine, last = [
        await _submit(bulk_api, auth, amount)
        for amount in ("150000", "150000", "250000", "150000", "150000")
    ]
    # The inbox lists the version to pass on.
    inbox = await pending_steps(bulk_api, auth("bcd_zheng"))
    listed = {i["request_id"]: i["version"] for i in inbox}
    assert listed[first["id"]] == first["version"] > 0
    page = (await bulk_api.get("/v1/requests", headers=auth("am_li"))).json()["items"]
    assert {r["id"]: r["version"] for r in page}[first["id"]] == first["version"]
    # One changes after bcd_zheng saw it; one bcd_zheng decided already (their
    # step is gone: dsd_liu's now).
    r = await bulk_api.post(
        f"/v1/requests/{stale['id']}/cc", json={"people": ["fin_he"]}, headers=auth("am_li")
    )
    assert r.status_code == 200, r.text
    r = await bulk_api.post(
        f"/v1/requests/{not_mine['id']}/decisions",
        json={"action": "approve"},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 200, r.text
    unknown = str(uuid.uuid4())
    items = [_item(first), _item(stale), {"request_id": unknown, "version_seen": 1}]
    items += [_item(too_big), _item(not_mine), _item(last)]
    items[4]["version_seen"] = r.json()["version"]

    r = await bulk_api.post(
        BULK,
        json={"action": "approve", "comment": "morning queue", "items": items},
        headers=auth("bcd_zheng"),
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert [i["request_id"] for i in result["items"]] == [i["request_id"] for i in items]
    assert [
        (i["outcome"], i["http_status"], (i["error"] or {}).get("code")) for i in result["items"]
    ] == [
        ("done", None, None),
        ("refused", 409, "version_conflict"),
        ("refused", 404, "not_found"),
        ("refused", 403, "bulk_not_allowed"),
        ("refused", 403, "not_eligible"),
        ("done", None, None),
    ]
    assert result["summary"] == {"total": 6, "done": 2, "refused": 4}
    done = result["items"][0]
    assert done["status"] == "in_review" and done["version"] > first["version"]
    conflict = result["items"][1]["error"]
    assert conflict["details"]["version_seen"] == stale["version"]
    assert "changed since you saw it" in conflict["message"]
    assert "Big-customer management department signs" in result["items"][3]["error"]["message"]

    # The audit says who decided, with the comment, and that it was made in bulk.
    history = (await bulk_api.get(f"/v1/requests/{first['id']}", headers=auth("am_li"))).json()
    approved = [e for e in history["history"] if e["kind"] == "approved"]
    assert [(e["actor"], e["comment"], e["data"].get("bulk")) for e in approved] == [
        ("bcd_zheng", "morning queue", True)
    ]
    assert history["current_approvers"] == ["dsd_liu"]
    assert history["version"] == done["version"]
    # Refused items changed nothing.
    assert "approved" not in await db.event_kinds(stale["id"])
    assert "approved" not in await db.event_kinds(too_big["id"])
    assert (await db.event_kinds(not_mine["id"])).count("approved") == 1


async def test_a_retried_bulk_call_decides_nothing_twice(
    bulk_api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    views = [await _submit(bulk_api, auth) for _ in range(3)]
    body = {"action": "reject", "comment": "budget frozen", "items": [_item(v) for v in views]}
    headers = auth("bcd_zheng") | {"Idempotency-Key": f"bulk-{uuid.uuid4().hex}"}
    first = await bulk_api.post(BULK, json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["summary"] == {"total": 3, "done": 3, "refused": 0}
    again = await bulk_api.post(BULK, json=body, headers=headers)
    assert again.status_code == 200, again.text
    # The same outcomes (the first ones), and each request was rejected once.
    assert again.json() == first.json()
    assert {i["status"] for i in again.json()["items"]} == {"rejected"}
    for v in views:
        assert (await db.event_kinds(v["id"])).count("rejected") == 1


async def test_more_than_100_items_is_422_naming_the_limit_and_decides_nothing(
    bulk_api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    view = await _submit(bulk_api, auth)
    items = [_item(view)] + [
        {"request_id": str(uuid.uuid4()), "version_seen": 1} for _ in range(100)
    ]
    r = await bulk_api.post(
        BULK, json={"action": "approve", "items": items}, headers=auth("bcd_zheng")
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert "at most 100 items" in r.json()["error"]["message"]
    assert r.json()["error"]["details"]["fields"][0]["field"] == "items"
    assert "approved" not in await db.event_kinds(view["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "return", "items": []}, "action"),
        ({"action": "approve", "items": []}, "items"),
        ({"action": "approve", "items": [{"request_id": "x"}]}, "items.0.version_seen"),
    ],
)
async def test_a_malformed_bulk_call_is_422_with_the_field(
    bulk_api: httpx.AsyncClient, auth: Auth, body: dict[str, Any], field: str
) -> None:
    r = await bulk_api.post(BULK, json=body, headers=auth("bcd_zheng"))
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["details"]["fields"]]


async def test_a_request_named_twice_is_422_and_nothing_is_decided(
    bulk_api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    view = await _submit(bulk_api, auth)
    body = {"action": "approve", "items": [_item(view), _item(view)]}
    r = await bulk_api.post(BULK, json=body, headers=auth("bcd_zheng"))
    assert r.status_code == 422, r.text
    assert view["id"] in r.json()["error"]["message"]
    assert "approved" not in await db.event_kinds(view["id"])
