"""API tests: the app through httpx's ASGI transport, with its lifespan running,
on the real embedded PostgreSQL and the real local Temporal server.

``api`` is an app on a task queue with a real in-process worker (end-to-end
tests ask for ``worker`` too); the workerless and Temporal-less apps of the
outage tests are built in those tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from common.settings import Settings
from db.models import EventRow, RequestRow
from tests.support.paths import ROOT


def make_settings(pg_url: str, temporal_address: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "APPROVALS_TASK_QUEUE": f"api-{uuid.uuid4().hex[:12]}",
        "APPROVALS_POLICY_DIR": ROOT / "policies",
        "APPROVALS_ENV": "development",
        **extra,
    }
    return Settings(**values)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


def contract_body(customer: str) -> dict[str, Any]:
    """A 250,000 big-customer contract for ``customer``: bcd_zheng signs, then dsd_liu."""
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": "250000",
        "fields": {"contract_no": "C-2026-17", "settlement_floor_price": "90000"},
    }


async def submit_contract(
    api: httpx.AsyncClient, auth: Callable[[str], dict[str, str]], name: str
) -> str:
    """am_li submits :func:`contract_body` for a customer named ``name`` and a unique
    suffix; it waits for bcd_zheng. Its id."""
    body = contract_body(f"{name} {uuid.uuid4().hex[:6]}")
    r = await api.post("/v1/requests", json=body, headers=auth("am_li"))
    assert r.status_code == 201, r.text
    assert r.json()["current_approvers"] == ["bcd_zheng"]
    return str(r.json()["id"])


async def pending_steps(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of someone's inbox, every page followed: the shared test database holds
    more pending steps than one page as the suite runs, so a step a test looks for (or
    for the absence of) may be on any page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        resp = await api.get("/v1/inbox", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params = {"limit": 200, "cursor": page["next_cursor"]}


def temporal_target(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


class Db:
    """Read the read-model and the audit trail the way an auditor would."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def request(self, request_id: str) -> RequestRow | None:
        async with self.sessions() as s:
            return await s.get(RequestRow, request_id)

    async def status(self, request_id: str) -> str | None:
        row = await self.request(request_id)
        return row.status if row else None

    async def event_kinds(self, request_id: str) -> list[str]:
        async with self.sessions() as s:
            rows = await s.execute(
                select(EventRow.kind)
                .where(EventRow.request_id == request_id)
                .order_by(EventRow.seq)
            )
            return list(rows.scalars())

    async def count_for_customer(self, customer: str) -> int:
        async with self.sessions() as s:
            query = select(func.count()).select_from(RequestRow)
            return (await s.execute(query.where(RequestRow.customer == customer))).scalar_one()

    async def count_requests(self, requester: str) -> int:
        async with self.sessions() as s:
            return (
                await s.execute(
                    select(func.count())
                    .select_from(RequestRow)
                    .where(RequestRow.requester == requester)
                )
            ).scalar_one()


Auth = Callable[[str], dict[str, str]]
