"""The chaos drill, reduced: a few requests while the worker, the deliverer and the API
are killed with SIGKILL in turn on a real `approvals dev` stack.

The full drill (Temporal and PostgreSQL killed too, more requests) is `make chaos`.
What is asserted are the drill's checks, never its times.
"""

from __future__ import annotations

import pytest

from bench.chaos import PROCESSES, ChaosOptions, drill, parse_options


async def test_a_reduced_drill_loses_nothing_and_doubles_nothing() -> None:
    options = ChaosOptions(
        requests=10,
        concurrency=3,
        kill=("worker", "deliverer", "api"),
        first_kill_after=3.0,
        spacing=4.0,
    )
    said: list[str] = []

    report = await drill(options, say=said.append)

    printed = report.render()
    print(printed)
    assert report.ok, printed
    assert [c.name.split(":")[0] for c in report.checks] == [
        "every action got a definite answer",
        "ledger",
        "audit rows contiguous 1..N, none doubled",
        "read-model equals each workflow's state",
        "every notice due delivered once per channel (by Message-ID / webhook-id)",
        "nothing stuck",
    ]
    assert [r.process for r in report.recoveries] == ["worker", "deliverer", "api"]
    assert all(r.running_s is not None and r.serves_s is not None for r in report.recoveries)
    # Every kind of request was driven, and each got at least one acknowledged action.
    kinds = {e.name for e in report.entries}
    assert {"approved", "returned-resubmitted", "deposit", "rejected", "probe"} <= kinds
    assert all(e.acked for e in report.entries)


def test_the_drill_kills_every_process_by_default_and_refuses_an_unknown_one() -> None:
    assert parse_options([]).kill == PROCESSES
    assert parse_options(["--kill", "api,worker"]).kill == ("api", "worker")
    with pytest.raises(SystemExit):
        parse_options(["--requests", "0"])


async def test_an_unknown_process_to_kill_is_refused_before_anything_starts() -> None:
    from bench.stack import BenchError

    with pytest.raises(BenchError, match="unknown process"):
        await drill(ChaosOptions(kill=("redis",)))
