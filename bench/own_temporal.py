"""A Temporal dev server of the floor's own: the floor with nothing else on its server.

On the stack's server the floor shares Temporal with the project (its histories, the
task queues the worker and the deliverer keep polling), so the floor there is what
Temporal gives the project as deployed. :func:`own_temporal_server` starts a second dev
server for the floor alone, with the command line ``approvals dev`` gives the stack's
(:func:`cli.devstack.temporal_command`: the same on-disk SQLite store through
``--db-filename``, namespace, search attributes, dynamic config and log level), on free
ports, in a temporary directory of its own. The benchmark starts one for each
measurement of the own floor (each round) and stops it right after, so it never runs
while the project or the shared floor is measured, and its start-up is not timed.

It runs in a session of its own, so a Ctrl-C at the terminal reaches the benchmark,
which stops it; on exit (also on an error, Ctrl-C or SIGTERM, during start-up too) it is
stopped (SIGTERM to its process group, SIGKILL after 20 s) and its directory deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from bench.cpu import process_cpu_seconds
from bench.deployed import free_port
from bench.stack import BenchError, CpuProbe
from cli.children import stop_process_group
from cli.devstack import DevPaths, find_temporal, temporal_command
from cli.errors import CliError
from common.settings import Settings
from common.temporal import connect

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
POLL = 0.25
DIR_PREFIX = "approvals-bench-floor-"
OWN_TEMPORAL = "temporal (floor's own)"
"""Its row in the CPU table; the stack's server is ``temporal``."""


@dataclass
class OwnTemporal:
    """The floor's own server: a client on it, its process, and its on-disk store."""

    client: Client
    pid: int
    address: str
    db_file: Path

    def with_cpu(self, probe: CpuProbe) -> CpuProbe:
        """``probe``'s readings plus this server's CPU seconds, right after the stack's Temporal."""

        def read() -> Mapping[str, float | None]:
            mine = process_cpu_seconds(self.pid)
            readings: dict[str, float | None] = {}
            for name, value in probe().items():
                readings[name] = value
                if name == "temporal":
                    readings[OWN_TEMPORAL] = mine
            readings.setdefault(OWN_TEMPORAL, mine)
            return readings

        return read


def own_settings(namespace: str) -> Settings:
    """Where the floor's own server listens: free ports, the stack's namespace."""
    values: dict[str, Any] = {
        "TEMPORAL_ADDRESS": f"localhost:{free_port()}",
        "TEMPORAL_NAMESPACE": namespace,
        "APPROVALS_TEMPORAL_UI_PORT": free_port(),
    }
    return Settings(**values)


class _Server:
    """The floor's own ``temporal server start-dev``: a process group with a log file."""

    def __init__(self, argv: list[str], log_file: Path) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file = log_file
        with log_file.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
                start_new_session=True,
            )
        self.pid = self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def stop(self, *, timeout: float) -> None:
        if self.running():
            stop_process_group(self.pid, timeout=timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1)


async def _connect_when_ready(settings: Settings, child: _Server) -> Client:
    """A client once the server answers for its namespace; BenchError if it exits first."""
    while True:
        if not child.running():
            raise BenchError(
                f"the floor's own Temporal server exited with code {child.process.poll()}:\n"
                + "\n".join(child.tail())
            )
        try:
            client = await connect(settings, service="bench-floor")
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace),
                timeout=timedelta(seconds=2),
            )
        except Exception:  # not up yet: nothing listens, or the namespace is not there yet
            await asyncio.sleep(POLL)
            continue
        return client


@contextlib.asynccontextmanager
async def own_temporal_server(*, namespace: str = "default") -> AsyncIterator[OwnTemporal]:
    """A Temporal dev server started for the floor alone; stopped and deleted on exit.

    Args:
        namespace: the namespace it serves (the stack's, so the floor runs the same way).

    Raises:
        BenchError: the ``temporal`` binary is missing, or the server did not come up.
    """
    root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    paths = DevPaths(root)
    settings = own_settings(namespace)
    try:
        binary = find_temporal()
    except CliError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise BenchError(str(exc)) from None
    child = _Server(temporal_command(binary, settings, paths), paths.logs / "temporal.log")
    try:
        try:
            async with asyncio.timeout(START_TIMEOUT):
                client = await _connect_when_ready(settings, child)
        except TimeoutError:
            raise BenchError(
                f"the floor's own Temporal server was not up within {START_TIMEOUT:.0f} s:\n"
                + "\n".join(child.tail())
            ) from None
        yield OwnTemporal(client, child.pid, settings.temporal_address, paths.temporal_db)
    finally:
        # Blocking, but only at the end: nothing is measured any more.
        child.stop(timeout=STOP_TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
