"""The docs and the compose file stay in step with the code they describe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from common.settings import Settings
from tests.support.paths import ROOT


def test_the_configuration_guide_lists_every_setting() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    variables = {str(f.alias) for f in Settings.model_fields.values()}
    assert documented == variables


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (`make test` installs it)")
    secrets = ("APPROVALS_TOKEN_SECRET", "APPROVALS_SIGNING_SECRET", "APPROVALS_PUBLIC_BASE_URL")
    clean = {k: v for k, v in os.environ.items() if k not in secrets}
    clean.pop("POSTGRES_PASSWORD", None)
    return subprocess.run(
        [binary, *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    )


def test_compose_refuses_to_start_without_the_token_secret() -> None:
    result = _compose("config", "-q", env={"POSTGRES_PASSWORD": "x"})
    assert result.returncode != 0
    assert "set APPROVALS_TOKEN_SECRET" in result.stderr


SECRETS = {
    "POSTGRES_PASSWORD": "pw",
    "APPROVALS_TOKEN_SECRET": "s" * 40,
    "APPROVALS_SIGNING_SECRET": "k" * 40,
    "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
    "APPROVALS_PAYLOAD_KEYS": "prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
}


def test_compose_refuses_to_start_without_the_signing_secret() -> None:
    result = _compose(
        "config", "-q", env={"POSTGRES_PASSWORD": "x", "APPROVALS_TOKEN_SECRET": "s" * 40}
    )
    assert result.returncode != 0
    assert "set APPROVALS_SIGNING_SECRET" in result.stderr


def test_compose_refuses_to_start_without_the_public_base_url() -> None:
    without = {k: v for k, v in SECRETS.items() if k != "APPROVALS_PUBLIC_BASE_URL"}
    result = _compose("config", "-q", env=without)
    assert result.returncode != 0
    assert "set APPROVALS_PUBLIC_BASE_URL" in result.stderr


def test_compose_keeps_temporal_off_public_interfaces() -> None:
    import yaml

    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("temporal", "temporal-ui"):
        for port in services[name].get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_compose_runs_the_service_in_production_mode_after_migrations() -> None:
    import yaml

    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("migrate", "api", "worker", "deliverer"):
        assert services[name]["environment"]["APPROVALS_ENV"] == "production"
        assert services[name]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    for name in ("api", "worker", "deliverer"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["temporal-setup"]["condition"] == "service_completed_successfully"
    # The deliverer talks to PostgreSQL only: it starts no workflow.
    assert "temporal-setup" not in services["deliverer"]["depends_on"]
    assert services["temporal"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["approvals", "migrate", "--org", "/app/org/demo.yaml"]
    assert services["worker"]["command"] == ["approvals", "worker", "--only", "approvals"]
    assert services["deliverer"]["command"] == ["approvals", "deliverer"]


def test_compose_exposes_the_workers_metrics_to_the_network_only() -> None:
    import yaml

    result = _compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in ("worker", "deliverer"):
        env = services[name]["environment"]
        assert env["APPROVALS_WORKER_METRICS_ADDRESS"] == "0.0.0.0:9464"
        assert env["APPROVALS_METRICS_ADDRESS"] == "0.0.0.0:9465"
        assert {str(p) for p in services[name]["expose"]} == {"9464", "9465"}
        assert "ports" not in services[name]  # never published on the host
        assert services[name]["labels"]["prometheus.scrape"] == "true"
        assert env["APPROVALS_ENV"] == "production"
    assert services["api"]["labels"]["prometheus.scrape"] == "true"


def test_compose_refuses_to_start_without_payload_keys() -> None:
    without = {k: v for k, v in SECRETS.items() if k != "APPROVALS_PAYLOAD_KEYS"}
    result = _compose("config", "-q", env=without)
    assert result.returncode != 0
    assert "set APPROVALS_PAYLOAD_KEYS" in result.stderr
