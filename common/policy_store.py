"""Load the policy directory: one YAML file per request type.

A malformed file stops start-up with the file and the field named, so a bad
deployment fails at once instead of at the first request of that type.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from domain.errors import field_problems
from domain.policy import Policy


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file and the field."""


def load_policy_file(path: Path) -> Policy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: must be a mapping at the top level")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{path}: {field_problems(exc)}") from exc
    if path.stem != policy.type:
        raise PolicyError(f"{path}: type {policy.type!r} must match the file name {path.stem!r}")
    return policy


def load_policies(directory: Path) -> dict[str, Policy]:
    """Every ``*.yaml`` in ``directory`` by request type."""
    if not directory.is_dir():
        raise PolicyError(f"{directory}: policy directory does not exist")
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.yaml")):
        policy = load_policy_file(path)
        policies[policy.type] = policy
    if not policies:
        raise PolicyError(f"{directory}: no policy files (*.yaml)")
    return policies
