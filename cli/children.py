"""Child processes of ``approvals dev``: start, watch, stop, and recover after a crash.

Each child runs in its own session (process group), so a Ctrl-C in the terminal
reaches only the supervisor, which then stops the children in a fixed order.
Each child has a pid file in ``.data/run/``; a pid file records the process's
start time as well, so that after a crash a recycled pid is never mistaken for
one of ours.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
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


class Child:
    """One supervised child process with its log file and pid file."""

    def __init__(self, name: str, argv: Sequence[str], *, run_dir: Path, log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(
        self, env: Mapping[str, str], *, cwd: Path | None = None, restart: bool = False
    ) -> None:
        """Start the process; ``restart`` appends to its log instead of starting a new one."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists() and not restart:
            # Keep the previous run's log beside the new one: it is what explains a crash.
            self.log_file.replace(self.log_file.with_suffix(".log.1"))
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        try:
            PidRecord.of(self.process.pid).write(self.pid_file)
        except psutil.NoSuchProcess:
            pass  # died at once; the supervisor reports it with the log's last lines
        log.info("started %s (pid %s), log: %s", self.name, self.process.pid, self.log_file)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        """None while running; the exit code once it has ended."""
        if self.process is None:
            return None
        return self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, timeout: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            log.info("stopping %s (pid %s)", self.name, self.process.pid)
            stop_process_group(self.process.pid, timeout=timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1)
        self.pid_file.unlink(missing_ok=True)

    def note(self, text: str) -> None:
        """Append a line of the supervisor's to this child's log (e.g. why it was restarted)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError), self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} {text}\n")

    def tail(self, lines: int = 20) -> list[str]:
        """The last ``lines`` lines of this child's log."""
        try:
            with self.log_file.open(encoding="utf-8", errors="replace") as fh:
                return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
        except OSError:
            return []


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
