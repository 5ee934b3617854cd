"""Helpers for driving the ``approvals`` command as a user would: a real process."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Variables a developer's shell may have set that would change what a test sees.
_SCRUBBED = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "APPROVALS_ENV",
    "APPROVALS_TOKEN_SECRET",
    "APPROVALS_SIGNING_SECRET",
    "APPROVALS_POLICY_DIR",
    "APPROVALS_ORG_FILE",
    "APPROVALS_DATA_DIR",
    "APPROVALS_API_PORT",
    "APPROVALS_TEMPORAL_UI_PORT",
)


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``approvals ARGS`` in a fresh interpreter with a clean environment plus ``env``.

    Unless ``env`` names one, the data directory is a new empty one: a developer's
    ``make dev`` (its ``.data/dev.env``) must never be what a test's command talks to.
    """
    full = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    full.update(env or {})
    with tempfile.TemporaryDirectory(prefix="approvals-cli-data-") as empty:
        full.setdefault("APPROVALS_DATA_DIR", empty)
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True,
            text=True,
            env=full,
            cwd=cwd or ROOT,
            timeout=timeout,
        )


async def _admin(url: str, sql: str) -> None:
    from sqlalchemy import pool, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        make_url(url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=pool.NullPool,
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def empty_db_url(pg_url: str) -> Iterator[str]:
    """A new, unmigrated database of this module's own on the shared server."""
    from sqlalchemy.engine import make_url

    name = f"cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(pg_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """A temporary directory for an embedded PostgreSQL, outside pytest's basetemp.

    As root, pgserver runs PostgreSQL as the `pgserver` user, who must reach the data
    directory; a pytest started meanwhile (another suite on this machine) makes
    /tmp/pytest-of-<user> private again, and the server then fails with
    "Permission denied".
    """
    path = Path(tempfile.mkdtemp(prefix="approvals-pg-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
