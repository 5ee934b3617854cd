"""Bring a database to the newest schema. (Interim: replaced by Alembic's upgrade.)"""

import asyncio

from db.base import Base
from db.engine import make_engine


def upgrade(url: str) -> None:
    async def run() -> None:
        from db import models  # noqa: F401  (registers the tables)

        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await engine.dispose()

    asyncio.run(run())
