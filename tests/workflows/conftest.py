"""Workflow tests: the real workflow and activities, a real PostgreSQL, time skipping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from common.policy_store import load_policies
from db.directory import load_org_file
from domain.policy import Policy
from tests.support.paths import ROOT
from tests.support.workflows import worker_queue


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    return load_policies(ROOT / "policies")


@pytest.fixture(scope="session")
async def org(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_org_file(db_sessions, ROOT / "org" / "demo.yaml")


@pytest.fixture
async def ts_queue(
    temporal_ts: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession], org: None
) -> AsyncIterator[str]:
    """A worker on a fresh task queue of the time-skipping server."""
    async with worker_queue(temporal_ts.client, db_sessions, "ts") as queue:
        yield queue


@pytest.fixture
async def local_queue(
    temporal_local: WorkflowEnvironment, db_sessions: async_sessionmaker[AsyncSession], org: None
) -> AsyncIterator[str]:
    """A worker on a fresh task queue of the local dev server (for updates)."""
    async with worker_queue(temporal_local.client, db_sessions, "local") as queue:
        yield queue


@pytest.fixture(params=["sandboxed", "unsandboxed"])
async def either_queue(
    request: pytest.FixtureRequest,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    org: None,
) -> AsyncIterator[str]:
    """A worker in the sandbox (the tests'), then one as ``approvals worker`` runs it:
    workflow code outside the sandbox. What either ran is replayed in the sandbox."""
    sandboxed = request.param == "sandboxed"
    async with worker_queue(
        temporal_local.client, db_sessions, request.param, sandboxed=sandboxed
    ) as queue:
        yield queue
