"""How `approvals dev` starts Temporal and PostgreSQL, and recovers after a crash."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from cli.devstack import DevPaths, temporal_command, temporal_host_port
from cli.embedded_pg import (
    EmbeddedPostgres,
    asyncpg_url,
    clear_stale_lock,
    is_our_postmaster,
    postmaster_pid,
)
from cli.errors import CliError
from common import search_attributes
from common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPORAL_TYPES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "DOUBLE": "Double",
    "BOOL": "Bool",
}


def expected_attributes() -> set[str]:
    return {
        f"{key.name}={TEMPORAL_TYPES[key.indexed_value_type.name]}" for key in search_attributes.ALL
    }


def test_temporal_dev_server_gets_every_search_attribute_port_and_state_file(
    tmp_path: Path,
) -> None:
    settings = Settings(
        TEMPORAL_ADDRESS="localhost:7243",
        TEMPORAL_NAMESPACE="approvals-dev",
        APPROVALS_TEMPORAL_UI_PORT=8243,
    )
    cmd = temporal_command(Path("/bin/temporal"), settings, DevPaths(tmp_path))

    assert cmd[:3] == ["/bin/temporal", "server", "start-dev"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--db-filename"] == str(tmp_path / "temporal.db")
    assert flags["--port"] == "7243"
    assert flags["--ui-port"] == "8243"
    assert flags["--namespace"] == "approvals-dev"
    assert cmd[cmd.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:8000/codec"
    registered = {cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--search-attribute"}
    assert registered == expected_attributes()


def test_compose_registers_the_same_search_attributes_as_the_dev_server() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    script = "\n".join(compose["services"]["temporal-setup"]["command"])
    words = script.replace("\\", " ").replace(";", " ").split()
    listed = {word for word in words if "=" in word and "$" not in word}
    assert listed == expected_attributes()


@pytest.mark.parametrize(
    ("address", "port"), [("localhost:7233", 7233), ("127.0.0.1:7300", 7300), ("[::1]:7301", 7301)]
)
def test_local_temporal_address_gives_the_dev_server_port(address: str, port: int) -> None:
    assert temporal_host_port(address)[1] == port


@pytest.mark.parametrize("address", ["temporal.example.com:7233", "localhost", "localhost:x"])
def test_remote_or_malformed_temporal_address_is_refused(address: str) -> None:
    with pytest.raises(CliError, match="TEMPORAL_ADDRESS"):
        temporal_host_port(address)


def test_database_url_is_asyncpg_over_the_unix_socket() -> None:
    uri = "postgresql://postgres:@/postgres?host=/work/main/.data/pg"
    assert (
        asyncpg_url(uri, "approvals")
        == "postgresql+asyncpg://postgres:@/approvals?host=/work/main/.data/pg"
    )


def test_lock_file_naming_a_live_foreign_process_is_removed(tmp_path: Path) -> None:
    # After a reboot the old postmaster's pid may belong to any program (here: pytest).
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")

    note = clear_stale_lock(tmp_path)

    assert not (tmp_path / "postmaster.pid").exists()
    assert note is not None and "another program" in note


def _prepare_in_a_new_process(pgdata: Path) -> list[str]:
    """What `approvals dev` does before supervisord starts PostgreSQL: its command line."""
    code = (
        "import json, sys; from pathlib import Path; from cli.embedded_pg import EmbeddedPostgres; "
        "pg = EmbeddedPostgres(Path(sys.argv[1])); pg.prepare(); print(json.dumps(pg.argv()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(pgdata)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def _serve(pg: EmbeddedPostgres, argv: list[str]) -> subprocess.Popen[bytes]:
    """PostgreSQL in the foreground, as supervisord runs it (as pgserver's user when root)."""
    server = subprocess.Popen(
        argv, user=pg.user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    asyncio.run(pg.wait_ready(lambda: server.poll() is None, give_up_after=60))
    return server


async def _current_database(url: str) -> str:
    from sqlalchemy import text

    from db.engine import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text("select current_database()"))).scalar_one())
    finally:
        await engine.dispose()


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still running")


def test_embedded_postgres_starts_again_after_kill_9_and_a_recycled_lock_pid(
    pg_tmp_path: Path,
) -> None:
    pgdata = pg_tmp_path / "pg"
    pg = EmbeddedPostgres(pgdata)
    argv = _prepare_in_a_new_process(pgdata)
    pg.prepare()
    url = pg.url()
    assert url.startswith("postgresql+asyncpg://postgres:@/approvals?host=")
    server = _serve(pg, argv)
    try:
        assert asyncio.run(_current_database(url)) == "approvals"
        first = server.pid

        # kill -9 of PostgreSQL, and its pid recycled by another program.
        server.kill()
        server.wait()
        _wait_gone(first)
        lock = pgdata / "postmaster.pid"
        lines = lock.read_text().splitlines()
        lock.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")

        assert _prepare_in_a_new_process(pgdata) == argv
        server = _serve(pg, argv)
        assert postmaster_pid(pgdata) == server.pid != first
        assert asyncio.run(_current_database(url)) == "approvals"

        # A server of ours left running by a crashed run is stopped by the next start.
        _prepare_in_a_new_process(pgdata)
        server.wait(30)
    finally:
        pg.stop(timeout=10)
    assert not lock.exists()


def test_database_url_round_trips_an_awkward_socket_dir() -> None:
    from sqlalchemy.engine import make_url

    url = make_url(asyncpg_url("postgresql://postgres:@/postgres?host=/tmp/a%20b%26c", "approvals"))
    assert url.drivername == "postgresql+asyncpg"
    assert url.database == "approvals"
    assert url.query["host"] == "/tmp/a b&c"


def test_a_program_dead_during_start_up_is_reported_with_its_last_log_lines(
    tmp_path: Path,
) -> None:
    from cli.devstack import died_during_start

    log = tmp_path / "worker.log"
    log.write_text("connecting\nboom: no database\n")

    message = str(died_during_start("worker", {"spawnerr": "Bad exit code 3"}, log))

    assert message.startswith("worker died during start-up (Bad exit code 3); last lines of ")
    assert message.splitlines()[-2:] == ["    connecting", "    boom: no database"]


def test_lock_file_of_a_crashed_initdb_is_removed(tmp_path: Path) -> None:
    # initdb's bootstrap backend writes its pid negated; psutil refuses negative pids.
    (tmp_path / "postmaster.pid").write_text(f"-{os.getpid()}\n{tmp_path}\n")

    assert not is_our_postmaster(-os.getpid(), tmp_path)
    assert clear_stale_lock(tmp_path) is not None
    assert not (tmp_path / "postmaster.pid").exists()
