"""Helpers for driving the ``approvals`` command as a user would: a real process."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import _admin


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
