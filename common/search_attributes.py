"""The typed search-attribute keys for Temporal clients (API, CLI, tests).

The attributes themselves are data in :mod:`domain.search_attributes`; the
workflow builds the same keys in :mod:`workflows.search_attributes`.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from domain import search_attributes as attrs


def key(attribute: attrs.Attribute) -> SearchAttributeKey[Any]:
    factory = getattr(SearchAttributeKey, f"for_{attribute.kind.value}")
    built: SearchAttributeKey[Any] = factory(attribute.name)
    return built


REQUEST_TYPE = key(attrs.REQUEST_TYPE)
REQUEST_STATUS = key(attrs.REQUEST_STATUS)
CURRENT_APPROVERS = key(attrs.CURRENT_APPROVERS)
CUSTOMER_ID = key(attrs.CUSTOMER_ID)
AMOUNT = key(attrs.AMOUNT)
OVERDUE = key(attrs.OVERDUE)
REQUESTER = key(attrs.REQUESTER)
STUCK = key(attrs.STUCK)

ALL: tuple[SearchAttributeKey[Any], ...] = tuple(key(a) for a in attrs.ALL)
