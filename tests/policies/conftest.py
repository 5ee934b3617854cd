"""Policy tests: the shipped policy files, through the pure resolver. No servers."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from common.policy_store import load_policies
from domain.policy import Policy
from tests.support.paths import ROOT


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    return load_policies(ROOT / "policies")


@pytest.fixture(scope="session")
def org() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "org" / "demo.yaml").read_text(encoding="utf-8"))
    return data
