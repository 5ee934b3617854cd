"""Keep the processes of ``approvals dev`` up: restart what dies, with exponential back-off.

A supervised process that ends on its own is started again after 1 s, then 2 s,
4 s … up to 30 s between attempts; once it has stayed up for ``stable_after``
seconds the next crash starts from 1 s again. Every death, restart and recovery is
logged (the terminal and ``.data/logs/dev.log``) and noted in the process's own log
file, so that its log reads as one story across restarts.

The loop lives in the caller (``approvals dev``): :meth:`Supervisor.check` is one
look at every process, called every half second. It never blocks for long: a
restart is a ``Popen`` (or, for PostgreSQL, ``pg_ctl start -w``), and readiness
checks have short timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("approvals.dev")

INITIAL_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0
READY_CHECK_INTERVAL = 1.0


@dataclass
class Backoff:
    """Delay before the next restart: doubles per crash, capped; resets after a stable run."""

    initial: float = INITIAL_DELAY
    cap: float = MAX_DELAY
    stable_after: float = STABLE_AFTER
    consecutive: int = 0

    def delay_after(self, uptime: float) -> float:
        """The delay before restarting a process that died after ``uptime`` seconds up."""
        if uptime >= self.stable_after:
            self.consecutive = 0
        delay = min(self.cap, self.initial * 2**self.consecutive)
        self.consecutive += 1
        return delay


def _nothing(_: str) -> None:
    return None


@dataclass
class Supervised:
    """One process the supervisor keeps up, seen through a few callables.

    Args:
        name: what the messages call it (``worker``, ``api``, ``temporal``, ``postgres``).
        start: starts it again (raises if it cannot).
        alive: True while it runs.
        how_it_ended: ``was killed by SIGKILL`` / ``exited with code 3``.
        ready: True once it serves again after a restart (short timeouts: called in the loop).
        note: appends a line to the process's own log file.
        last_lines: the end of its log, shown when it exited by itself.
    """

    name: str
    start: Callable[[], None]
    alive: Callable[[], bool]
    how_it_ended: Callable[[], str]
    ready: Callable[[], bool]
    note: Callable[[str], None] = _nothing
    last_lines: Callable[[], list[str]] = list
    backoff: Backoff = field(default_factory=Backoff)
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    restart_at: float | None = None
    down_since: float | None = None
    next_ready_check: float = 0.0

    @property
    def waiting_to_restart(self) -> bool:
        return self.restart_at is not None


@dataclass
class Supervisor:
    """Restarts the processes it watches when they die; see the module docstring."""

    services: list[Supervised]
    clock: Callable[[], float] = time.monotonic

    def check(self) -> None:
        """One look at every process: notice deaths, restart when due, report recoveries."""
        for service in self.services:
            now = self.clock()
            if service.restart_at is not None:
                if now >= service.restart_at:
                    self._restart(service, now)
            elif not service.alive():
                self._died(service, now)
            elif service.down_since is not None and now >= service.next_ready_check:
                self._check_ready(service, now)

    def _died(self, service: Supervised, now: float) -> None:
        uptime = now - service.started_at
        how = service.how_it_ended()
        self._schedule(service, now, uptime, f"{service.name} {how} after {uptime:.0f} s up")
        if "exited" in how:
            # It ended by itself: its last words usually say why.
            for line in service.last_lines():
                log.warning("  %s| %s", service.name, line)

    def _schedule(self, service: Supervised, now: float, uptime: float, what: str) -> None:
        delay = service.backoff.delay_after(uptime)
        service.restarts += 1
        service.restart_at = now + delay
        if service.down_since is None:
            service.down_since = now
        message = f"{what}; restart #{service.restarts} in {delay:.0f} s"
        log.warning(message)
        service.note(f"approvals dev: {message}")

    def _restart(self, service: Supervised, now: float) -> None:
        service.restart_at = None
        service.started_at = now
        try:
            service.start()
        except Exception as exc:
            self._schedule(
                service, self.clock(), 0.0, f"{service.name} did not start again ({exc})"
            )
            return
        message = f"{service.name} restarted (restart #{service.restarts})"
        log.warning(message)
        service.note(f"approvals dev: {message}")
        service.next_ready_check = self.clock()

    def _check_ready(self, service: Supervised, now: float) -> None:
        service.next_ready_check = now + READY_CHECK_INTERVAL
        if not service.ready():
            return
        assert service.down_since is not None
        down = self.clock() - service.down_since
        service.down_since = None
        log.warning("%s is back: it serves again %.1f s after it went down", service.name, down)
