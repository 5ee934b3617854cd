"""supervisord as `approvals dev` configures it, on real (tiny) programs.

What the dev stack relies on: a program that dies is started again with a growing
back-off, its output goes to a log of its own (appended across restarts), it writes
its pid file, and SIGTERM stops every program in the reverse order of their start.
"""

from __future__ import annotations

import itertools
import re
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from cli.children import PidRecord
from cli.supervisord import START_RETRIES, START_SECONDS, Config, Program, Supervisord

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
CRASH = [sys.executable, "-c", "import sys; print('boom: no database', flush=True); sys.exit(3)"]


def test_every_program_restarts_with_back_off_logs_apart_and_stops_as_a_group(
    tmp_path: Path,
) -> None:
    config = Config(run_dir=tmp_path / "run", log_dir=tmp_path / "logs", password="pw")
    text = config.render(
        [
            Program("postgres", ["postgres", "-D", "/data/50%"], priority=10, autostart=True),
            Program("api", ["approvals", "api"], priority=60, env={"X": "a b"}),
        ],
        cwd=tmp_path,
    )
    api = text.split("[program:api]")[1]
    for line in (
        "autorestart=true",
        f"startsecs={START_SECONDS}",
        f"startretries={START_RETRIES}",
        "autostart=false",
        "priority=60",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={tmp_path / 'logs' / 'api.log'}",
        'environment=X="a b"',
    ):
        assert line in api.splitlines(), line
    assert "command=postgres -D /data/50%%" in text, "supervisord expands a bare %"
    assert "password=pw" in text


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[Config, Supervisord]]:
    config = Config(run_dir=tmp_path / "run", log_dir=tmp_path / "logs")
    config.write(
        [
            Program("first", SLEEPER, priority=10, autostart=True, pid_file=tmp_path / "first.pid"),
            Program("crashing", CRASH, priority=20, autostart=True),
            Program("last", SLEEPER, priority=30, autostart=True, pid_file=tmp_path / "last.pid"),
        ],
        cwd=tmp_path,
    )
    output = tmp_path / "supervisord.out"
    with output.open("wb") as out:
        supervisord = Supervisord(config, {"PATH": "/usr/bin:/bin"}, stdout=out)
    try:
        yield config, supervisord
    finally:
        supervisord.stop(60)


def _spawn_times(log: str, name: str) -> list[datetime]:
    return [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        for stamp in re.findall(rf"^(\S+ \S+) INFO spawned: '{name}'", log, re.MULTILINE)
    ]


def test_a_crashing_program_is_restarted_ever_later_and_sigterm_stops_all_in_order(
    supervised: tuple[Config, Supervisord], tmp_path: Path
) -> None:
    _config, supervisord = supervised
    main_log = tmp_path / "logs" / "supervisord.log"
    main_log.parent.mkdir(exist_ok=True)
    main_log.touch()
    deadline = time.monotonic() + 60
    while len(_spawn_times(main_log.read_text(), "crashing")) < 4:
        assert time.monotonic() < deadline, main_log.read_text()
        time.sleep(0.2)

    spawns = _spawn_times(main_log.read_text(), "crashing")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(spawns)]
    assert gaps == sorted(gaps) and gaps[-1] - gaps[0] >= 1.5, f"no back-off: {gaps}"
    assert "exited: crashing (exit status 3; not expected)" in main_log.read_text()
    crashing_log = (tmp_path / "logs" / "crashing.log").read_text()
    assert crashing_log.count("boom: no database") >= 3, "a restart appends to the log"
    assert (tmp_path / "logs" / "first.log").read_text().startswith("up")

    pids = {}
    for name in ("first", "last"):
        record = PidRecord.read(tmp_path / f"{name}.pid")
        assert record is not None and record.is_running(), name
        assert record.cmdline == tuple(SLEEPER), "the pid file names the program itself"
        pids[name] = record.pid
    assert supervisord.states()["first"]["pid"] == pids["first"]

    # killed: started again
    psutil.Process(pids["first"]).send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (record := PidRecord.read(tmp_path / "first.pid")) is None or record.pid == pids["first"]:
        assert time.monotonic() < deadline, main_log.read_text()
        time.sleep(0.2)
    assert record.is_running()
    pids["first"] = record.pid

    assert supervisord.stop(60) == 0
    said = main_log.read_text()
    assert said.index("stopped: last") < said.index("stopped: first"), said
    for name, pid in pids.items():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", name
