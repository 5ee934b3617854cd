"""The pipeline's tests: a migrated database of their own with the demo org, and builders."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.directory import load_org_file
from tests.support.paths import ROOT


@pytest.fixture
async def sessions(
    scratch_sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """A database of this test's own (the dispatcher takes every unplanned notice)."""
    await load_org_file(scratch_sessions, ROOT / "org" / "demo.yaml")
    return scratch_sessions
