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
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import issue_token
from common.settings import Settings
from db.directory import load_org_file
from db.models import EventRow, RequestRow
from tests.stored_histories import keep, recording

ROOT = Path(__file__).resolve().parents[2]


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


def temporal_target(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture(scope="session")
async def demo_org(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_org_file(db_sessions, ROOT / "org" / "demo.yaml")


@pytest.fixture(scope="session")
def settings(pg_url: str, temporal_local: WorkflowEnvironment) -> Settings:
    return make_settings(pg_url, temporal_target(temporal_local))


@pytest.fixture(scope="session")
async def api(settings: Settings, demo_org: None) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="session")
async def worker(
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    demo_org: None,
) -> AsyncIterator[None]:
    """The real worker, in-process, on the API's task queue."""
    from worker.main import build_worker

    async with build_worker(temporal_local.client, db_sessions, settings.task_queue):
        yield
    if recording() is not None:
        # Every request the API tests ran, one history per shape (tests/stored_histories.py).
        async for wf in temporal_local.client.list_workflows(f'TaskQueue="{settings.task_queue}"'):
            handle = temporal_local.client.get_workflow_handle(wf.id, run_id=wf.run_id)
            keep(await handle.fetch_history(), f"api_{wf.status.name if wf.status else ''}")


@pytest.fixture(scope="session")
def auth(settings: Settings) -> Callable[[str], dict[str, str]]:
    """``auth("am_li")`` -> the Authorization header of a demo user."""

    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(settings, user_id)}"}

    return headers


@pytest.fixture
def db(db_sessions: async_sessionmaker[AsyncSession]) -> Db:
    return Db(db_sessions)


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
