"""Helpers for driving the ``approvals`` command as a user would: a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.paths import ROOT

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
    "APPROVALS_PAYLOAD_KEYS",
    "APPROVALS_PAYLOAD_KEY_ID",
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
