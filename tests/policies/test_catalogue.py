"""The policy directory as a whole: fifteen request types, well described, staffable."""

from __future__ import annotations

import re
from typing import Any

from domain.policy import ApproverSpec, Policy
from tests.support.paths import ROOT
from tests.support.policy_versions import version_of

TYPES = [
    "agreement_change",
    "big_customer_contract",
    "commercial_terms_beyond_authority",
    "compensation_volume",
    "credit_line",
    "customer_commission",
    "customer_complaint",
    "customer_discount",
    "customer_gift",
    "customer_operating_expense",
    "overdue_receivable",
    "real_estate_group_purchase",
    "retail_bulk_discount",
    "special_custom_order",
    "special_discount",
]
SOURCE_MARKER = re.compile(r"\[00[0-4] [^\]]+\]")


def test_all_fifteen_request_types_load(policies: dict[str, Policy]) -> None:
    assert sorted(policies) == TYPES


def test_every_policy_is_at_its_version_titled_described_and_sourced(
    policies: dict[str, Policy],
) -> None:
    for policy in policies.values():
        assert policy.version == version_of(policy.type), policy.type
        assert policy.title and policy.description.strip(), policy.type
        assert SOURCE_MARKER.search(policy.source), policy.type
        assert SOURCE_MARKER.search(policy.description), policy.type


def _named(policy: Policy) -> list[ApproverSpec]:
    specs = [a for s in policy.stages for a in s.approvers]
    specs += [c.who for c in policy.cc]
    if policy.watch is not None:
        specs += [a for step in policy.watch.steps for a in step.notify]
    return specs


def test_every_role_a_policy_names_has_a_holder_in_the_demo_org(
    policies: dict[str, Policy], org: dict[str, Any]
) -> None:
    declared = set(org["roles"])
    held = {role for user in org["users"] for role in user.get("roles", [])}
    named = {a.role for p in policies.values() for a in _named(p) if a.role is not None}
    assert named - declared == set()
    assert named - held == set()
    # Policies name people by role or by the requester's manager, never a fixed user.
    assert [a for p in policies.values() for a in _named(p) if a.user is not None] == []


def test_the_request_types_guide_lists_every_request_type(policies: dict[str, Policy]) -> None:
    guide = (ROOT / "docs" / "request-types.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \|", guide, flags=re.MULTILINE)
    assert sorted(rows) == sorted(policies)
