"""The deployed shape: ``approvals dev`` started for the benchmark, each part its own process.

The project runs as separate processes (API, worker, Temporal, PostgreSQL, mail
catcher, and whatever else ``approvals dev`` starts), so that is what
``make bench`` measures by default: one whole Python process for the API and the
worker would make the GIL the limit, an arrangement nobody deploys.

:func:`deployed_stack` starts ``approvals dev`` as a child, with its data
directory in a temporary directory and free ports (never 8000/7233: a developer's
``make dev`` keeps running), waits until its ``dev.env`` is written and
``/readyz`` answers 200, and then drives it over HTTP as ``--api-url`` does.
On exit (also on an error, Ctrl-C or SIGTERM) it sends ``approvals dev`` SIGINT,
as Ctrl-C in its terminal would, and waits for it to stop its children; should
that hang, it kills the supervisor and then every process named in the stack's
pid files, and PostgreSQL. The processes are never listed here: the stack's
``run/*.pid`` files say what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.cpu import process_cpu_seconds
from bench.stack import ROOT, BenchError, Stack, remote_stack

log = logging.getLogger("approvals.bench")

START_TIMEOUT = 240.0
STOP_TIMEOUT = 90.0
POLL = 0.25

# Tuning the caller may pass on to the stack (e.g. APPROVALS_DB_POOL_SIZE=20 make bench).
# Every other APPROVALS_* variable, and where the database and Temporal are, is the
# benchmark's to decide: a developer's SMTP server or webhooks never hear from it.
KEPT_PREFIXES = ("APPROVALS_WORKER_", "APPROVALS_DB_", "APPROVALS_RPC_")
DROPPED = ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE")

# Rows of the CPU table in this order; any other process of the stack comes after the worker.
_FIRST = ("api", "worker")
_LAST = ("temporal", "postgres", "mailcatcher", "dev")
_LABELS = {"dev": "approvals dev (supervisor)"}
BENCH_PROCESS = "bench (this process)"


def free_port() -> int:
    """A local TCP port nothing listens on now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_environment(data_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without what names another stack, plus a data directory and free ports."""
    env = {
        k: v
        for k, v in base.items()
        if k not in DROPPED and (not k.startswith("APPROVALS_") or k.startswith(KEPT_PREFIXES))
    }
    env.update(
        APPROVALS_DATA_DIR=str(data_dir),
        APPROVALS_API_HOST="127.0.0.1",
        APPROVALS_API_PORT=str(free_port()),
        APPROVALS_TEMPORAL_UI_PORT=str(free_port()),
        APPROVALS_MAILCATCHER_PORT=str(free_port()),
        TEMPORAL_ADDRESS=f"localhost:{free_port()}",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class LaunchedStack:
    """``approvals dev`` running for the benchmark, and where it keeps its state."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    api_url: str
    output: Path

    @property
    def env_file(self) -> Path:
        return self.data_dir / "dev.env"

    def pids(self) -> dict[str, int]:
        """The live processes of the stack by name, from its pid files and PostgreSQL's."""
        from cli.children import PidRecord
        from cli.embedded_pg import is_our_postmaster, postmaster_pid

        found: dict[str, int] = {}
        for pid_file in sorted((self.data_dir / "run").glob("*.pid")):
            record = PidRecord.read(pid_file)
            if record is not None and record.is_running():
                found[pid_file.stem] = record.pid
        pgdata = self.data_dir / "pg"
        postmaster = postmaster_pid(pgdata)
        if postmaster is not None and is_our_postmaster(postmaster, pgdata):
            found["postgres"] = postmaster
        rank = {name: i for i, name in enumerate((*_FIRST, "", *_LAST))}
        return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], rank[""]), item[0])))

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU seconds so far of each process of the stack, and of this one."""
        used: dict[str, float | None] = {}
        for name, pid in self.pids().items():
            # The supervisor's descendants are the other rows: count it alone.
            used[_LABELS.get(name, name)] = process_cpu_seconds(pid, descendants=name != "dev")
        used[BENCH_PROCESS] = process_cpu_seconds(os.getpid(), descendants=False)
        return used

    def description(self) -> str:
        parts = [_LABELS.get(name, name) for name in self.pids()]
        return f"separate processes: {', '.join(parts)}; API {self.api_url}"

    def said(self, lines: int = 30) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def launch(root: Path) -> LaunchedStack:
    """Start ``approvals dev`` on a data directory under ``root``; returns at once."""
    data_dir = root / "data"
    env = stack_environment(data_dir, os.environ)
    output = root / "approvals-dev.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            # Its own session: a Ctrl-C at the terminal reaches the benchmark, which
            # then stops the stack in order (and only once).
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{env['APPROVALS_API_PORT']}"
    return LaunchedStack(process, data_dir, api_url, output)


async def wait_until_ready(stack: LaunchedStack) -> None:
    """Until ``dev.env`` is written and ``/readyz`` answers 200; BenchError if it dies first."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=2, trust_env=False) as http:
        while True:
            code = stack.process.poll()
            if code is not None:
                raise BenchError(
                    f"`approvals dev` exited with code {code} before the stack was up:\n"
                    + stack.said()
                )
            if stack.env_file.exists():
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
            await asyncio.sleep(POLL)


