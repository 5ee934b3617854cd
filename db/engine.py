"""Engine and session factory. Built by the app's lifespan or the worker, never at import."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def make_engine(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, pool_timeout: float = 30.0
) -> AsyncEngine:
    """An asyncpg engine whose pool checks connections before handing them out.

    ``pool_timeout`` is how long a checkout waits for a free connection before
    raising ``sqlalchemy.exc.TimeoutError`` (the API answers that with 503).
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with factory() as session, session.begin():
        yield session
