"""The benchmarks run end to end on the session's real servers.

These tests check that the API benchmark finishes without errors, prints a row
per phase with the right counts, really takes every request through both
stages, and counts a refused request as an error; that the bare-Temporal floor
runs beside it and the comparison is printed; and that the seeding benchmark
opens requests for real and measures with them open. Speed is what the
benchmarks print; no test asserts it.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench import seed
from bench.api_throughput import PHASES, main, parse_options, run_phases
from bench.report import (
    BenchReport,
    PhaseResult,
    headlines,
    render,
    render_comparison,
    render_rounds,
)
from bench.stack import in_process_stack
from db.models import AssignmentRow, EventRow, RequestRow


async def test_benchmark_runs_every_phase_without_errors_on_the_real_stack(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    report = await main(
        ["--requests", "4", "--concurrency", "2", "--serial-requests", "2"],
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

    # The one-at-a-time pass and the floor ran too, and the comparison is printed.
    def counts(phases: list[PhaseResult]) -> dict[str, tuple[int, int]]:
        return {p.name: (p.count, p.errors) for p in phases}

    writes = ("submit", "approve_stage1", "approve_stage2")
    assert counts(report.serial_phases) == dict.fromkeys(writes, (2, 0))
    assert counts(report.floor_phases) == dict.fromkeys(writes, (4, 0))
    assert counts(report.floor_serial_phases) == dict.fromkeys(writes, (2, 0))
    assert "== project vs floor" in printed
    for figure in (
        "decision p50, 1 in flight",
        "decision p50, 2 in flight",
        "approvals/s, 2 in flight",
        "submit p50, 2 in flight",
    ):
        row = next(line for line in printed if line.startswith(figure))
        assert row.split()[-1].endswith("x") or ")" in row, row

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


async def test_floor_only_runs_the_bare_workflow_through_both_updates_without_the_api(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    report = await main(
        ["--floor-only", "--requests", "3", "--concurrency", "2", "--serial-requests", "1"],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )

    # Each update was answered with the state after its activity: any other answer
    # would be an error sample.
    assert report.samples == [] and not report.failed
    assert report.phases == [] and report.serial_phases == []
    assert [(p.name, p.count) for p in report.floor_phases] == [
        ("submit", 3),
        ("approve_stage1", 3),
        ("approve_stage2", 3),
    ]
    assert [p.count for p in report.floor_serial_phases] == [1, 1, 1]
    printed = out.getvalue()
    assert "== floor (bare Temporal), 2 in flight" in printed
    assert "== project vs floor" not in printed


def _phase(name: str, latencies: list[float], seconds: float, errors: int = 0) -> PhaseResult:
    return PhaseResult(name, latencies_ms=latencies, errors=errors, seconds=seconds)


def test_the_comparison_divides_project_by_floor_and_notes_the_targets() -> None:
    def run(decide_ms: float, seconds: float) -> list[PhaseResult]:
        return [
            _phase("submit", [2 * decide_ms] * 4, seconds),
            _phase("approve_stage1", [decide_ms] * 4, seconds),
            _phase("approve_stage2", [decide_ms] * 4, seconds),
        ]

    report = BenchReport(
        phases=run(300.0, 2.0),
        samples=[],
        settings={"concurrency": "8"},
        machine={},
        customer="",
        serial_phases=run(120.0, 1.0),
        floor_phases=run(100.0, 1.0),
        floor_serial_phases=run(100.0, 1.0),
    )
    rows = {row.figure: row for row in headlines(report, 8)}

    assert rows["decision p50, 1 in flight"].ratio == pytest.approx(1.2)
    assert rows["decision p50, 8 in flight"].ratio == pytest.approx(3.0)
    # 4 approvals in 6 s against 4 in 3 s: half the floor's throughput.
    assert rows["approvals/s, 8 in flight"].project == pytest.approx(4 / 6)
    assert rows["approvals/s, 8 in flight"].ratio == pytest.approx(0.5)
    assert rows["submit p50, 8 in flight"].ratio == pytest.approx(3.0)
    table = "\n".join(render_comparison(list(rows.values())))
    assert "1.20x  <= 1.5x (met)" in table
    assert "0.50x  >= 0.8x (not yet)" in table


def test_rounds_print_each_ratio_and_its_median_against_the_target() -> None:
    def report(project_seconds: float) -> BenchReport:
        run = [
            _phase("submit", [200.0] * 4, project_seconds),
            _phase("approve_stage1", [100.0] * 4, project_seconds),
            _phase("approve_stage2", [100.0] * 4, project_seconds),
        ]
        floor = [_phase(p.name, p.latencies_ms, 1.0) for p in run]
        return BenchReport(
            phases=run,
            samples=[],
            settings={"concurrency": "8"},
            machine={},
            customer="",
            serial_phases=run,
            floor_phases=floor,
            floor_serial_phases=floor,
        )

    # Throughput ratios 1/2, 1/1 and 1/1.25 (0.5x, 1.0x, 0.8x): the median is 0.8x.
    table = render_rounds([report(2.0), report(1.0), report(1.25)])
    (row,) = [line for line in table.splitlines() if line.startswith("approvals/s")]
    assert row.split()[4:7] == ["0.50x", "1.00x", "0.80x"]
    assert row.endswith("0.80x  >= 0.8x (met)")
    assert parse_options(["--rounds", "3"]).rounds == 3
    with pytest.raises(SystemExit):
        parse_options(["--rounds", "0"])


def test_floor_only_and_no_floor_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        parse_options(["--floor-only", "--no-floor"])
    assert not parse_options(["--no-floor"]).floor
    assert not parse_options(["--floor-only"]).project


async def test_seeding_opens_requests_for_real_and_measures_with_them_open(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    # A cache of 2 workflows for 6 requests: the old decisions replay evicted workflows.
    report = await seed.main(
        [
            "--count", "6", "--batch", "4", "--max-backlog", "4", "--samples", "2",
            "--decisions", "2", "--max-cached-workflows", "2",
        ],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )  # fmt: skip

    assert report.samples == [] and not report.failed
    assert [(p.name, p.count, p.errors) for p in report.phases] == [
        ("inbox", 2, 0),
        ("list", 2, 0),
        ("decide_old", 2, 0),
        ("decide_new", 2, 0),
    ]
    assert [p.name for p in report.phases] == list(seed.SEED_PHASES)
    assert len(report.seeded.ids) == 6 and report.inbox_items >= 6
    assert report.memory["max_cached_workflows"] == "2"
    assert report.memory["rss at end"].endswith("MiB")
    printed = out.getvalue()
    assert "== with 6 requests open" in printed
    assert "max_cached_workflows  2" in printed

    # Real requests: rows written by their workflows, the oldest two decided at stage 1.
    async with db_sessions() as s:
        rows = {
            r.id: r
            for r in (
                await s.execute(
                    select(RequestRow).where(RequestRow.customer == report.seeded.customer)
                )
            ).scalars()
        }
        assert set(rows) == set(report.seeded.ids)
        assert {r.status for r in rows.values()} == {"in_review"}
        waiting = (
            await s.execute(
                select(AssignmentRow.request_id, AssignmentRow.user_id).where(
                    AssignmentRow.request_id.in_(rows), AssignmentRow.pending.is_(True)
                )
            )
        ).all()
        by_request = {rid: user for rid, user in waiting}
        decided = set(report.seeded.ids[:2]) | set(report.seeded.ids[-2:])
        assert {rid for rid, user in by_request.items() if user == "dsd_liu"} == decided
        assert {rid for rid, user in by_request.items() if user == "bcd_zheng"} == (
            set(rows) - decided
        )
