"""Pid files of ``approvals dev``'s processes, and recovery after a crash.

Each supervised process writes ``.data/run/<name>.pid`` itself as it starts
(``python -m cli.children PIDFILE -- COMMAND...`` writes it, then becomes COMMAND
with the same pid). A pid file records the process's start time as well, so that
after a crash a recycled pid is never mistaken for one of ours.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from cli.errors import CliError

log = logging.getLogger("approvals.dev")

# psutil's create_time has a resolution of one clock tick (10 ms on Linux).
_START_TIME_TOLERANCE = 0.05


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: enough to recognise the very same process later."""

    pid: int
    create_time: float
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> PidRecord:
        proc = psutil.Process(pid)
        try:
            cmdline = tuple(proc.cmdline())
        except psutil.Error:  # a zombie, or not ours to read: the start time is what counts
            cmdline = ()
        return cls(pid=pid, create_time=proc.create_time(), cmdline=cmdline)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"pid": self.pid, "create_time": self.create_time, "cmdline": list(self.cmdline)}
            )
        )
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in ``path``, or None when it is missing or unreadable."""
        try:
            data = json.loads(path.read_text())
            return cls(
                pid=int(data["pid"]),
                create_time=float(data["create_time"]),
                cmdline=tuple(str(part) for part in data.get("cmdline", [])),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def is_running(self) -> bool:
        """True only if this pid is alive AND is the process that wrote the record."""
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(proc.create_time() - self.create_time) < _START_TIME_TOLERANCE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False


def stop_process_group(pid: int, *, timeout: float) -> None:
    """SIGTERM the group led by ``pid``, wait up to ``timeout`` s, then SIGKILL."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    _signal_group(pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        log.warning("pid %s did not stop within %.0f s; killing it", pid, timeout)
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise CliError(
            f"not allowed to stop pid {pid}; stop it yourself (`kill {pid}`) and try again"
        ) from exc
    except OSError:
        # Not a group leader (should not happen for our children): signal the process.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def clear_stale_pid_file(path: Path, *, timeout: float = 15.0) -> str | None:
    """Deal with a pid file left by an earlier run; returns what was done, if anything.

    * unreadable, or its process is gone (or the pid now belongs to another
      program): the file is removed;
    * its process is still running (a run killed with ``kill -9`` leaves its
      children behind): that process is stopped, then the file is removed.
    """
    if not path.exists():
        return None
    record = PidRecord.read(path)
    name = path.stem
    if record is None:
        path.unlink(missing_ok=True)
        return f"removed unreadable pid file {path}"
    if not record.is_running():
        path.unlink(missing_ok=True)
        return f"removed stale pid file {path} ({name}, pid {record.pid}, is not running)"
    log.warning("%s from an earlier run is still running (pid %s): stopping it", name, record.pid)
    stop_process_group(record.pid, timeout=timeout)
    if record.is_running():
        raise CliError(
            f"{name} from an earlier run (pid {record.pid}) would not stop: "
            f"run `kill -9 {record.pid}` and try again"
        )
    path.unlink(missing_ok=True)
    return f"stopped {name} left running by an earlier run (pid {record.pid})"


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str | None:
    """``pid N (command line)`` of the process listening on ``port``, when it can be seen."""
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return None
            try:
                cmd = " ".join(" ".join(psutil.Process(conn.pid).cmdline()).split()) or "?"
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd[:120]})"
    return None


def exec_with_pid_file(pid_file: Path, argv: Sequence[str]) -> None:
    """Write this process's :class:`PidRecord` to ``pid_file``, then become ``argv``.

    The pid and the start time survive ``exec``: the record names the program itself.
    """
    record = PidRecord.of(os.getpid())
    PidRecord(record.pid, record.create_time, tuple(argv)).write(pid_file)
    os.execvp(argv[0], list(argv))


def main(args: Sequence[str]) -> None:
    """``python -m cli.children PIDFILE -- COMMAND...``"""
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: python -m cli.children PIDFILE -- COMMAND...")
    exec_with_pid_file(Path(args[0]), args[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
