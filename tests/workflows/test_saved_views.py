"""The Temporal UI queries that docs/operations.md gives operators (its "Saved views"
table and its example queries) are valid on the dev server's visibility store: each is
read from the guide and run, so a renamed search attribute or a typo fails here."""

from __future__ import annotations

import re

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support.paths import ROOT

GUIDE = ROOT / "docs" / "operations.md"


def saved_views(text: str) -> list[str]:
    """The second cell of every row of the table under "### Saved views"."""
    section = text.split("### Saved views", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [re.findall(r"`([^`]+)`", row.split(" | ", 1)[1])[0] for row in rows]


def example_queries(text: str) -> list[str]:
    """The lines of the ``text`` block after "Example queries"."""
    after = text.split("Example queries", 1)[1]
    block = after.split("```text\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


QUERIES = saved_views(GUIDE.read_text()) + example_queries(GUIDE.read_text())


def test_the_guide_gives_the_views_the_issue_asks_for() -> None:
    views = saved_views(GUIDE.read_text())
    assert len(views) >= 8
    text = " ".join(views)
    for needle in ("CurrentApprovers=", "Overdue=true", "Stuck=true", "RequestType=", "Amount"):
        assert needle in text


async def rows(env: WorkflowEnvironment, query: str) -> int:
    return len([w async for w in env.client.list_workflows(query, limit=5)])


@pytest.mark.parametrize("query", QUERIES)
async def test_each_query_of_the_guide_runs_on_the_dev_servers_visibility(
    temporal_local: WorkflowEnvironment, query: str
) -> None:
    assert await rows(temporal_local, query) >= 0


@pytest.mark.parametrize(
    "query", ['ExecutionStatus="Running" AND Overdue=maybe', "Overdew=true", "Amount >="]
)
async def test_a_query_the_visibility_store_refuses_fails_the_same_way(
    temporal_local: WorkflowEnvironment, query: str
) -> None:
    """The check above can fail: a misspelt attribute or value is refused."""
    with pytest.raises(RPCError):
        await rows(temporal_local, query)
