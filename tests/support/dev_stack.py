"""A whole ``approvals dev`` stack as a user starts it: a real process tree.

``start_dev_stack`` runs ``approvals dev`` on free ports and a data directory of its
own (embedded PostgreSQL, the Temporal dev server, mail catcher, worker, deliverer,
API as the supervisor's children) until the stack says it is up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cli.children import PidRecord
from tests.support.paths import ROOT

START_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    data: Path
    api: str
    tokens: dict[str, str]
    output: Path

    def pid_of(self, child: str, timeout: float = 30.0) -> int:
        """The pid of ``child`` once it runs (a restarted child writes its pid file as it
        starts, a moment after supervisord said it spawned it)."""
        deadline = time.monotonic() + timeout
        while True:
            record = PidRecord.read(self.data / "run" / f"{child}.pid")
            if record is not None and record.is_running():
                return record.pid
            assert time.monotonic() < deadline, f"{child} is not running"
            time.sleep(0.1)

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}", **extra}

    def said(self) -> str:
        return self.output.read_text(errors="replace")


def tokens_of(env_file: Path) -> dict[str, str]:
    tokens = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export TOKEN_"):
            user, _, token = line.removeprefix("export TOKEN_").partition("=")
            tokens[user] = token.strip("'")
    return tokens


@contextmanager
def start_dev_stack(**extra_env: str) -> Iterator[DevStack]:
    # Not under pytest's basetemp: a pytest started meanwhile (another suite on this
    # machine) makes /tmp/pytest-of-<user> private again, and as root the embedded
    # PostgreSQL runs as the `pgserver` user, who must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="approvals-dev-"))
    data = root / "data"
    api_port, grpc_port, ui_port = free_port(), free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("APPROVALS_") and k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")
    }
    env.update(
        APPROVALS_DATA_DIR=str(data),
        APPROVALS_API_PORT=str(api_port),
        APPROVALS_TEMPORAL_UI_PORT=str(ui_port),
        TEMPORAL_ADDRESS=f"localhost:{grpc_port}",
        **extra_env,
    )
    output = root / "dev.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "stack is up" not in output.read_text(errors="replace"):
            assert process.poll() is None, output.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, output.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield DevStack(
            process,
            data,
            f"http://127.0.0.1:{api_port}",
            tokens_of(data / "dev.env"),
            output,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(150)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def submit(stack: DevStack, client: httpx.Client) -> str:
    response = client.post(
        "/v1/requests",
        headers=stack.headers("am_li", **{"Idempotency-Key": f"restart-{uuid.uuid4()}"}),
        json={
            "type": "big_customer_contract",
            "title": "Supply contract decided across a worker crash",
            "customer": "ACME Ltd",
            "amount": "250000",
            "fields": {"contract_no": "C-RESTART-1", "settlement_floor_price": "180000"},
        },
    )
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["stages"][0]["status"] == "active"
    return str(view["id"])
