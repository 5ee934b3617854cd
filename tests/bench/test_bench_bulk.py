"""The bulk-decision benchmark runs end to end on the session's real servers.

It submits the contracts, approves all of them in one bulk call, and prints the time
and items per second; every request really is approved at its first stage, in bulk.
Speed is what it prints; no test asserts it.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench.bulk import main, parse_options
from db.models import EventRow, RequestRow


async def test_the_bulk_benchmark_approves_every_contract_in_one_call_and_prints_the_rate(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    report = await main(
        ["--requests", "5", "--concurrency", "2"],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )
    assert report.samples == [] and not report.failed
    assert (report.items, report.done, report.refused) == (5, 5, 0)
    assert report.bulk.count == 1 and report.seconds > 0
    printed = out.getvalue()
    assert "bulk approve     5 items in " in printed and "items/s): 5 done, 0 refused" in printed

    async with db_sessions() as session:
        rows = (
            await session.execute(
                select(EventRow.request_id, EventRow.data)
                .join(RequestRow, RequestRow.id == EventRow.request_id)
                .where(RequestRow.customer == report.customer, EventRow.kind == "approved")
            )
        ).all()
    assert len(rows) == 5 and all(data.get("bulk") is True for _, data in rows)


@pytest.mark.parametrize("argv", [["--requests", "0"], ["--requests", "101"]])
def test_the_bulk_benchmark_takes_at_most_one_calls_worth(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_options(argv)
