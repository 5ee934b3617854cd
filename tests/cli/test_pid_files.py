"""Recovery after a crash: pid files of dead, recycled and orphaned processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.children import PidRecord, clear_stale_pid_file
from cli.devstack import DevPaths, claim_supervisor, keep_previous_log, tail
from cli.errors import CliError

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process in a session of its own, like the children of `approvals dev`."""
    proc = subprocess.Popen(SLEEPER, start_new_session=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_pid_file_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    record = PidRecord.of(proc.pid)
    proc.wait()
    pid_file = tmp_path / "worker.pid"
    record.write(pid_file)

    note = clear_stale_pid_file(pid_file)

    assert not pid_file.exists()
    assert note is not None and "not running" in note and str(proc.pid) in note


def test_unreadable_pid_file_is_removed(tmp_path: Path) -> None:
    pid_file = tmp_path / "api.pid"
    pid_file.write_text("not json")

    assert clear_stale_pid_file(pid_file) is not None
    assert not pid_file.exists()


def test_recycled_pid_is_never_signalled(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    # Same pid, other start time: the pid now belongs to an unrelated program.
    real = PidRecord.of(sleeper.pid)
    pid_file = tmp_path / "temporal.pid"
    PidRecord(sleeper.pid, real.create_time - 1000, real.cmdline).write(pid_file)

    note = clear_stale_pid_file(pid_file)

    assert not pid_file.exists()
    assert note is not None and "not running" in note
    assert sleeper.poll() is None, "an unrelated process was stopped"


def test_orphan_left_by_a_crashed_run_is_stopped(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "temporal.pid"
    PidRecord.of(sleeper.pid).write(pid_file)

    note = clear_stale_pid_file(pid_file, timeout=5)

    assert sleeper.wait(5) is not None
    assert not pid_file.exists()
    assert note is not None and "stopped temporal" in note


def test_no_pid_file_means_nothing_to_do(tmp_path: Path) -> None:
    assert clear_stale_pid_file(tmp_path / "api.pid") is None


def test_second_supervisor_on_the_same_data_dir_is_refused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    paths = DevPaths(tmp_path)
    PidRecord.of(sleeper.pid).write(paths.supervisor_pid)

    with pytest.raises(CliError, match=f"already running \\(pid {sleeper.pid}\\)"):
        claim_supervisor(paths)
    assert sleeper.poll() is None


def test_supervisor_pid_file_of_a_crashed_run_is_taken_over(tmp_path: Path) -> None:
    paths = DevPaths(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    record = PidRecord.of(proc.pid)
    proc.wait()
    record.write(paths.supervisor_pid)

    claim_supervisor(paths)

    assert PidRecord.read(paths.supervisor_pid) == PidRecord.of(os.getpid())


def test_a_program_writes_its_own_pid_file_and_keeps_its_pid(tmp_path: Path) -> None:
    pid_file = tmp_path / "run" / "sleeper.pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.children", str(pid_file), "--", *SLEEPER],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while (record := PidRecord.read(pid_file)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert record.pid == proc.pid, "the wrapper became the program: same pid"
        assert record.is_running()
        assert record.cmdline == tuple(SLEEPER)
    finally:
        proc.kill()
        proc.wait()
    assert not record.is_running()


def test_the_previous_runs_log_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "echo.log"
    log.write_text("first\n")

    keep_previous_log(log)
    log.write_text("second\n")
    keep_previous_log(tmp_path / "never-written.log")

    assert tail(log) == ["second"]
    assert (tmp_path / "echo.log.1").read_text().strip() == "first"
