"""Custom search attributes, so an operator can find "all overdue contracts waiting on X".

Plain data: each attribute's name and its Temporal value kind. The typed keys are
built from these where Temporal is used, by :mod:`common.search_attributes` for
clients (API, CLI, tests) and :mod:`workflows.search_attributes` for the workflow,
so this layer stays free of Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """A search attribute's value kind: the SDK's ``SearchAttributeKey.for_<kind>``."""

    KEYWORD = "keyword"
    KEYWORD_LIST = "keyword_list"
    FLOAT = "float"
    BOOL = "bool"

    @property
    def server_type(self) -> str:
        """The type's name for ``temporal server start-dev --search-attribute``."""
        return {
            Kind.KEYWORD: "Keyword",
            Kind.KEYWORD_LIST: "KeywordList",
            Kind.FLOAT: "Double",
            Kind.BOOL: "Bool",
        }[self]


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Kind


REQUEST_TYPE = Attribute("RequestType", Kind.KEYWORD)
REQUEST_STATUS = Attribute("RequestStatus", Kind.KEYWORD)
CURRENT_APPROVERS = Attribute("CurrentApprovers", Kind.KEYWORD_LIST)
CUSTOMER_ID = Attribute("CustomerId", Kind.KEYWORD)
AMOUNT = Attribute("Amount", Kind.FLOAT)
OVERDUE = Attribute("Overdue", Kind.BOOL)
REQUESTER = Attribute("Requester", Kind.KEYWORD)
STUCK = Attribute("Stuck", Kind.BOOL)
"""True while the workflow cannot write a transition (it retries until it can)."""

ALL = (
    REQUEST_TYPE,
    REQUEST_STATUS,
    CURRENT_APPROVERS,
    CUSTOMER_ID,
    AMOUNT,
    OVERDUE,
    REQUESTER,
    STUCK,
)


def cli_flags() -> list[str]:
    """``--search-attribute`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for attribute in ALL:
        flags += ["--search-attribute", f"{attribute.name}={attribute.kind.server_type}"]
    return flags
