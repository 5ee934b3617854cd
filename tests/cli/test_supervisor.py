"""The supervisor's restart policy, on real (tiny) child processes and a hand-driven clock."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from cli.children import Child
from cli.devstack import supervised_child
from cli.supervisor import Backoff, Supervisor


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    backoff = Backoff()
    delays = [backoff.delay_after(uptime=2.0) for _ in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_starts_again_from_one_second_after_a_stable_run() -> None:
    backoff = Backoff(stable_after=60)
    for _ in range(4):
        backoff.delay_after(uptime=5)
    assert backoff.delay_after(uptime=59) == 16
    assert backoff.delay_after(uptime=60) == 1
    assert backoff.delay_after(uptime=3) == 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait_exit(child: Child) -> None:
    assert child.process is not None
    child.process.wait(10)


def test_a_crashed_child_is_restarted_after_its_backoff_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crash = "import sys; print('boom: no database'); sys.exit(3)"
    child = Child("worker", [sys.executable, "-c", crash], run_dir=tmp_path, log_dir=tmp_path)
    clock = Clock()
    child.start(os.environ)
    service = supervised_child(child, os.environ, ready=lambda: True)
    service.started_at = clock.now
    supervisor = Supervisor([service], clock=clock)
    caplog.set_level(logging.INFO, logger="approvals.dev")
    _wait_exit(child)
    first_pid = child.pid

    clock.now += 5
    supervisor.check()  # notices the death: restart in 1 s
    assert "worker exited with code 3 after 5 s up; restart #1 in 1 s" in caplog.text
    assert "worker| boom: no database" in caplog.text, "its last log lines are shown"
    clock.now += 0.5
    supervisor.check()
    assert child.pid == first_pid, "restarted before its back-off"

    clock.now += 0.5
    supervisor.check()  # restarts it
    assert child.pid != first_pid
    assert "worker restarted (restart #1)" in caplog.text
    _wait_exit(child)

    clock.now += 1
    supervisor.check()  # second crash, quickly again: the delay doubles
    assert "restart #2 in 2 s" in caplog.text

    log = child.log_file.read_text()
    assert log.count("boom: no database") == 2, "a restart appends to the child's log"
    assert "approvals dev: worker exited with code 3 after 5 s up; restart #1 in 1 s" in log
    assert "approvals dev: worker restarted (restart #1)" in log


def test_a_restarted_child_is_reported_back_once_it_is_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    child = Child("api", sleeper, run_dir=tmp_path, log_dir=tmp_path)
    clock = Clock()
    ready = [False]
    child.start(os.environ)
    service = supervised_child(child, os.environ, ready=lambda: ready[0])
    supervisor = Supervisor([service], clock=clock)
    caplog.set_level(logging.INFO, logger="approvals.dev")
    try:
        assert child.process is not None
        child.process.kill()
        _wait_exit(child)
        supervisor.check()
        assert "api was killed by SIGKILL" in caplog.text
        clock.now += 1
        supervisor.check()
        assert child.running()
        supervisor.check()
        assert "api is back" not in caplog.text, "reported back before it was ready"

        ready[0] = True
        clock.now += 2
        supervisor.check()
        assert "api is back: it serves again 3.0 s after it went down" in caplog.text
    finally:
        child.stop(timeout=5)


class MovedPostgres:
    """Stands in for EmbeddedPostgres: dead, and answering elsewhere once restarted."""

    pid = 4242

    def alive(self) -> bool:
        return False

    def restart(self) -> str:
        return "postgresql+asyncpg://postgres:@/approvals?host=/elsewhere"


def test_postgres_answering_at_a_new_address_restarts_its_clients_with_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cli.devstack import supervised_postgres

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    worker = Child("worker", sleeper, run_dir=tmp_path, log_dir=tmp_path)
    env = {**os.environ, "DATABASE_URL": "postgresql+asyncpg://postgres:@/approvals?host=/here"}
    worker.start(env)
    clock = Clock()
    service = supervised_postgres(MovedPostgres(), env, clients=(worker,))  # type: ignore[arg-type]
    supervisor = Supervisor([service], clock=clock)
    caplog.set_level(logging.INFO, logger="approvals.dev")
    try:
        supervisor.check()
        assert "postgres (pid 4242) stopped running" in caplog.text
        clock.now += 1
        supervisor.check()

        assert env["DATABASE_URL"].endswith("host=/elsewhere")
        assert not worker.running(), "the worker kept the old address"
    finally:
        worker.stop(timeout=5)
