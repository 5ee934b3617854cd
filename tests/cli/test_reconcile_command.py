"""``approvals reconcile`` failing the way an operator can act on: one line, exit 1."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cli.test_commands import assert_one_line_error
from tests.support.cli import run_cli


def test_reconcile_without_database_url_says_what_to_set() -> None:
    result = run_cli("reconcile")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "approvals reconcile:", "DATABASE_URL")


def test_reconcile_with_temporal_down_names_the_address(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the command runs: nobody listens
    env = {
        "DATABASE_URL": f"postgresql+asyncpg://postgres:@/approvals?host={tmp_path}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
    }

    result = run_cli("reconcile", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "cannot connect to Temporal", f"127.0.0.1:{port}")


def test_reconcile_refuses_a_window_that_is_not_positive() -> None:
    result = run_cli("reconcile", "--days", "0", env={"DATABASE_URL": "postgresql+asyncpg://x@/y"})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "--days must be positive")


def test_resync_refuses_a_window_it_cannot_read() -> None:
    result = run_cli(
        "resync", "--closed-since", "soon", env={"DATABASE_URL": "postgresql+asyncpg://x@/y"}
    )
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "--closed-since", "30d")
