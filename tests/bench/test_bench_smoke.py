"""The API benchmark runs end to end on the session's real servers.

These tests check that it finishes without errors, prints a row per phase with
the right counts, really takes every request through both stages, and counts a
refused request as an error. Speed is what the benchmark prints; no test asserts it.
"""

from __future__ import annotations

import io

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench.api_throughput import (
    PHASES,
    in_process_stack,
    main,
    parse_options,
    render,
    run_phases,
)
from db.models import EventRow, RequestRow


async def test_benchmark_runs_every_phase_without_errors_on_the_real_stack(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    report = await main(
        ["--requests", "4", "--concurrency", "2"],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )

    assert report.samples == []
    assert not report.failed
    rows = {p.name: (p.count, p.errors) for p in report.phases}
    # Four contracts through three writing phases and four inbox reads; the two
    # readers of the list each need one page (4 requests, 20 a page).
    assert rows == {
        "submit": (4, 0),
        "approve_stage1": (4, 0),
        "approve_stage2": (4, 0),
        "inbox": (4, 0),
        "list": (2, 0),
    }
    assert [p.name for p in report.phases] == list(PHASES)
    printed = out.getvalue().splitlines()
    for name, (count, errors) in rows.items():
        assert any(line.split()[:3] == [name, str(count), str(errors)] for line in printed), name
    assert any(line.split()[:2] == ["concurrency", "2"] for line in printed)

    # The figures are about real work: every contract went through both stages.
    async with db_sessions() as s:
        requests = (
            (await s.execute(select(RequestRow).where(RequestRow.customer == report.customer)))
            .scalars()
            .all()
        )
        assert len(requests) == 4
        assert {r.status for r in requests} == {"approved"}
        assert {r.requester for r in requests} == {"am_li"}
        for r in requests:
            actors = (
                await s.execute(
                    select(EventRow.actor)
                    .where(EventRow.request_id == r.id, EventRow.kind == "approved")
                    .order_by(EventRow.seq)
                )
            ).scalars()
            assert list(actors) == ["bcd_zheng", "dsd_liu"]


async def test_a_refused_request_is_counted_as_an_error_and_its_body_shown(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    options = parse_options(["--requests", "3", "--concurrency", "2"])
    async with in_process_stack(
        pg_url=pg_url, temporal=temporal_local, sessions=db_sessions
    ) as stack:
        # The requester tries to approve their own contracts: 403 each time.
        stack.tokens["bcd_zheng"] = stack.tokens["am_li"]
        report = await run_phases(stack, options, "refused")

    rows = {p.name: (p.count, p.errors) for p in report.phases}
    assert rows["submit"] == (3, 0)
    assert rows["approve_stage1"] == (3, 3)
    # Nothing reached stage 2, so nothing was sent there.
    assert rows["approve_stage2"] == (0, 0)
    assert report.failed and report.errors == 3
    assert [(s.phase, s.status) for s in report.samples] == [("approve_stage1", 403)] * 3
    assert all('"not_eligible"' in s.body for s in report.samples), report.samples
    assert "3 failed requests" in render(report)
