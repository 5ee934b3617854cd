"""The chaos drill, reduced: a few requests while the worker, the deliverer and the API
are killed with SIGKILL in turn on a real `approvals dev` stack.

The full drill (Temporal and PostgreSQL killed too, more requests) is `make chaos`.
What is asserted are the drill's checks, never its times.
"""

from __future__ import annotations

from pathlib import Path

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
    # Every check passes, times included: a workflow task run again after a kill
    # corrects what its first run wrote (docs/operations.md, "The chaos drill").
    assert all(c.ok for c in report.checks), printed
    assert [c.name.split(":")[0] for c in report.checks] == [
        "every action got a definite answer",
        "ledger",
        "audit rows contiguous 1..N, none doubled",
        "read-model equals each workflow's state",
        "audit rows equal each workflow's history (seq, time, kind, actor)",
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


def test_a_failed_check_fails_the_drill_and_is_printed(tmp_path: Path) -> None:
    from bench.chaos import ChaosReport, Check, Entry, Recovery

    report = ChaosReport(
        entries=[Entry("approved", "r1")],
        recoveries=[Recovery("worker", 0.0, 1.5, None, "not recovered: timeout")],
        checks=[
            Check("ledger", True, "1 request"),
            Check("nothing stuck", False, "1 stuck"),
            Check("audit rows equal each workflow's history", False, "r1: #1", times_only=True),
        ],
        duplicates_same_id={"email": 1, "webhook": 0},
        server_errors={500: 2},
        load_seconds=3.0,
        kept=tmp_path,
    )
    printed = report.render()
    assert not report.ok
    assert "[FAIL] nothing stuck: 1 stuck" in printed and "CHECKS FAILED" in printed
    assert "email 1, webhook 0" in printed and "500 x2" in printed
    assert "not recovered: timeout" in printed
    assert f"kept for a look: {tmp_path}" in printed
    assert printed.count("(times only:") == 1


def test_caught_mails_are_counted_by_their_message_id_without_the_domain(tmp_path: Path) -> None:
    from bench.chaos import mail_ids

    for i, mid in enumerate(("ntf-a", "ntf-a", "ntf-b")):
        (tmp_path / f"{i}.eml").write_text(f"Message-ID: <{mid}@localhost>\nSubject: x\n\nbody\n")
    assert mail_ids(tmp_path) == {"ntf-a": 2, "ntf-b": 1}
