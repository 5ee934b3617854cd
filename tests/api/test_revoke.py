"""``POST /v1/requests/{id}/revoke`` end to end: the API, the real worker, PostgreSQL, Temporal.

The shipped policies set no revoke window, so these tests run an app on a copy of
them where the gift and the bulk order allow revoking within 31 days.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.models import NotificationRow
from tests.support.api import Auth, Db, make_settings, running, temporal_target
from tests.support.paths import ROOT
from tests.support.stored_histories import keep, recording
from worker.main import build_worker

REVOCABLE = ("customer_gift", "retail_bulk_discount")


@pytest.fixture(scope="module")
async def revoke_api(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    demo_org: None,
) -> AsyncIterator[httpx.AsyncClient]:
    policy_dir = tmp_path_factory.mktemp("revoke") / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    for name in REVOCABLE:
        path = policy_dir / f"{name}.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["revoke"] = {"within": "P31D"}
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    settings = make_settings(
        pg_url, temporal_target(temporal_local), APPROVALS_POLICY_DIR=policy_dir
    )
    async with (
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
        running(create_app(settings)) as api,
    ):
        yield api
    if recording() is not None:
        client = temporal_local.client
        async for wf in client.list_workflows(f'TaskQueue="{settings.task_queue}"'):
            handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
            keep(await handle.fetch_history(), f"revoke_{wf.status.name if wf.status else ''}")


async def _submit(api: httpx.AsyncClient, auth: Auth, body: dict[str, Any]) -> dict[str, Any]:
    resp = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    view: dict[str, Any] = resp.json()
    return view


async def _approve_all(api: httpx.AsyncClient, auth: Auth, view: dict[str, Any]) -> dict[str, Any]:
    while view["status"] == "in_review":
        for user in view["current_approvers"]:
            resp = await api.post(
                f"/v1/requests/{view['id']}/decisions",
                json={"action": "approve"},
                headers=auth(user),
            )
            assert resp.status_code == 200, resp.text
            view = resp.json()
    return view


def _gift() -> dict[str, Any]:
    return {
        "type": "customer_gift",
        "title": f"Festival gift {uuid.uuid4().hex[:6]}",
        "amount": "300",
        "fields": {"gift": "Mooncakes", "reason": "A top customer"},
    }


async def _revoke(
    api: httpx.AsyncClient, auth: Auth, user: str, rid: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.post(f"/v1/requests/{rid}/revoke", json=body, headers=auth(user) | headers)


async def test_the_requester_revokes_an_approved_gift_once_and_the_approvers_are_told(
    revoke_api: httpx.AsyncClient, auth: Auth, db: Db, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    api = revoke_api
    view = await _approve_all(api, auth, await _submit(api, auth, _gift()))
    rid = view["id"]
    assert view["status"] == "approved" and view["closed_at"] is None  # open for revoking
    assert view["revocable_until"] is not None

    no_reason = await _revoke(api, auth, "am_li", rid, {})
    assert no_reason.status_code == 422, no_reason.text
    assert no_reason.json()["error"]["code"] == "validation_error"
    approver = await _revoke(api, auth, "bgm_feng", rid, {"comment": "No"})
    assert approver.status_code == 403, approver.text
    assert "only the requester or an administrator" in approver.json()["error"]["message"]

    key = {"Idempotency-Key": f"revoke-{rid}"}
    body = {"comment": "The customer declined the gift"}
    first = await _revoke(api, auth, "am_li", rid, body, **key)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "revoked" and first.json()["closed_at"] is not None
    again = await _revoke(api, auth, "am_li", rid, body, **key)
    assert again.status_code == 200, again.text  # the same outcome, not a second revoke
    assert again.json()["status"] == "revoked"

    assert await db.status(rid) == "revoked"
    kinds = await db.event_kinds(rid)
    assert kinds[-1] == "revoked" and kinds.count("revoked") == 1
    async with db_sessions() as s:
        told = set(
            await s.scalars(
                select(NotificationRow.recipient).where(
                    NotificationRow.request_id == rid, NotificationRow.template == "revoked"
                )
            )
        )
    assert told == {"csc_tang", "bgm_feng"}
    shown = (await api.get(f"/v1/requests/{rid}", headers=auth("csc_tang"))).json()
    event = shown["history"][-1]
    assert event["kind"] == "revoked" and event["actor"] == "am_li"
    assert event["comment"] == "The customer declined the gift"

    closed = await _revoke(api, auth, "am_li", rid, {"comment": "Again"})
    assert closed.status_code == 409, closed.text
    assert closed.json()["error"]["message"] == "the request is already revoked"


async def test_an_admin_revokes_a_bulk_order_awaiting_its_deposit_and_lists_the_payment(
    revoke_api: httpx.AsyncClient, auth: Auth
) -> None:
    api = revoke_api
    body = {
        "type": "retail_bulk_discount",
        "title": f"Bulk order {uuid.uuid4().hex[:6]}",
        "amount": "3000",
        "fields": {"gross_margin_pct": "12"},
    }
    view = await _approve_all(api, auth, await _submit(api, auth, body))
    rid = view["id"]
    assert view["status"] == "awaiting_deposit"
    paid = await api.post(
        f"/v1/requests/{rid}/milestones/deposit",
        json={"amount": "400", "reference": "BANK-17"},
        headers=auth("fin_he"),
    )
    assert paid.status_code == 200, paid.text

    resp = await _revoke(api, auth, "admin", rid, {"comment": "Order cancelled by the customer"})

    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["status"] == "revoked"
    assert out["milestones"][0]["status"] == "revoked"
    assert [(r["milestone"], r["amount"], r["reference"]) for r in out["to_reverse"]] == [
        ("deposit", "400.00", "BANK-17")
    ]
    event = out["history"][-1]
    assert event["actor"] == "admin" and event["data"]["as"] == "admin"
    assert event["data"]["was"] == "awaiting_deposit"


async def test_what_cannot_be_revoked_is_409_naming_why(
    revoke_api: httpx.AsyncClient, auth: Auth
) -> None:
    api = revoke_api
    in_review = await _submit(api, auth, _gift())
    resp = await _revoke(api, auth, "am_li", in_review["id"], {"comment": "Changed my mind"})
    assert resp.status_code == 409, resp.text
    assert "withdraw it instead" in resp.json()["error"]["message"]

    contract = {
        "type": "big_customer_contract",
        "title": f"Contract {uuid.uuid4().hex[:6]}",
        "amount": "250000",
        "fields": {"contract_no": "HT-R1", "settlement_floor_price": "1"},
    }
    done = await _approve_all(api, auth, await _submit(api, auth, contract))
    assert done["status"] == "approved" and done["closed_at"] is not None  # no window: closed
    resp = await _revoke(api, auth, "am_li", done["id"], {"comment": "Too late?"})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["message"] == (
        "requests of type 'big_customer_contract' cannot be revoked: "
        "their policy sets no revoke window"
    )


async def test_the_requester_revokes_a_completed_bulk_order_within_its_window(
    revoke_api: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    api = revoke_api
    body = {
        "type": "retail_bulk_discount",
        "title": f"Bulk order {uuid.uuid4().hex[:6]}",
        "amount": "3000",
        "fields": {"gross_margin_pct": "12"},
    }
    view = await _approve_all(api, auth, await _submit(api, auth, body))
    rid = view["id"]
    for amount, reference in (("400", "BANK-21"), ("500", "BANK-22")):
        paid = await api.post(
            f"/v1/requests/{rid}/milestones/deposit",
            json={"amount": amount, "reference": reference},
            headers=auth("fin_he"),
        )
        assert paid.status_code == 200, paid.text
    done = paid.json()
    assert done["status"] == "completed" and done["closed_at"] is None  # open for revoking
    assert done["revocable_until"] is not None
    shown = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()
    assert shown["status"] == "completed" and shown["closed_at"] is None  # the read-model

    resp = await _revoke(api, auth, "am_li", rid, {"comment": "The customer returned it all"})

    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["status"] == "revoked" and out["closed_at"] is not None
    assert out["milestones"][0]["status"] == "met"
    assert [(r["milestone"], r["amount"], r["reference"]) for r in out["to_reverse"]] == [
        ("deposit", "400.00", "BANK-21"),
        ("deposit", "500.00", "BANK-22"),
    ]
    assert out["history"][-1]["data"]["was"] == "completed"
    assert await db.status(rid) == "revoked"
