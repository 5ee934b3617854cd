"""The CLI's database work: one-shot sessions, migrations, loading the org file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli.errors import CliError

Sessions = async_sessionmaker[AsyncSession]


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn "the database does not answer" into one line naming the database."""
    from sqlalchemy.engine import make_url

    try:
        yield
    except (OSError, DBAPIError) as exc:
        where = make_url(url).render_as_string(hide_password=True)
        detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
        raise CliError(f"cannot use the database {where}: {detail}") from exc


async def with_sessions(url: str, work: Callable[[Sessions], Coroutine[Any, Any, None]]) -> None:
    """Run ``work(sessions)`` with a short-lived engine (CLI commands are one-shot)."""
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(url, pool_size=1)
    try:
        await work(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def load_org(url: str, path: Path) -> None:
    """Load (idempotently) the org file into the directory tables."""
    if not path.is_file():
        raise CliError(f"org file not found: {path} (set APPROVALS_ORG_FILE or pass a path)")
    from db.directory import OrgError, load_org_file

    async def work(sessions: Sessions) -> None:
        await load_org_file(sessions, path)

    try:
        with database_errors(url):
            asyncio.run(with_sessions(url, work))
    except OrgError as exc:
        raise CliError(f"org file error: {exc}") from exc


def migrate(url: str) -> None:
    from db.migrate import upgrade

    with database_errors(url):
        upgrade(url)
