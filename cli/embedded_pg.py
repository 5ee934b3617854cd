"""The embedded PostgreSQL of ``approvals dev`` (pgserver), kept under ``.data/pg``.

pgserver starts the server detached (``pg_ctl``), so it outlives a crashed
supervisor. Its lock file ``postmaster.pid`` is therefore checked before every
start: a server still running on our data directory is reused (and stopped on
exit as usual); a lock file whose pid is gone, or now belongs to another
program, is removed so that PostgreSQL can start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil

from cli.errors import CliError

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = logging.getLogger("approvals.dev")

DATABASE = "approvals"


def asyncpg_url(uri: str, database: str) -> str:
    """``postgresql://user:@/db?host=/sock`` -> the URL of ``database`` for SQLAlchemy+asyncpg.

    Rendered by hand so that the socket directory stays readable (``host=/a/b``, not
    ``host=%2Fa%2Fb``); characters that would end the value are still escaped.
    """
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    host = url.query.get("host")
    if not isinstance(host, str):
        rendered = url.set(drivername="postgresql+asyncpg", database=database)
        return rendered.render_as_string(hide_password=False)
    user = quote(url.username or "postgres", safe="")
    password = quote(url.password or "", safe="")
    name = quote(database, safe="")
    return f"postgresql+asyncpg://{user}:{password}@/{name}?host={quote(host, safe='/')}"


def lock_pid(lock: Path) -> int | None:
    """The pid on the first line of a PostgreSQL lock file, or None if unreadable."""
    try:
        return int(lock.read_text().splitlines()[0].strip())
    except (OSError, IndexError, ValueError):
        return None


def _socket_dir(lock: Path) -> list[Path]:
    """The socket directory named on line 5 of ``postmaster.pid`` (pgserver may move it)."""
    try:
        line = lock.read_text().splitlines()[4].strip()
    except (OSError, IndexError):
        return []
    return [Path(line)] if line.startswith("/") else []


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid in ``postmaster.pid``, or None if there is no readable lock file."""
    return lock_pid(pgdata / "postmaster.pid")


def is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """True if ``pid`` is a live (not zombie) postgres process serving ``pgdata``."""
    if pid <= 0:
        # initdb's bootstrap backend writes its pid negated; after it crashed, that is stale.
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except psutil.Error:
        return False
    if not cmdline or Path(cmdline[0]).name != "postgres":
        return False
    resolved = str(pgdata.resolve())
    return any(part == resolved or part.endswith(resolved) for part in cmdline)


def clear_stale_lock(pgdata: Path) -> str | None:
    """Remove PostgreSQL's lock files if no server of ours holds them; returns what was done.

    Besides ``postmaster.pid`` there is one lock per socket (``.s.PGSQL.<port>.lock``):
    PostgreSQL refuses to start while either names a pid that is still alive, which
    after a ``kill -9`` can be the dead server's unreaped zombie or, after a
    reboot, any other program.
    """
    lock = pgdata / "postmaster.pid"
    if not lock.exists():
        return None
    pid = lock_pid(lock)
    if pid is not None and is_our_postmaster(pid, pgdata):
        return f"reusing PostgreSQL still running from an earlier run (pid {pid})"
    socket_dirs = {pgdata, *_socket_dir(lock)}
    for stale in [lock, *(p for d in socket_dirs for p in d.glob(".s.PGSQL.*.lock"))]:
        stale.unlink(missing_ok=True)
    if pid is not None and psutil.pid_exists(pid):
        why = f"pid {pid} now belongs to another program or is a dead server's zombie"
    else:
        why = f"pid {pid} is not running"
    return f"removed stale PostgreSQL lock file {lock} ({why})"


class EmbeddedPostgres:
    """Start (or reuse) the server on ``pgdata`` and stop it on request."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server: PostgresServer | None = None

    def start(self) -> str:
        """Start the server, create the ``approvals`` database; returns its asyncpg URL."""
        import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        note = clear_stale_lock(self.pgdata)
        if note:
            log.info(note)
        try:
            # cleanup_mode=None: pgserver's own atexit hook must not race our ordered shutdown.
            self.server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise CliError(
                f"embedded PostgreSQL did not start ({exc}); see {self.pgdata / 'log'}"
            ) from exc
        return self._ready_url()

    def _ready_url(self) -> str:
        assert self.server is not None
        admin_uri = self.server.get_uri()
        asyncio.run(_ensure_database(admin_uri, DATABASE))
        return asyncpg_url(admin_uri, DATABASE)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid as of the last (re)start."""
        return self.server.get_pid() if self.server is not None else None

    def alive(self) -> bool:
        """True while the server started (or reused) by :meth:`start` runs."""
        pid = self.pid
        return pid is not None and is_our_postmaster(pid, self.pgdata)

    def restart(self) -> str:
        """Start the server again after it died; returns its URL (normally the same).

        PostgreSQL recovers from a crash by replaying its write-ahead log on start;
        the lock files of the dead server are cleared first. While a killed server's
        backends are still attached to its shared memory, PostgreSQL refuses to start
        (``pre-existing shared memory block is still in use``) and this raises: the
        caller tries again later.
        """
        if self.server is None:
            return self.start()
        note = clear_stale_lock(self.pgdata)
        if note:
            log.info(note)
        server = self.server
        try:
            # pgserver keeps one handle per data directory and process: ask that handle to
            # do again what its first start did, under pgserver's machine-wide lock. As
            # root that includes giving the `pgserver` user access to the path again
            # (something may have tightened a parent directory's mode meanwhile).
            with type(server)._lock:
                server.ensure_pgdata_inited()
                server.ensure_postgres_running()
        except Exception as exc:
            raise CliError(
                f"embedded PostgreSQL did not start ({exc}); see {self.pgdata / 'log'}"
            ) from exc
        return self._ready_url()

    def stop(self, *, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), then SIGQUIT/SIGKILL if it hangs."""
        pid = postmaster_pid(self.pgdata)
        if pid is None or not is_our_postmaster(pid, self.pgdata):
            return
        log.info("stopping PostgreSQL (pid %s)", pid)
        proc = psutil.Process(pid)
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
            try:
                proc.wait(wait)
                return
            except psutil.TimeoutExpired:
                log.warning("PostgreSQL (pid %s) still running after signal %s", pid, sig.name)


async def _ensure_database(admin_uri: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_uri)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be bound as parameters; ``name`` is our own constant.
            await conn.execute(f'CREATE DATABASE "{name}"')
            log.info("created database %s", name)
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_database(prefix: str = "approvals") -> Iterator[str]:
    """A fresh, migrated database on an embedded PostgreSQL in a temporary directory.

    For tests and benchmarks: the server is stopped and its directory deleted on
    exit. Yields the SQLAlchemy asyncpg URL.
    """
    import pgserver

    from db.migrate import upgrade

    data = Path(tempfile.mkdtemp(prefix=f"{prefix}-pg-"))
    try:
        server = pgserver.get_server(data, cleanup_mode="stop")
        try:
            name = f"{prefix}_{uuid.uuid4().hex[:10]}"
            server.psql(f"CREATE DATABASE {name};")
            url = asyncpg_url(server.get_uri(), name)
            upgrade(url)
            yield url
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(data, ignore_errors=True)
