"""``make bench``'s default: the project as deployed, ``approvals dev`` started for the run.

Through the real command, with a tiny count: it starts the stack as separate
processes, measures the project and the floor on it and on a Temporal server of
the floor's own, prints where the CPU went, and leaves no process of the stack
or of that server running; the stack also not when interrupted with Ctrl-C
(that server's own start and stop: ``test_own_temporal.py``). Their temporary
directories are under a ``TMPDIR`` of the test's own, so every process the run
started can be recognised by its command line or environment.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.cpu import render_cpu, spent
from bench.deployed import stack_environment
from bench.stack import ROOT

RUN_TIMEOUT = 300.0
TINY = ["--requests", "3", "--concurrency", "2", "--serial-requests", "1"]


@pytest.fixture
def bench_tmp() -> Iterator[Path]:
    """A TMPDIR for the benchmark, outside pytest's basetemp (see ``pg_tmp_path``)."""
    path = Path(tempfile.mkdtemp(prefix="approvals-bench-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _bench(tmp: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.api_throughput", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _processes_of(tmp: Path) -> list[str]:
    """Every process whose command line or TMPDIR is under ``tmp``: what the run started."""
    found = []
    for proc in psutil.process_iter():
        try:
            cmdline = " ".join(proc.cmdline())
            ours = str(tmp) in cmdline or proc.environ().get("TMPDIR") == str(tmp)
        except psutil.Error:
            continue
        if ours:
            found.append(f"{proc.pid} {cmdline[:150]}")
    return found


def test_default_run_starts_separate_processes_measures_them_and_stops_every_one(
    bench_tmp: Path,
) -> None:
    bench = _bench(bench_tmp, *TINY)
    out, _ = bench.communicate(timeout=RUN_TIMEOUT)

    assert bench.returncode == 0, out
    assert "== project vs floor" in out
    assert "decision p50, 1 in flight" in out
    assert "== own floor (bare Temporal on a server of its own), 2 in flight" in out
    stack = next(line for line in out.splitlines() if line.startswith("stack "))
    for part in ("separate processes:", "api", "worker", "temporal", "postgres", "mailcatcher"):
        assert part in stack, stack
    # Where the CPU went: a row per process with a figure in each column.
    lines = out.splitlines()
    start = lines.index("== CPU seconds per process while measuring (user + system)")
    assert lines[start + 1].split()[-4:] == ["shared", "floor", "own", "floor"]
    rows = itertools.takewhile(bool, lines[start + 3 :])
    table = {line.rsplit(maxsplit=4)[0]: line.split()[-4:] for line in rows}
    processes = ("api", "worker", "temporal", "temporal (floor's own)", "postgres")
    for process in (*processes, "bench (this process)"):
        assert all(cell.replace(".", "").isdigit() for cell in table[process]), table
    assert table["CPU ms per approval"][1] == "-"  # reads approve nothing
    assert float(table["all processes"][0]) > 0
    # The own floor ran on its own server, and that server's CPU is counted.
    assert float(table["temporal (floor's own)"][3]) > 0, table

    assert _processes_of(bench_tmp) == []
    assert list(bench_tmp.glob("approvals-bench-*")) == []  # the stack's directory is deleted


def test_ctrl_c_while_measuring_stops_the_stack_it_started(bench_tmp: Path) -> None:
    bench = _bench(bench_tmp, "--requests", "200", "--concurrency", "2")
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not list(bench_tmp.glob("approvals-bench-*/data/dev.env")):
            assert bench.poll() is None, bench.communicate()[0]
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.2)
        bench.send_signal(signal.SIGINT)
        out, _ = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()

    assert bench.returncode == 130, out
    assert "interrupted (the stack it started is stopped)" in out
    assert _processes_of(bench_tmp) == []
    assert list(bench_tmp.glob("approvals-bench-*")) == []


def test_the_stack_gets_free_ports_and_keeps_only_the_callers_tuning(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "DATABASE_URL": "postgresql+asyncpg://elsewhere/db",
        "TEMPORAL_ADDRESS": "localhost:7233",
        "APPROVALS_API_PORT": "8000",
        "APPROVALS_SMTP_HOST": "smtp.example.com",
        "APPROVALS_WEBHOOKS_FILE": "/etc/hooks.yaml",
        "APPROVALS_DB_POOL_SIZE": "20",
        "APPROVALS_WORKER_MAX_CACHED_WORKFLOWS": "50",
    }
    env = stack_environment(tmp_path / "data", base)

    assert "DATABASE_URL" not in env  # its own embedded PostgreSQL
    assert "APPROVALS_SMTP_HOST" not in env and "APPROVALS_WEBHOOKS_FILE" not in env
    assert env["APPROVALS_DB_POOL_SIZE"] == "20"
    assert env["APPROVALS_WORKER_MAX_CACHED_WORKFLOWS"] == "50"
    assert env["APPROVALS_DATA_DIR"] == str(tmp_path / "data")
    ports = [
        env["APPROVALS_API_PORT"],
        env["APPROVALS_TEMPORAL_UI_PORT"],
        env["APPROVALS_MAILCATCHER_PORT"],
        env["TEMPORAL_ADDRESS"].rpartition(":")[2],
    ]
    assert "8000" not in ports and "7233" not in ports
    assert env["PATH"] == "/usr/bin"


def test_cpu_per_phase_is_the_difference_and_a_restarted_process_is_not_guessed() -> None:
    before = {"api": 1.0, "worker": 5.0, "postgres": None}
    after = {"api": 1.5, "worker": 0.25, "postgres": 2.0, "deliverer": 0.5}

    assert spent(before, after) == {"api": 0.5, "worker": None, "postgres": None, "deliverer": 0.5}

    table = render_cpu(
        [
            ("writes", [{"api": 0.5, "worker": 1.5}, {"api": 1.0, "worker": None}], 10),
            ("reads", [{"api": 0.25}], None),
        ]
    )
    rows = {line.rsplit(maxsplit=2)[0]: line.split()[-2:] for line in table[2:]}
    assert rows["api"] == ["1.50", "0.25"]
    assert rows["worker"] == ["n/a", "0.00"]
    # The total leaves out what could not be read; 1.5 s over 10 approvals is 150 ms each.
    assert rows["all processes"] == ["1.50", "0.25"]
    assert rows["CPU ms per approval"] == ["150.0", "-"]

    # A process only the last column saw (the floor's own server) is listed under the one
    # it follows in that column's readings, and spent nothing in the other columns.
    table = render_cpu(
        [
            ("shared floor", [{"temporal": 2.0, "bench": 1.0}], 4),
            ("own floor", [{"temporal": 0.25, "temporal (floor's own)": 1.5, "bench": 1.0}], 4),
        ]
    )
    rows = {line.rsplit(maxsplit=2)[0]: line.split()[-2:] for line in table[2:]}
    assert list(rows)[:3] == ["temporal", "temporal (floor's own)", "bench"]
    assert rows["temporal (floor's own)"] == ["0.00", "1.50"]
    assert rows["all processes"] == ["3.00", "2.75"]
