"""The benchmarks run end to end on the session's real servers.

These tests check that the API benchmark finishes without errors, prints a row
per phase with the right counts, really takes every request through both
stages, and counts a refused request as an error; that the bare-Temporal floor
runs beside it, on the stack's server and on a server of its own that the run
starts and stops, and the comparison with both is printed; and that the seeding benchmark
opens requests for real and measures with them open. Speed is what the
benchmarks print; no test asserts it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench import seed
from bench.api_throughput import PHASES, main, parse_options, run_phases
from bench.deployed import free_port
from bench.report import (
    BenchReport,
    PhaseResult,
    headlines,
    render,
    render_comparison,
    render_rounds,
)
from bench.stack import BenchError, in_process_stack, remote_stack
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
    assert counts(report.own_floor_phases) == dict.fromkeys(writes, (4, 0))
    assert counts(report.own_floor_serial_phases) == dict.fromkeys(writes, (2, 0))
    assert "== project vs floor" in printed
    header = printed[printed.index("== project vs floor") + 1].split()
    shared = ["project", "shared", "floor", "project/shared", "target"]
    assert header == ["figure", *shared, "own", "floor", "project/own"]
    for figure in (
        "decision p50, 1 in flight",
        "decision p50, 2 in flight",
        "approvals/s, 2 in flight",
        "submit p50, 2 in flight",
    ):
        row = next(line for line in printed if line.startswith(figure))
        # A ratio to each floor: project/shared (beside its target), then project/own.
        assert len(re.findall(r"\d+\.\d\dx", row)) >= 2 and row.endswith("x"), row

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
        [
            "--floor-only", "--rounds", "2", "--requests", "3", "--concurrency", "2",
            "--serial-requests", "1",
        ],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )  # fmt: skip

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
    # Both floors: the same phases on a Temporal server of its own.
    assert [(p.name, p.count) for p in report.own_floor_phases] == [
        ("submit", 3),
        ("approve_stage1", 3),
        ("approve_stage2", 3),
    ]
    assert [p.count for p in report.own_floor_serial_phases] == [1, 1, 1]
    own = report.settings["own floor"]
    shared_address = temporal_local.client.service_client.config.target_host
    assert "on a Temporal dev server of its own" in own and shared_address not in own

    printed = out.getvalue()
    assert "== shared floor (bare Temporal on the stack's server), 2 in flight" in printed
    assert "== own floor (bare Temporal on a server of its own), 2 in flight" in printed
    assert "== project vs floor" not in printed
    # A server for each round's own floor, on an SQLite store of its own, all gone now.
    stores = [Path(p) for p in re.findall(r"--db-filename (\S+)\)", printed)]
    assert len(stores) == 2 and stores[0] != stores[1], stores
    assert all(s.name == "temporal.db" and not s.parent.exists() for s in stores)
    # Each floor's figures' medians over the rounds (no project: no ratios).
    lines = printed.splitlines()
    start = lines.index("== median figures over 2 rounds")
    assert lines[start + 1].split() == ["figure", "shared", "floor", "own", "floor"]
    row = next(line for line in lines[start:] if line.startswith("approvals/s, 2 in flight"))
    assert row.split()[-4:-3] != ["-"] and row.endswith("/s"), row


async def test_no_own_floor_measures_the_shared_floor_alone(
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    out = io.StringIO()
    report = await main(
        [
            "--floor-only", "--no-own-floor", "--rounds", "2", "--requests", "2",
            "--concurrency", "2", "--serial-requests", "1",
        ],
        pg_url=pg_url,
        temporal=temporal_local,
        sessions=db_sessions,
        out=out,
    )  # fmt: skip

    assert not report.failed
    assert [p.count for p in report.floor_phases] == [2, 2, 2]
    assert report.own_floor_phases == [] and report.own_floor_serial_phases == []
    assert "own floor" not in report.settings
    printed = out.getvalue()
    assert "== own floor" not in printed
    # Two rounds of the floor alone: its figures' medians, and no ratio without a project.
    lines = printed.splitlines()
    start = lines.index("== median figures over 2 rounds")
    assert lines[start + 1].split() == ["figure", "shared", "floor"]
    assert lines[start + 3].startswith("decision p50, 1 in flight")
    assert "rounds (the ratios the targets apply to)" not in printed
    assert not parse_options(["--no-own-floor"]).own_floor
    assert parse_options(["--no-own-floor"]).floor
    assert not parse_options(["--no-floor"]).own_floor


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
        own_floor_phases=run(60.0, 0.5),
        own_floor_serial_phases=run(80.0, 1.0),
    )
    rows = {row.figure: row for row in headlines(report, 8)}

    assert rows["decision p50, 1 in flight"].ratio == pytest.approx(1.2)
    assert rows["decision p50, 8 in flight"].ratio == pytest.approx(3.0)
    # 4 approvals in 6 s against 4 in 3 s: half the floor's throughput.
    assert rows["approvals/s, 8 in flight"].project == pytest.approx(4 / 6)
    assert rows["approvals/s, 8 in flight"].ratio == pytest.approx(0.5)
    assert rows["submit p50, 8 in flight"].ratio == pytest.approx(3.0)
    # The own floor beside it: its own figures, and the project's ratio to them.
    assert rows["decision p50, 1 in flight"].own_floor == pytest.approx(80.0)
    assert rows["decision p50, 1 in flight"].own_ratio == pytest.approx(1.5)
    assert rows["decision p50, 8 in flight"].own_ratio == pytest.approx(5.0)
    assert rows["approvals/s, 8 in flight"].own_floor == pytest.approx(4 / 1.5)
    assert rows["approvals/s, 8 in flight"].own_ratio == pytest.approx(0.25)
    table = render_comparison(list(rows.values()))
    text = "\n".join(table)
    # The target stands beside the ratio to the shared floor, the one it applies to.
    assert "1.20x  <= 1.5x (met)" in text
    assert "0.50x  >= 0.8x (not yet)" in text
    (row,) = [line for line in table if line.startswith("approvals/s")]
    assert row.split()[-3:] == ["2.7", "/s", "0.25x"]
    assert any(line.startswith("shared floor:") for line in table)
    assert any(line.startswith("own floor:") for line in table)

    # Without the own floor (--no-own-floor), its columns are not printed.
    report.own_floor_phases = report.own_floor_serial_phases = []
    table = render_comparison(headlines(report, 8))
    assert "own floor" not in table[0] and "project/own" not in table[0]
    assert not any(line.startswith("own floor:") for line in table)


def test_rounds_print_each_ratio_and_its_median_against_the_target() -> None:
    def report(project_seconds: float) -> BenchReport:
        run = [
            _phase("submit", [200.0] * 4, project_seconds),
            _phase("approve_stage1", [100.0] * 4, project_seconds),
            _phase("approve_stage2", [100.0] * 4, project_seconds),
        ]
        floor = [_phase(p.name, p.latencies_ms, 1.0) for p in run]
        own = [_phase(p.name, [x / 2 for x in p.latencies_ms], 0.5) for p in run]
        return BenchReport(
            phases=run,
            samples=[],
            settings={"concurrency": "8"},
            machine={},
            customer="",
            serial_phases=run,
            floor_phases=floor,
            floor_serial_phases=floor,
            own_floor_phases=own,
            own_floor_serial_phases=own,
        )

    text = render_rounds([report(2.0), report(1.0), report(1.25)])
    sections = {part.splitlines()[0]: part.splitlines()[1:] for part in text.strip().split("\n\n")}

    def row(section: str, figure: str) -> str:
        (found,) = [line for line in sections[section] if line.startswith(figure)]
        return found

    # Throughput ratios to the shared floor 1/2, 1/1 and 1/1.25 (0.5x, 1.0x, 0.8x): the
    # median is 0.8x, and the target applies to it.
    shared = row(
        "== project vs shared floor, 3 rounds (the ratios the targets apply to)", "approvals/s"
    )
    assert shared.split()[4:7] == ["0.50x", "1.00x", "0.80x"]
    assert shared.endswith("0.80x  >= 0.8x (met)")
    # The own floor is twice as fast: half those ratios, with no target beside them.
    own = row("== project vs own floor, 3 rounds", "approvals/s")
    assert own.split()[4:] == ["0.25x", "0.50x", "0.40x", "0.40x"]
    assert row("== project vs own floor, 3 rounds", "decision p50, 1").split()[-1] == "2.00x"
    # Each figure's median, the floors' too: 4 approvals in 3 s, and in 1.5 s.
    medians = row("== median figures over 3 rounds", "approvals/s")
    assert medians.split()[-6:] == ["1.1", "/s", "1.3", "/s", "2.7", "/s"]
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


async def test_api_url_with_no_temporal_answering_is_a_clear_bench_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # connect() raises ConnectionError, which once escaped as a traceback instead of
    # the benchmark's message and exit code 2.
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"localhost:{free_port()}")
    with pytest.raises(BenchError, match="does not answer"):
        async with remote_stack(
            f"http://127.0.0.1:{free_port()}",
            token_file=None,
            concurrency=1,
            request_timeout=1,
            connect_temporal=True,
        ):
            pass
