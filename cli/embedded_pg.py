"""The embedded PostgreSQL of ``approvals dev``, kept under ``.data/pg``.

pgserver ships the binaries; ``approvals dev`` creates the cluster and hands the
server (``postgres`` in the foreground) to supervisord, which restarts it if it
dies (it recovers from its write-ahead log). Its lock file ``postmaster.pid`` is
checked before the start: a lock file whose pid is gone, or now belongs to another
program, is removed so that PostgreSQL can start. A server of ours left running
by a crashed run is stopped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psutil

from cli.errors import CliError

log = logging.getLogger("approvals.dev")

DATABASE = "approvals"
SYSTEM_USER = "pgserver"  # pgserver's user for PostgreSQL when we are root


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
        return f"PostgreSQL of an earlier run is still running (pid {pid})"
    socket_dirs = {pgdata, *_socket_dir(lock)}
    for stale in [lock, *(p for d in socket_dirs for p in d.glob(".s.PGSQL.*.lock"))]:
        stale.unlink(missing_ok=True)
    if pid is not None and psutil.pid_exists(pid):
        why = f"pid {pid} now belongs to another program or is a dead server's zombie"
    else:
        why = f"pid {pid} is not running"
    return f"removed stale PostgreSQL lock file {lock} ({why})"


class EmbeddedPostgres:
    """PostgreSQL on ``pgdata``: initialised here, run in the foreground by supervisord.

    pgserver provides the binaries and, as root, the ``pgserver`` user that
    PostgreSQL runs as (it refuses to run as root).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._socket_dir: Path | None = None

    @property
    def user(self) -> str | None:
        """The system user PostgreSQL runs as: ``pgserver`` as root, else ourselves."""
        return SYSTEM_USER if os.geteuid() == 0 else None

    def prepare(self) -> None:
        """Create the cluster if there is none; clear what a crashed server left behind."""
        import pgserver
        from pgserver.postgres_server import PostgresServer
        from pgserver.utils import find_suitable_socket_dir

        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            self._let_user_in()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("creating the PostgreSQL cluster in %s", self.pgdata)
            try:
                pgserver.initdb(  # type: ignore[attr-defined]  # set by pgserver at import
                    ["--auth=trust", "--auth-local=trust", "--encoding=utf8", "-U", "postgres"],
                    pgdata=self.pgdata,
                    user=self.user,
                )
            except subprocess.CalledProcessError as exc:
                raise CliError(f"initdb failed in {self.pgdata}: {exc.stderr or exc}") from exc
        self.stop()  # a server of ours that a crashed run left behind: supervisord takes over
        note = clear_stale_lock(self.pgdata)
        if note:
            log.info(note)
        self._socket_dir = find_suitable_socket_dir(self.pgdata, PostgresServer.runtime_path)
        if self.user is not None and self._socket_dir != self.pgdata:
            self._socket_dir.chmod(0o777)

    def _let_user_in(self) -> None:
        """As root: the ``pgserver`` user must reach the data directory and the binaries."""
        import pwd
        import stat

        from pgserver.postgres_server import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        assert self.user is not None
        ensure_user_exists(self.user)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        user = pwd.getpwnam(self.user)
        os.chown(self.pgdata, user.pw_uid, user.pw_gid)

    @property
    def socket_dir(self) -> Path:
        assert self._socket_dir is not None, "prepare() first"
        return self._socket_dir

    def argv(self) -> list[str]:
        """The server in the foreground: Unix socket only, logging to its standard error."""
        from pgserver.postgres_server import POSTGRES_BIN_PATH

        return [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.pgdata),
            "-k",
            str(self.socket_dir),
            "-c",
            "listen_addresses=",
        ]

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy asyncpg URL of ``database``."""
        return asyncpg_url(f"postgresql://postgres:@/postgres?host={self.socket_dir}", database)

    async def wait_ready(self, alive: Callable[[], bool], give_up_after: float) -> None:
        """Wait until the server answers, then create our database if it is missing.

        Raises:
            CliError: when ``alive()`` turns false or ``give_up_after`` seconds pass first.
        """
        import asyncpg

        deadline = time.monotonic() + give_up_after
        while True:
            try:
                conn = await asyncpg.connect(
                    host=str(self.socket_dir), user="postgres", database="postgres", timeout=2
                )
                break
            except (OSError, asyncpg.PostgresError) as exc:
                if not alive() or time.monotonic() > deadline:
                    raise CliError(
                        f"PostgreSQL did not start ({exc}); see its log, logs/postgres.log"
                    ) from exc
                await asyncio.sleep(0.2)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                # Identifiers cannot be bound as parameters; ``DATABASE`` is our own constant.
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
                log.info("created database %s", DATABASE)
        finally:
            await conn.close()

    def stop(self, *, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT to the postmaster), then SIGQUIT/SIGKILL if it hangs.

        For what supervisord did not stop (it was killed itself).
        """
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
