"""Operator commands beside a running ``make dev``: its ``dev.env`` is read, not sourced.

Each command runs as a real process against the test database, with a data directory
holding the ``dev.env`` that ``approvals dev`` writes.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from api.auth import user_id_from_token
from common.settings import Settings
from tests.cli.test_commands import assert_one_line_error
from tests.support.cli import run_cli
from tests.support.paths import ROOT


def write_dev_env(data: Path, database_url: str, temporal_address: str = "127.0.0.1:1") -> Path:
    """A data directory with the ``dev.env`` that ``approvals dev`` writes."""
    data.mkdir(parents=True, exist_ok=True)
    path = data / "dev.env"
    path.write_text(
        "# Written by `approvals dev`: `source` it to talk to the running dev stack.\n"
        "export API=http://127.0.0.1:8000\n"
        f"export DATABASE_URL={shlex.quote(database_url)}\n"
        f"export TEMPORAL_ADDRESS={shlex.quote(temporal_address)}\n"
        "export TEMPORAL_NAMESPACE=default\n"
        "export TOKEN_am_li=not-read\n"
    )
    return path


async def _deactivate(url: str, user_id: str) -> None:
    from sqlalchemy import pool, text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE users SET active = false WHERE id = :id"), {"id": user_id}
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def directory_url(empty_db_url: str) -> str:
    """The module's database, migrated, with the demo org and one inactive user."""
    migrated = run_cli(
        "migrate", "--org", str(ROOT / "org" / "demo.yaml"), env={"DATABASE_URL": empty_db_url}
    )
    assert migrated.returncode == 0, migrated.stderr
    asyncio.run(_deactivate(empty_db_url, "am_sun"))
    return empty_db_url


def test_token_reads_the_dev_stack_and_says_so(directory_url: str, tmp_path: Path) -> None:
    env_file = write_dev_env(tmp_path / "data", directory_url)

    result = run_cli("token", "am_li", env={"APPROVALS_DATA_DIR": str(tmp_path / "data")})

    assert result.returncode == 0, result.stderr
    assert user_id_from_token(Settings(), result.stdout.strip()) == "am_li"
    said = [line for line in result.stderr.splitlines() if "dev.env" in line]
    assert len(said) == 1 and str(env_file) in said[0], result.stderr
    assert "DATABASE_URL" in said[0]
    assert directory_url not in result.stderr  # its address is not repeated, password or not


@pytest.mark.parametrize(
    ("user", "why"),
    [("nobody", "unknown user 'nobody'"), ("am_sun", "user 'am_sun' is inactive")],
)
def test_token_refuses_whom_the_directory_does_not_hold_as_active(
    directory_url: str, tmp_path: Path, user: str, why: str
) -> None:
    write_dev_env(tmp_path / "data", directory_url)

    result = run_cli("token", user, env={"APPROVALS_DATA_DIR": str(tmp_path / "data")})

    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, f"approvals token: {why}")


def test_the_environment_wins_over_dev_env(directory_url: str, tmp_path: Path) -> None:
    write_dev_env(tmp_path / "data", "postgresql+asyncpg://nobody@/nowhere?host=/nonexistent")

    result = run_cli(
        "token",
        "am_li",
        env={"APPROVALS_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": directory_url},
    )

    assert result.returncode == 0, result.stderr
    assert "dev.env" not in result.stderr


def test_dev_env_is_not_read_outside_development(directory_url: str, tmp_path: Path) -> None:
    write_dev_env(tmp_path / "data", directory_url)

    result = run_cli(
        "token",
        "am_li",
        env={
            "APPROVALS_DATA_DIR": str(tmp_path / "data"),
            "APPROVALS_ENV": "production",
            "APPROVALS_TOKEN_SECRET": "a-production-token-secret-0123456789abcdef",
            "APPROVALS_SIGNING_SECRET": "a-production-signing-secret-0123456789abcdef",
            "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
            "APPROVALS_PAYLOAD_KEYS": "prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
        },
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "cannot check 'am_li'", "DATABASE_URL is not set")


def test_reconcile_reads_the_dev_stack(
    directory_url: str, temporal_local: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = temporal_local.client.service_client.config.target_host
    write_dev_env(tmp_path / "data", directory_url, temporal_address=target)

    result = run_cli("reconcile", env={"APPROVALS_DATA_DIR": str(tmp_path / "data")})

    assert result.returncode == 0, result.stderr
    assert "recorded as terminated" in result.stdout
    assert "dev.env" in result.stderr
