"""The version each shipped policy is at. A change of a policy's rules bumps its version
(the audit trail says which rules a request ran under); these tests pin that it did."""

from __future__ import annotations

BUMPED = {
    # v2: deadlines counted in working time on the business calendar (issue 9).
    "customer_complaint": 2,
    "special_discount": 2,
}


def version_of(policy_type: str) -> int:
    return BUMPED.get(policy_type, 1)
