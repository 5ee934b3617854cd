"""A request whose workflow an operator terminated, seen through the API after reconciliation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.reconcile import ReconcileActivities
from db.models import AssignmentRow, EventRow, NotificationRow, RequestStepRow
from domain.constants import workflow_id
from domain.reconcile import ReconcileInput, ReconcileOutput
from tests.support.api import Auth, Db, pending_steps

pytestmark = pytest.mark.usefixtures("worker")


def contract(customer: str) -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": "250000",
        "fields": {"contract_no": "C-2026-9", "settlement_floor_price": "90000"},
    }


async def reconcile_until(
    acts: ReconcileActivities, request_id: str, attempts: int = 40
) -> ReconcileOutput:
    """Run passes until one records ``request_id`` (visibility lags a close a little)."""
    for _ in range(attempts):
        out = await acts.reconcile_closed_requests(ReconcileInput(list_at_most=None))
        if any(r.request_id == request_id for r in out.reconciled):
            return out
        await asyncio.sleep(0.25)
    raise AssertionError(f"{request_id} was never reconciled")


async def counts(sessions: async_sessionmaker[AsyncSession], rid: str) -> tuple[int, int, int]:
    """(events, notifications, pending assignments) of one request."""
    async with sessions() as s:
        events = await s.scalar(select(func.count()).where(EventRow.request_id == rid))
        notices = await s.scalar(select(func.count()).where(NotificationRow.request_id == rid))
        pending = await s.scalar(
            select(func.count()).where(
                AssignmentRow.request_id == rid, AssignmentRow.pending.is_(True)
            )
        )
        return events or 0, notices or 0, pending or 0


async def test_terminated_workflow_shows_as_terminated_with_who_and_why_and_an_empty_inbox(
    api: httpx.AsyncClient,
    auth: Auth,
    db: Db,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    customer = f"Terminated Ltd {uuid.uuid4().hex[:6]}"
    resp = await api.post("/v1/requests", json=contract(customer), headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    inbox = await pending_steps(api, auth("bcd_zheng"))
    assert rid in {item["request_id"] for item in inbox}

    client = temporal_local.client
    handle = client.get_workflow_handle(workflow_id(rid))
    await handle.terminate(reason="customer withdrew by phone")
    closed = await handle.describe()

    acts = ReconcileActivities(db_sessions, client)
    out = await reconcile_until(acts, rid)

    mine = next(r for r in out.reconciled if r.request_id == rid)
    assert mine.execution_status == "Terminated"
    assert mine.actor == client.identity
    assert mine.reason == "customer withdrew by phone"

    view = (await api.get(f"/v1/requests/{rid}", headers=auth("am_li"))).json()
    assert view["status"] == "terminated"
    assert view["closed_at"] is not None
    assert view["current_approvers"] == []
    assert view["stages"][0]["status"] == "closed"
    last = view["history"][-1]
    assert last["kind"] == "terminated"
    assert last["actor"] == client.identity
    assert last["seq"] == view["history"][-2]["seq"] + 1
    assert last["comment"] == "customer withdrew by phone"
    assert last["data"]["execution_status"] == "Terminated"
    assert last["data"]["reason"] == "customer withdrew by phone"
    assert closed.close_time is not None
    assert last["data"]["closed_at"] == closed.close_time.isoformat()

    row = await db.request(rid)
    assert row is not None
    assert row.status == "terminated"
    assert row.closed_at == closed.close_time
    assert row.current_approvers == []
    # The SLA report no longer counts its open step as waiting (past its due or not).
    async with db_sessions() as s:
        steps = (
            await s.execute(
                select(RequestStepRow.status, RequestStepRow.decided_at).where(
                    RequestStepRow.request_id == rid
                )
            )
        ).all()
    assert [tuple(step) for step in steps] == [("closed", None)]

    listed = await api.get(
        "/v1/requests", params={"status": "terminated", "customer": customer}, headers=auth("am_li")
    )
    assert [item["id"] for item in listed.json()["items"]] == [rid]
    assert [item["status"] for item in listed.json()["items"]] == ["terminated"]
    inbox = await pending_steps(api, auth("bcd_zheng"))
    assert rid not in {item["request_id"] for item in inbox}

    events, notices, pending = await counts(db_sessions, rid)
    assert pending == 0
    async with db_sessions() as s:
        told = (
            await s.scalars(
                select(NotificationRow.recipient).where(
                    NotificationRow.request_id == rid, NotificationRow.template == "terminated"
                )
            )
        ).all()
    assert told == ["am_li"]

    again = await acts.reconcile_closed_requests(ReconcileInput(list_at_most=None))

    assert rid not in {r.request_id for r in again.reconciled}
    assert await counts(db_sessions, rid) == (events, notices, 0)
    after = await db.request(rid)
    assert after is not None
    assert (after.status, after.last_seq, after.updated_at) == (
        row.status,
        row.last_seq,
        row.updated_at,
    )
