"""Databases of their own for tests that must not touch the shared one.

Reloading an org file deactivates everyone not in it, and downgrading drops
every table: neither may happen to the session's shared database.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import make_engine, make_sessionmaker
from db.migrate import upgrade


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
