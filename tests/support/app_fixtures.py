"""The app's fixtures, for the API and browser tests (a plugin of tests/conftest.py).

The app runs through httpx's ASGI transport with its lifespan running, on the real
embedded PostgreSQL and the real local Temporal server.

``api`` is an app on a task queue with a real in-process worker (end-to-end
tests ask for ``worker`` too); the workerless and Temporal-less apps of the
outage tests are built in those tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import issue_token
from common.settings import Settings
from db.directory import load_org_file
from tests.support.api import Db, make_settings, running, temporal_target
from tests.support.paths import ROOT
from tests.support.stored_histories import keep, recording


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
