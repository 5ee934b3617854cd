"""Where the benchmarks send their requests: a stack in this process, or a running one.

:func:`in_process_stack` builds the whole stack in this process, the way the
tests do; :func:`remote_stack` drives a stack already running on this machine
over HTTP (``make dev``, or the one :mod:`bench.deployed` starts).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.dev_env import read_env_file
from common.settings import Settings
from common.temporal import data_converter

ROOT = Path(__file__).resolve().parent.parent

# The demo users the benchmarks act as: who submits, who decides each stage.
REQUESTER = "am_li"
STAGE1 = "bcd_zheng"
STAGE2 = "dsd_liu"
USERS = (REQUESTER, STAGE1, STAGE2)

# CPU seconds consumed so far, per process of the stack (None: that one cannot be read).
CpuProbe = Callable[[], Mapping[str, float | None]]


class BenchError(Exception):
    """The benchmark cannot run as asked (bad option, stack not reachable)."""


@dataclass
class Stack:
    """Where the benchmark sends its requests, and as whom.

    ``temporal`` is the stack's Temporal (the floor runs there); ``settings``
    name its database and task queue (the seeding script starts requests with
    them); ``worker`` is the in-process worker and ``worker_pid`` the process
    the approvals worker runs in (this one, or the dev stack's ``worker``).
    ``cpu_probe``, when the stack's processes can be seen, reads their CPU time.
    """

    http: httpx.AsyncClient
    tokens: dict[str, str]
    description: str
    temporal: Client | None = None
    settings: Settings | None = None
    worker: Worker | None = None
    worker_pid: int | None = None
    cpu_probe: CpuProbe | None = None

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user_id]}"}


def _venv_binary(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"{name} is not installed: run `make install`")
    return path


@contextlib.asynccontextmanager
async def in_process_stack(
    *,
    pg_url: str | None = None,
    temporal: WorkflowEnvironment | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    worker_options: dict[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """The whole stack in this process, as the tests build it; torn down on exit.

    Each argument given is used as it is and left running (the test fixtures of
    the same names); each one missing is started here and stopped on exit.

    Args:
        pg_url: a migrated database (``postgresql+asyncpg://...``).
        temporal: a local Temporal dev server with our search attributes.
        sessions: a session factory on ``pg_url`` for the worker.
        worker_options: passed to :func:`worker.main.build_worker` (e.g.
            ``max_cached_workflows``).
    """
    from api.app import create_app
    from api.auth import issue_token
    from cli.embedded_pg import throwaway_database
    from common import search_attributes
    from db.directory import load_org_file
    from db.engine import make_engine, make_sessionmaker
    from worker.main import build_worker

    if sessions is not None and pg_url is None:
        raise BenchError("a session factory needs its database URL (pg_url) too")
    async with contextlib.AsyncExitStack() as stack:
        if pg_url is None:
            # Set-up before any timing starts, so blocking the loop here is harmless.
            pg_url = stack.enter_context(throwaway_database("approvals_bench"))
        if sessions is None:
            engine = make_engine(pg_url)
            stack.push_async_callback(engine.dispose)
            sessions = make_sessionmaker(engine)
        await load_org_file(sessions, ROOT / "org" / "demo.yaml")
        if temporal is None:
            temporal = await WorkflowEnvironment.start_local(
                dev_server_existing_path=_venv_binary("temporal"),
                search_attributes=search_attributes.ALL,
                data_converter=data_converter(Settings(APPROVALS_ENV="development")),
            )
            stack.push_async_callback(temporal.shutdown)
        values: dict[str, Any] = {
            "DATABASE_URL": pg_url,
            "TEMPORAL_ADDRESS": temporal.client.service_client.config.target_host,
            "APPROVALS_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:12]}",
            "APPROVALS_POLICY_DIR": ROOT / "policies",
            "APPROVALS_ENV": "development",
        }
        settings = Settings(**values)
        worker = await stack.enter_async_context(
            build_worker(
                temporal.client,
                sessions,
                settings.task_queue,
                signing_secret=settings.signing_secret,
                # As `approvals worker` runs it (APPROVALS_WORKFLOW_SANDBOX).
                sandboxed=settings.workflow_sandbox,
                **(worker_options or {}),
            )
        )
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        )
        yield Stack(
            http=http,
            tokens={user: issue_token(settings, user) for user in USERS},
            description=(
                "in-process: embedded PostgreSQL, Temporal dev server, one worker, "
                f"ASGI app (task queue {settings.task_queue})"
            ),
            temporal=temporal.client,
            settings=settings,
            worker=worker,
            worker_pid=os.getpid(),
        )


def _require_loopback(url: str) -> httpx.URL:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BenchError(f"--api-url must be an http(s) URL, not {url!r}")
    host = parsed.host
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BenchError(
                f"--api-url {url}: only a stack on this machine (localhost, 127.0.0.1, ::1) "
                "is benchmarked"
            )
    return parsed


def read_token_file(path: Path) -> dict[str, str]:
    """``TOKEN_<user>`` values of a shell file of ``export NAME=value`` lines (dev.env)."""
    return {
        name.removeprefix("TOKEN_"): value
        for name, value in read_env_file(path).items()
        if name.startswith("TOKEN_")
    }


def remote_settings(token_file: Path | None) -> Settings:
    """The running stack's settings: the environment, overridden by the env file's values.

    ``make dev`` writes ``DATABASE_URL`` and ``TEMPORAL_ADDRESS`` into
    ``.data/dev.env``; without a file, ``$DATABASE_URL`` and ``$TEMPORAL_ADDRESS``
    (default ``localhost:7233``) are used.
    """
    known = ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "APPROVALS_TASK_QUEUE")
    values: dict[str, Any] = {}
    if token_file is not None:
        found = read_env_file(token_file)
        values = {k: found[k] for k in known if found.get(k)}
    return Settings(**values)


def dev_worker_pid(settings: Settings) -> int | None:
    """The pid of the dev stack's worker (``.data/run/worker.pid``) while it runs."""
    from cli.children import PidRecord

    record = PidRecord.read(settings.data_dir / "run" / "worker.pid")
    if record is None or not record.is_running():
        return None
    return record.pid


def remote_tokens(token_file: Path | None) -> dict[str, str]:
    """A token per benchmark user: from the file, else ``$TOKEN_<user>``, else signed here."""
    if token_file is not None:
        found = read_token_file(token_file)
        missing = [u for u in USERS if u not in found]
        if missing:
            raise BenchError(f"{token_file} has no TOKEN_ line for {', '.join(missing)}")
        return {u: found[u] for u in USERS}
    from api.auth import issue_token

    settings = Settings()
    return {u: os.environ.get(f"TOKEN_{u}") or issue_token(settings, u) for u in USERS}


@contextlib.asynccontextmanager
async def remote_stack(
    api_url: str,
    *,
    token_file: Path | None,
    concurrency: int,
    request_timeout: float,
    connect_temporal: bool = False,
) -> AsyncIterator[Stack]:
    """A running stack at ``api_url`` (loopback only), after checking it is ready.

    Args:
        api_url: the API's base URL (``--api-url``).
        token_file: ``--token-file``: tokens and the stack's addresses (``dev.env``).
        concurrency: requests in flight (the connection pool holds twice as many).
        request_timeout: seconds before one request counts as failed.
        connect_temporal: connect the stack's Temporal too (the floor runs there,
            on a task queue of its own), found as :func:`remote_settings` says.
    """
    base = _require_loopback(api_url)
    tokens = remote_tokens(token_file)
    settings = remote_settings(token_file)
    temporal: Client | None = None
    if connect_temporal:
        from common.temporal import connect

        host = settings.temporal_address.rpartition(":")[0].strip("[]")
        try:
            _require_loopback(f"http://[{host}]" if ":" in host else f"http://{host}")
        except BenchError:
            raise BenchError(
                f"TEMPORAL_ADDRESS {settings.temporal_address}: only a Temporal on this "
                "machine is benchmarked"
            ) from None
        try:
            temporal = await connect(settings)
        except (ConnectionError, RuntimeError) as exc:  # connect() names the address
            raise BenchError(
                f"Temporal at {settings.temporal_address} does not answer ({exc}): pass "
                "--token-file .data/dev.env or set TEMPORAL_ADDRESS"
            ) from exc
    limits = httpx.Limits(max_connections=concurrency * 2)
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    async with httpx.AsyncClient(
        base_url=base, timeout=request_timeout, limits=limits, trust_env=False
    ) as http:
        try:
            ready = await http.get("/readyz")
        except httpx.HTTPError as exc:
            message = f"the API at {base} does not answer ({exc!r}): is `make dev` up?"
            raise BenchError(message) from exc
        if ready.status_code != 200:
            raise BenchError(f"the API at {base} is not ready: {ready.status_code} {ready.text}")
        yield Stack(
            http=http,
            tokens=tokens,
            description=f"running stack at {base}",
            temporal=temporal,
            settings=settings,
            worker_pid=dev_worker_pid(settings),
        )


class StackOptions(Protocol):
    """What every benchmark's options say about the stack it runs on."""

    @property
    def api_url(self) -> str | None: ...
    @property
    def in_process(self) -> bool: ...
    @property
    def token_file(self) -> Path | None: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def request_timeout(self) -> float: ...


def chosen_stack(
    options: StackOptions,
    *,
    pg_url: str | None,
    temporal: WorkflowEnvironment | None,
    sessions: async_sessionmaker[AsyncSession] | None,
    connect_temporal: bool,
) -> contextlib.AbstractAsyncContextManager[Stack]:
    """The stack the options name: a running one (``--api-url``), one in this process
    (``--in-process``, or the test fixtures given), else the deployed shape."""
    from bench.deployed import deployed_stack  # starts processes: imported only here

    in_process = options.in_process or bool(pg_url or temporal or sessions)
    if options.api_url is not None:
        if in_process:
            raise BenchError("--api-url drives a running stack; pass no in-process servers")
        return remote_stack(
            options.api_url,
            token_file=options.token_file,
            concurrency=options.concurrency,
            request_timeout=options.request_timeout,
            connect_temporal=connect_temporal,
        )
    if in_process:
        return in_process_stack(pg_url=pg_url, temporal=temporal, sessions=sessions)
    return deployed_stack(
        concurrency=options.concurrency,
        request_timeout=options.request_timeout,
        connect_temporal=connect_temporal,
    )
