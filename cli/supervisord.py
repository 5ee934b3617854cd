"""The processes of ``approvals dev``, kept up by supervisord.

supervisord (http://supervisord.org) does the supervising: it starts each program,
writes its output to ``.data/logs/<name>.log``, restarts it when it dies, and on
SIGTERM stops every program in the reverse order of their ``priority``, each given
``stopwaitsecs`` before SIGKILL. This module only writes its configuration, starts
it, and talks to it over its XML-RPC socket.

Restarts: a program that dies within :data:`START_SECONDS` of its start is started
again after 1 s, then 2 s, 3 s … (supervisord's ``BACKOFF``); after
:data:`START_RETRIES` such deaths in a row it is given up (``FATAL``: start it again
with ``supervisorctl -c .data/run/supervisord.conf start NAME``). A program that
stayed up longer is restarted at once, and its count starts again.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

START_SECONDS = 60
"""A program must stay up this long to count as started (its back-off starts again)."""
START_RETRIES = 30
"""Deaths within :data:`START_SECONDS` in a row before supervisord gives a program up."""
STOP_WAIT_SECONDS = 20
SOCKET_PATH_MAX = 100  # a Unix socket's path holds 107 bytes on Linux

# supervisord's states (supervisor.states.ProcessStates) that mean "it died".
DIED = frozenset({"BACKOFF", "FATAL", "EXITED"})


@dataclass(frozen=True)
class Program:
    """One process supervisord keeps up.

    Args:
        name: what the logs and ``supervisorctl`` call it; its log is ``<name>.log``.
        argv: the command line.
        priority: lower starts first and stops last.
        autostart: started with supervisord; otherwise by :meth:`Supervisord.start_all`.
        pid_file: written by the process itself (see :func:`cli.children.exec_with_pid_file`)
            before it becomes ``argv``; None: no pid file.
        stop_signal: ``TERM``, or ``INT`` (PostgreSQL's fast shutdown).
        stop_as_group: send the stop signal to its process group, not only to it.
        user: run it as this user (supervisord must run as root).
        env: variables added to supervisord's environment for this program.
    """

    name: str
    argv: Sequence[str]
    priority: int
    autostart: bool = False
    pid_file: Path | None = None
    stop_signal: str = "TERM"
    stop_as_group: bool = True
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        if self.pid_file is None:
            return list(self.argv)
        return [sys.executable, "-m", "cli.children", str(self.pid_file), "--", *self.argv]


def _value(value: object) -> str:
    """A value as supervisord reads it: booleans spelt out, a literal ``%`` as ``%%``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("%", "%%")


def _environment(env: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in sorted(env.items()))


@dataclass(frozen=True)
class Config:
    """Where supervisord keeps its socket, its own log, and the programs' logs."""

    run_dir: Path
    log_dir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def file(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        path = self.run_dir / "supervisord.sock"
        if len(str(path)) < SOCKET_PATH_MAX:
            return path
        # A deep data directory: the socket goes where its path fits.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"approvals-dev-{digest}.sock"

    @property
    def pid_file(self) -> Path:
        # Not ``<name>.pid``: run/*.pid are the programs' own (bench/deployed.py reads them).
        return self.run_dir / "supervisord.pidfile"

    def render(self, programs: Sequence[Program], *, cwd: Path) -> str:
        """The configuration file's text."""
        auth = {"username": "dev", "password": self.password}
        sections: dict[str, dict[str, object]] = {
            "unix_http_server": {"file": self.socket, "chmod": "0700", **auth},
            "supervisord": {
                "nodaemon": True,
                "logfile": self.log_dir / "supervisord.log",
                "logfile_maxbytes": "10MB",
                "logfile_backups": 1,
                "pidfile": self.pid_file,
                "childlogdir": self.log_dir,
                "directory": cwd,
                **({"user": "root"} if os.geteuid() == 0 else {}),
            },
            "rpcinterface:supervisor": {
                "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
            },
            "supervisorctl": {"serverurl": f"unix://{self.socket}", **auth},
        }
        for p in programs:
            sections[f"program:{p.name}"] = {
                "command": shlex.join(p.command()),
                "directory": cwd,
                "priority": p.priority,
                "autostart": p.autostart,
                "autorestart": True,
                "startsecs": START_SECONDS,
                "startretries": START_RETRIES,
                "stopsignal": p.stop_signal,
                "stopwaitsecs": STOP_WAIT_SECONDS,
                "stopasgroup": p.stop_as_group,
                "killasgroup": True,
                "redirect_stderr": True,
                "stdout_logfile": self.log_dir / f"{p.name}.log",
                "stdout_logfile_maxbytes": 0,
                **({"user": p.user} if p.user else {}),
                **({"environment": _environment(p.env)} if p.env else {}),
            }
        lines = ["; Written by `approvals dev` at each start: edits are lost."]
        for name, values in sections.items():
            lines += ["", f"[{name}]", *(f"{k}={_value(v)}" for k, v in values.items())]
        return "\n".join(lines) + "\n"

    def write(self, programs: Sequence[Program], *, cwd: Path) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.file.write_text(self.render(programs, cwd=cwd))
        self.file.chmod(0o600)  # it holds the socket's password


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: supervisord gets SIGTERM (and stops its programs) if ``approvals dev`` dies."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class Supervisord:
    """A running supervisord, started on ``config`` in a session of its own.

    Its session is its own so that a Ctrl-C in the terminal reaches ``approvals dev``
    alone, which then asks supervisord to stop everything in order.
    """

    def __init__(
        self, config: Config, env: Mapping[str, str], stdout: IO[bytes] | None = None
    ) -> None:
        self.config = config
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(config.file)],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    @property
    def _rpc(self) -> xmlrpc.client.ServerProxy:
        # A new connection per call: the transport's connection is unusable after an error.
        return xmlrpc.client.ServerProxy("http://localhost", transport=_transport(self.config))

    def running(self) -> bool:
        return self.process.poll() is None

    def states(self) -> dict[str, dict[str, Any]]:
        """Each program's state as supervisord reports it (``statename``, ``pid``, ...)."""
        infos = cast(list[dict[str, Any]], self._rpc.supervisor.getAllProcessInfo())
        return {info["name"]: info for info in infos}

    def answers(self) -> bool:
        try:
            self._rpc.supervisor.getState()
        except (OSError, xmlrpc.client.Error):
            return False
        return True

    def start_all(self) -> None:
        """Start every program not started yet (in the order of their priority)."""
        self._rpc.supervisor.startAllProcesses(False)

    def stop(self, timeout: float) -> int | None:
        """Ask supervisord to stop everything and exit; SIGKILL its group past ``timeout``."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)


def _transport(config: Config) -> xmlrpc.client.Transport:
    from supervisor.xmlrpc import SupervisorTransport

    return cast(
        xmlrpc.client.Transport,
        SupervisorTransport("dev", config.password, f"unix://{config.socket}"),
    )
