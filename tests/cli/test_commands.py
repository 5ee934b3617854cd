"""The ``approvals`` subcommands as a user runs them: output, exit codes, messages."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from api.auth import user_id_from_token
from common.settings import Settings
from tests.support.cli import run_cli
from tests.support.dev_stack import free_port
from tests.support.paths import ROOT


def assert_one_line_error(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert lines, "no message on stderr"
    last = lines[-1]
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"


def test_migrate_without_database_url_says_what_to_set() -> None:
    result = run_cli("migrate")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "approvals migrate:", "DATABASE_URL")


def test_worker_runs_both_roles_unless_told_and_refuses_an_unknown_one() -> None:
    from cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["worker"]).only == "both"
    assert parser.parse_args(["worker", "--only", "deliveries"]).only == "deliveries"
    result = run_cli("worker", "--only", "mail")
    assert result.returncode == 2
    assert "invalid choice: 'mail'" in result.stderr


def test_production_refuses_the_development_token_secret() -> None:
    result = run_cli("token", "am_li", env={"APPROVALS_ENV": "production"})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "invalid configuration", "APPROVALS_TOKEN_SECRET")
    assert result.stdout == ""


def test_migrate_with_org_then_token_verifies_for_a_directory_user(empty_db_url: str) -> None:
    env = {"DATABASE_URL": empty_db_url}
    migrated = run_cli("migrate", "--org", str(ROOT / "org" / "demo.yaml"), env=env)
    assert migrated.returncode == 0, migrated.stderr

    result = run_cli("token", "am_li", env=env)

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert user_id_from_token(Settings(), token) == "am_li"


@pytest.mark.parametrize("allow", ["", "true"])
def test_a_production_token_says_whether_the_api_will_take_it(
    empty_db_url: str, allow: str
) -> None:
    env = {
        "DATABASE_URL": empty_db_url,
        "APPROVALS_ENV": "production",
        "APPROVALS_TOKEN_SECRET": "production-token-secret-0123456789abcdef",
        "APPROVALS_SIGNING_SECRET": "production-signing-secret-0123456789abcdef",
        "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
        "APPROVALS_PAYLOAD_KEYS": "prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
        **({"APPROVALS_ALLOW_LOCAL_TOKENS": allow} if allow else {}),
    }
    migrated = run_cli("migrate", "--org", str(ROOT / "org" / "demo.yaml"), env=env)
    assert migrated.returncode == 0, migrated.stderr

    result = run_cli("token", "am_li", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("eyJ")
    warned = "APPROVALS_ALLOW_LOCAL_TOKENS" in result.stderr
    assert warned is (allow != "true"), result.stderr


def test_token_for_an_unknown_user_is_refused(empty_db_url: str) -> None:
    env = {"DATABASE_URL": empty_db_url}
    assert run_cli("load-org", env=env).returncode == 0

    result = run_cli("token", "nobody", env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "unknown user 'nobody'")


def test_token_without_a_directory_to_check_is_refused() -> None:
    result = run_cli("token", "gm_wang")
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "cannot check 'gm_wang'", "DATABASE_URL", "make dev")


def test_database_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres:@/approvals?host={tmp_path}"
    result = run_cli("migrate", env={"DATABASE_URL": url})
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "approvals migrate:")


def test_dev_with_a_malformed_policy_names_the_file_and_starts_nothing(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "broken.yaml").write_text("type: broken\nversion: one\n")
    data = tmp_path / "data"

    result = run_cli(
        "dev", env={"APPROVALS_POLICY_DIR": str(policies), "APPROVALS_DATA_DIR": str(data)}
    )

    assert result.returncode == 1
    assert_one_line_error(result.stderr, "policy error", "broken.yaml")
    assert not (data / "pg").exists(), "PostgreSQL was started before the policies were checked"


def test_dev_on_a_taken_port_names_the_owner_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        policies = tmp_path / "policies"
        policies.mkdir()
        shutil.copy(ROOT / "policies" / "big_customer_contract.yaml", policies)

        result = run_cli(
            "dev",
            env={
                "TEMPORAL_ADDRESS": f"localhost:{port}",
                "APPROVALS_DATA_DIR": str(data),
                "APPROVALS_POLICY_DIR": str(policies),
            },
        )

    assert result.returncode == 1
    assert_one_line_error(result.stderr, f"port {port}", "already in use", "TEMPORAL_ADDRESS=")
    assert not (data / "pg").exists()
    assert not (data / "run" / "dev.pid").exists(), "the supervisor's pid file was left behind"


PRODUCTION: dict[str, Any] = {
    "APPROVALS_ENV": "production",
    "APPROVALS_TOKEN_SECRET": "t" * 40,
    "APPROVALS_SIGNING_SECRET": "s" * 40,
    "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
    "APPROVALS_PAYLOAD_KEYS": "prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
}
"""A configuration production accepts: what is refused under it is refused for itself."""


@pytest.mark.parametrize(
    ("command", "needle"),
    [("mailcatcher", "keeps every mail"), ("dev", "mail catcher keeps every mail")],
)
def test_the_development_mail_sink_and_stack_refuse_to_run_in_production(
    tmp_path: Path, command: str, needle: str
) -> None:
    port = free_port()
    result = run_cli(
        command,
        env={
            **PRODUCTION,
            "APPROVALS_DATA_DIR": str(tmp_path / "data"),
            "APPROVALS_MAILCATCHER_PORT": str(port),
        },
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert_one_line_error(
        result.stderr, f"approvals {command}:", "only in development", "production", needle
    )
    assert not (tmp_path / "data").exists()  # nothing started, nothing written
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # and nothing listens


@pytest.mark.parametrize("command", [("api",), ("worker", "--only", "deliveries"), ("deliverer",)])
def test_production_refuses_to_start_without_the_public_base_url(command: tuple[str, ...]) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "APPROVALS_PUBLIC_BASE_URL"}
    result = run_cli(*command, env={**env, "DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr, "invalid configuration", "APPROVALS_PUBLIC_BASE_URL", "production"
    )


def test_in_development_links_follow_the_address_the_api_listens_on() -> None:
    assert Settings(APPROVALS_API_PORT=18040).public_base_url == "http://127.0.0.1:18040"
    assert (
        Settings(APPROVALS_API_HOST="0.0.0.0", APPROVALS_API_PORT=9001).public_base_url
        == "http://127.0.0.1:9001"
    )
    assert Settings(APPROVALS_API_HOST="::1").public_base_url == "http://[::1]:8000"
    explicit = Settings(
        APPROVALS_API_PORT=18040, APPROVALS_PUBLIC_BASE_URL="https://approvals.example.com/x"
    )
    assert explicit.public_base_url == "https://approvals.example.com/x"
    assert Settings(**PRODUCTION).public_base_url == "https://approvals.example.com"


def test_payload_key_prints_a_key_the_settings_accept() -> None:
    from common.payload_codec import parse_payload_keys

    result = run_cli("payload-key", "2027-01")
    assert result.returncode == 0, result.stderr
    keys = parse_payload_keys(result.stdout.strip())
    assert keys.active == "2027-01" and len(keys.keys["2027-01"]) == 32


def test_production_without_payload_keys_refuses_to_start_in_one_line() -> None:
    env = {
        "APPROVALS_ENV": "production",
        "APPROVALS_TOKEN_SECRET": "production-token-secret-0123456789abcdef",
        "APPROVALS_SIGNING_SECRET": "production-signing-secret-0123456789abcdef",
        "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
    }
    result = run_cli("token", "am_li", env=env)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "invalid configuration", "APPROVALS_PAYLOAD_KEYS")
