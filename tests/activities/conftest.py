from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.approvals import ApprovalActivities
from common.settings import DEV_SIGNING_SECRET
from db.directory import load_org_file

DEMO = Path(__file__).resolve().parents[2] / "org" / "demo.yaml"


@pytest.fixture(scope="session")
async def demo_org(db_sessions: async_sessionmaker[AsyncSession]) -> None:
    """The demo organisation in the shared database (loading is idempotent)."""
    await load_org_file(db_sessions, DEMO)


@pytest.fixture
def acts(demo_org: None, db_sessions: async_sessionmaker[AsyncSession]) -> ApprovalActivities:
    return ApprovalActivities(db_sessions, DEV_SIGNING_SECRET)
