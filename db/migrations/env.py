"""Alembic environment: PostgreSQL through asyncpg.

Where the database comes from, first match wins:

1. ``config.attributes["connection"]``: an open connection handed over by
   :mod:`db.migrate` (the caller owns the transaction);
2. ``config.attributes["url"]``;
3. the ``DATABASE_URL`` environment variable (the ``alembic -c db/alembic.ini``
   command line);
4. ``sqlalchemy.url`` in the ini file.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from db import models  # noqa: F401  (registers every table on the metadata)
from db.base import Base

config = context.config
if config.config_file_name is not None:  # the command line; db.migrate leaves logging alone
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata

# Two processes migrating the same database at once (say, a dev stack and a
# one-shot migrate job) take turns instead of racing on the DDL.
MIGRATION_LOCK = 7_201_914_001


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("DATABASE_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database URL: set DATABASE_URL=postgresql+asyncpg://... "
            "or use db.migrate.upgrade(url)"
        )
    return str(url)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit the SQL script instead of running it (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None:
        do_run_migrations(shared)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