def stop(stack: LaunchedStack, timeout: float = STOP_TIMEOUT) -> None:
    """SIGINT to ``approvals dev`` (it stops its children in order); kill what is left."""
    try:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGINT)
            stack.process.wait(timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        log.warning("`approvals dev` did not stop within %.0f s: killing the stack", timeout)
    finally:
        # Only does something when the supervisor did not finish its own shutdown.
        kill_leftovers(stack)


def kill_leftovers(stack: LaunchedStack) -> None:
    """Kill the supervisor, then whatever its pid files still name, then PostgreSQL."""
    from cli.children import clear_stale_pid_file
    from cli.embedded_pg import EmbeddedPostgres
    from cli.errors import CliError

    if stack.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.process.pid, signal.SIGKILL)
        stack.process.wait(10)
    for pid_file in sorted((stack.data_dir / "run").glob("*.pid")):
        try:
            note = clear_stale_pid_file(pid_file, timeout=10)
        except CliError as exc:
            log.error("%s", exc)
        else:
            if note and note.startswith("stopped"):
                log.warning("%s", note)
    EmbeddedPostgres(stack.data_dir / "pg").stop(timeout=10)


@contextlib.asynccontextmanager
async def deployed_stack(
    *, concurrency: int, request_timeout: float, connect_temporal: bool
) -> AsyncIterator[Stack]:
    """``approvals dev`` in a temporary directory, driven over HTTP; stopped and deleted on exit.

    Args:
        concurrency: requests in flight (the connection pool holds twice as many).
        request_timeout: seconds before one request counts as failed.
        connect_temporal: connect the stack's Temporal too (for the floor).
    """
    root = Path(tempfile.mkdtemp(prefix="approvals-bench-"))
    launched: LaunchedStack | None = None
    try:
        launched = launch(root)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await wait_until_ready(launched)
        except TimeoutError:
            raise BenchError(
                f"the stack was not up within {START_TIMEOUT:.0f} s; `approvals dev` said:\n"
                + launched.said()
            ) from None
        async with remote_stack(
            launched.api_url,
            token_file=launched.env_file,
            concurrency=concurrency,
            request_timeout=request_timeout,
            connect_temporal=connect_temporal,
        ) as stack:
            stack.description = launched.description()
            stack.worker_pid = launched.pids().get("worker")
            stack.cpu_probe = launched.cpu_seconds
            yield stack
    finally:
        if launched is not None:
            stop(launched)
        shutil.rmtree(root, ignore_errors=True)
