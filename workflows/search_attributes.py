"""The search-attribute keys the workflow sets, built from :mod:`domain.search_attributes`.

Workflows import only the domain of this project (the layering in pyproject.toml), so
they build the typed keys here rather than take the clients' (common.search_attributes).
Imported through the sandbox's passthrough (workflows/effects.py).
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from domain import search_attributes as attrs


def _key(attribute: attrs.Attribute) -> SearchAttributeKey[Any]:
    factory = getattr(SearchAttributeKey, f"for_{attribute.kind.value}")
    built: SearchAttributeKey[Any] = factory(attribute.name)
    return built


REQUEST_TYPE = _key(attrs.REQUEST_TYPE)
REQUEST_STATUS = _key(attrs.REQUEST_STATUS)
CURRENT_APPROVERS = _key(attrs.CURRENT_APPROVERS)
CUSTOMER_ID = _key(attrs.CUSTOMER_ID)
AMOUNT = _key(attrs.AMOUNT)
OVERDUE = _key(attrs.OVERDUE)
REQUESTER = _key(attrs.REQUESTER)
STUCK = _key(attrs.STUCK)
