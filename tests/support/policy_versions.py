"""The version each shipped policy is at. A change of a policy's rules bumps its version
(the audit trail says which rules a request ran under); these tests pin that it did."""

from __future__ import annotations

BUMPED = {
    # v2: deadlines counted in working time on the business calendar (issue 9).
    # v3: reply and resubmit in working time too (issue 14, item 9).
    # v4: texts in zh-CN and en (issue 18).
    "customer_complaint": 4,
    # v4 (v5 for special_discount): fields carry their units, labels no longer do (issue 18).
    "big_customer_contract": 4,
    "compensation_volume": 4,
    "credit_line": 4,
    "customer_commission": 4,
    "customer_discount": 4,
    "real_estate_group_purchase": 4,
    "retail_bulk_discount": 4,
    "special_discount": 5,
}
"""Every other shipped policy is at version 3: v2 counts its reply, resolve and
resubmit deadlines in working time (issue 14, item 9); v3 carries its texts in zh-CN
and en (issue 18)."""


def version_of(policy_type: str) -> int:
    return BUMPED.get(policy_type, 3)
