"""Custom search attributes, so an operator can find "all overdue contracts waiting on X"."""

from temporalio.common import SearchAttributeKey

REQUEST_TYPE = SearchAttributeKey.for_keyword("RequestType")
REQUEST_STATUS = SearchAttributeKey.for_keyword("RequestStatus")
CURRENT_APPROVERS = SearchAttributeKey.for_keyword_list("CurrentApprovers")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
AMOUNT = SearchAttributeKey.for_float("Amount")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
REQUESTER = SearchAttributeKey.for_keyword("Requester")
STUCK = SearchAttributeKey.for_bool("Stuck")
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
    kinds = {
        "KEYWORD": "Keyword",
        "KEYWORD_LIST": "KeywordList",
        "DOUBLE": "Double",
        "BOOL": "Bool",
    }
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
