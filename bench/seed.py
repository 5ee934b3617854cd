"""Open many requests for real, then measure reads, an old decision and the worker's memory.

Run it from the repository root::

    .venv/bin/python -m bench.seed --count 20000

Seeding: ``--count`` big-customer contracts of 250,000 by am_li, each started
the way the API's submit starts one (:func:`api.commands.submit`): the
``submitted`` row is committed first, then the workflow is started with the
same call (:func:`api.commands._start`: same id, search attributes, summary).
Rows are written ``--batch`` to a transaction, workflows started
``--start-concurrency`` at a time, and a batch starts only when at most
``--max-backlog`` requests will then wait for the worker's first transition:
a longer queue makes no request open sooner, it only stretches each workflow
task: with 200 waiting on 2 busy cores, tasks took over 5 s and hundreds timed
out (10 s) and were redone. Every request ends up
``in_review``, waiting for bcd_zheng: a full inbox.

Then, with all of them open, one call at a time (``--samples`` each):
``inbox`` (bcd_zheng's ``GET /v1/inbox``), ``list`` (am_li's first page of
``GET /v1/requests``), ``decide_old`` (bcd_zheng approves the requests seeded
first: their workflows have long left the worker's cache) and ``decide_new``
(the ones seeded last). It prints the seeding rate, a row per phase, the
worker's RSS before, after seeding and at the end, and its
``max_cached_workflows``: the worker's memory should follow the cache size,
not the number of open requests. Figures only; exit code 1 when any call failed.

By default it starts its own stack in-process (as ``bench.api_throughput
--in-process`` does: the worker runs in this process, so the RSS is this
process's); with
``--api-url`` (loopback) and ``--token-file .data/dev.env`` it seeds a running
``make dev`` stack (its database and Temporal from that file) and reads the
RSS of its worker process from ``.data/run/worker.pid``. Seeded requests stay
in that database.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import logging
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

import psutil
from sqlalchemy import func, select
from temporalio.worker import Worker

from bench.api_throughput import (
    AMOUNT,
    REQUEST_TYPE,
    Runner,
    _expect_view,
    _has_items,
    _positive_float,
    _positive_int,
)
from bench.report import ErrorSample, PhaseResult, machine_facts, render_phases, render_samples
from bench.stack import (
    REQUESTER,
    STAGE1,
    STAGE2,
    BenchError,
    Stack,
    in_process_stack,
    remote_stack,
)

log = logging.getLogger("approvals.bench.seed")

SEED_PHASES = ("inbox", "list", "decide_old", "decide_new")
MiB = 1024 * 1024


@dataclass(frozen=True)
class SeedOptions:
    count: int
    batch: int
    start_concurrency: int
    max_backlog: int
    samples: int
    decisions: int
    settle_timeout: float
    request_timeout: float
    max_cached_workflows: int | None
    api_url: str | None
    token_file: Any


def parse_options(argv: Sequence[str] | None) -> SeedOptions:
    """The command line (``argv`` without the program name; None: ``sys.argv``)."""
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m bench.seed",
        description="Open many requests for real, then measure reads, decisions and memory.",
    )
    parser.add_argument(
        "--count", type=_positive_int, default=20_000, help="requests to open (20000)"
    )
    parser.add_argument("--batch", type=_positive_int, default=25, help="rows per transaction (25)")
    parser.add_argument(
        "--start-concurrency",
        type=_positive_int,
        default=16,
        help="workflow starts in flight (16)",
    )
    parser.add_argument(
        "--max-backlog",
        type=_positive_int,
        default=50,
        help="at most this many started requests wait for the worker's first transition "
        "(50; more only makes the worker's tasks queue up behind each other)",
    )
    parser.add_argument(
        "--samples", type=_positive_int, default=20, help="calls per read phase (20)"
    )
    parser.add_argument(
        "--decisions",
        type=_positive_int,
        default=10,
        help="decisions on old and on new requests each (10)",
    )
    parser.add_argument(
        "--settle-timeout",
        type=_positive_float,
        default=3600.0,
        help="seconds to wait for every request to be in review (3600)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=60.0,
        help="seconds before one call counts as failed (60)",
    )
    parser.add_argument(
        "--max-cached-workflows",
        type=int,
        help="in-process stack only: the worker's workflow cache size "
        "(default: the SDK's, as the real worker has)",
    )
    parser.add_argument(
        "--api-url",
        help="seed a running stack at this loopback URL (e.g. http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="with --api-url: .data/dev.env (tokens, DATABASE_URL, TEMPORAL_ADDRESS)",
    )
    args = parser.parse_args(argv)
    if args.api_url is None and args.token_file is not None:
        parser.error("--token-file only applies with --api-url")
    if args.api_url is not None and args.max_cached_workflows is not None:
        parser.error("--max-cached-workflows only applies to the in-process stack")
    if args.decisions > args.count:
        parser.error("--decisions cannot exceed --count")
    return SeedOptions(
        count=args.count,
        batch=args.batch,
        start_concurrency=args.start_concurrency,
        max_backlog=args.max_backlog,
        samples=args.samples,
        decisions=args.decisions,
        settle_timeout=args.settle_timeout,
        request_timeout=args.request_timeout,
        max_cached_workflows=args.max_cached_workflows,
        api_url=args.api_url,
        token_file=args.token_file,
    )


# --- seeding ---------------------------------------------------------------------------


async def poll(done: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    """Wait until ``done()``: the worker's progress shows only in the database, so poll it.

    Raises:
        BenchError: ``deadline`` (``time.monotonic()``) passed first.
    """
    while True:
        if await done():
            return
        if time.monotonic() > deadline:
            raise BenchError(f"waited in vain for {what} to reach review (--settle-timeout)")
        await asyncio.sleep(0.5)


@dataclass
class SeedResult:
    """How the seeding went: ids oldest first, and how long starting and opening took."""

    ids: list[str]
    customer: str
    start_seconds: float
    open_seconds: float

    @property
    def start_rate(self) -> float:
        """Requests recorded and their workflows started, per second."""
        return len(self.ids) / self.start_seconds if self.start_seconds > 0 else 0.0

    @property
    def open_rate(self) -> float:
        """Requests in review (first stage assigned by the worker), per second."""
        return len(self.ids) / self.open_seconds if self.open_seconds > 0 else 0.0


async def seed(stack: Stack, options: SeedOptions, run_id: str) -> SeedResult:
    """Open ``options.count`` requests through the API's own start path."""
    from datetime import UTC, datetime

    from api import commands
    from api.deps import Services
    from api.temporal_gateway import TemporalGateway
    from common.business_calendar import default_calendar
    from common.policy_store import load_policies
    from db import request_queries as q
    from db.engine import make_engine, make_sessionmaker, transaction
    from db.models import AssignmentRow, RequestRow
    from domain.process import ApprovalInput
    from domain.requests import Submission, validate_fields
    from domain.routing import resolve_route

    settings, client = stack.settings, stack.temporal
    if settings is None or client is None or not settings.database_url:
        raise BenchError("seeding needs the stack's database and Temporal (--token-file?)")
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        temporal=TemporalGateway(settings),
        policies=load_policies(settings.policy_dir),
        calendar=default_calendar(datetime.now(UTC).year),
    )
    customer = f"Seed {run_id}"
    policy = commands.policy_for(services.policies, REQUEST_TYPE)
    fields = validate_fields(
        policy,
        Decimal(AMOUNT),
        {"contract_no": "SEED", "settlement_floor_price": "180000"},
    )
    route = resolve_route(policy, Decimal(AMOUNT), fields)
    gate = asyncio.Semaphore(options.start_concurrency)

    async def in_review() -> int:
        """Seeded requests whose first stage is assigned: in bcd_zheng's inbox."""
        async with sessions() as session:
            found = await session.scalar(
                select(func.count(func.distinct(AssignmentRow.request_id)))
                .join(RequestRow, RequestRow.id == AssignmentRow.request_id)
                .where(
                    RequestRow.customer == customer,
                    AssignmentRow.user_id == STAGE1,
                    AssignmentRow.pending.is_(True),
                )
            )
            return int(found or 0)

    async def in_review_at_least(n: int) -> bool:
        return await in_review() >= n

    def deadline() -> float:
        return time.monotonic() + options.settle_timeout

    async def start(inp: ApprovalInput) -> None:
        async with gate:
            await commands._start(services, client, inp)

    ids: list[str] = []
    batch = min(options.batch, options.max_backlog)
    started = time.perf_counter()
    try:
        for first in range(0, options.count, batch):
            await poll(
                functools.partial(in_review_at_least, len(ids) + batch - options.max_backlog),
                deadline(),
                "the worker's backlog",
            )
            inputs: list[ApprovalInput] = []
            async with transaction(sessions) as session:
                for i in range(first, min(first + batch, options.count)):
                    body = Submission(
                        type=REQUEST_TYPE,
                        title=f"Seeded contract {i}",
                        customer=customer,
                        amount=Decimal(AMOUNT),
                        fields={**fields, "contract_no": f"SEED-{i:07d}"},
                    )
                    request_id = str(uuid.uuid4())
                    await q.insert_request(
                        session,
                        q.NewRequest(
                            id=request_id,
                            type=policy.type,
                            title=body.title,
                            requester=REQUESTER,
                            customer=customer,
                            amount=body.amount,
                            fields=body.fields,
                            comment=None,
                            policy_type=policy.type,
                            policy_version=policy.version,
                            route=route.model_dump(mode="json"),
                            idempotency_key=f"seed-{run_id}-{i}",
                            body_hash=commands.body_hash(body),
                        ),
                    )
                    inputs.append(
                        ApprovalInput(
                            request_id=request_id,
                            requester=REQUESTER,
                            title=body.title,
                            customer=customer,
                            amount=body.amount,
                            fields=body.fields,
                            comment=None,
                            policy=policy,
                            route=route,
                        )
                    )
            # Committed before any start, as the API does: the workflow finds its row.
            await asyncio.gather(*(start(inp) for inp in inputs))
            ids += [inp.request_id for inp in inputs]
            log.info("seeded %d of %d", len(ids), options.count)
        start_seconds = time.perf_counter() - started
        await poll(lambda: in_review_at_least(len(ids)), deadline(), "every seeded request")
        open_seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return SeedResult(ids, customer, start_seconds, open_seconds)


# --- with the requests open --------------------------------------------------------------


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (None when unknown or gone)."""
    if pid is None:
        return None
    try:
        return psutil.Process(pid).memory_info().rss / MiB
    except psutil.Error:
        return None


def cache_size(worker: Worker | None) -> str:
    """The worker's ``max_cached_workflows``: its own, or the SDK default the dev worker uses."""
    if worker is not None:
        return str(worker.config().get("max_cached_workflows"))
    default = inspect.signature(Worker).parameters["max_cached_workflows"].default
    return f"{default} (temporalio's default; build_worker sets none)"


@dataclass
class SeedReport:
    seeded: SeedResult
    phases: list[PhaseResult]
    samples: list[ErrorSample]
    memory: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    inbox_items: int = 0

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.phases)

    @property
    def failed(self) -> bool:
        return self.errors > 0


async def _one_at_a_time(
    name: str, jobs: Sequence[Callable[[PhaseResult], Awaitable[Any]]]
) -> tuple[PhaseResult, list[Any]]:
    phase = PhaseResult(name)
    started = time.perf_counter()
    results = [await job(phase) for job in jobs]
    phase.seconds = time.perf_counter() - started
    return phase, results


async def measure_open(
    stack: Stack, options: SeedOptions, seeded: SeedResult
) -> tuple[list[PhaseResult], list[ErrorSample], int]:
    """Reads and decisions, one call at a time, with every seeded request open."""
    runner = Runner(stack, options.request_timeout)

    def read_inbox(phase: PhaseResult) -> Awaitable[Any]:
        return runner.send(phase, "GET", "/v1/inbox", STAGE1, expect=200, check=_has_items)

    def read_list(phase: PhaseResult) -> Awaitable[Any]:
        return runner.send(phase, "GET", "/v1/requests", REQUESTER, expect=200, check=_has_items)

    def decide(rid: str) -> Callable[[PhaseResult], Awaitable[Any]]:
        return lambda phase: runner.send(
            phase,
            "POST",
            f"/v1/requests/{rid}/decisions",
            STAGE1,
            expect=200,
            check=_expect_view("in_review", [STAGE2]),
            json={"action": "approve", "comment": "seed benchmark"},
        )

    inbox, pages = await _one_at_a_time("inbox", [read_inbox] * options.samples)
    listing, _ = await _one_at_a_time("list", [read_list] * options.samples)
    k = options.decisions
    old, _ = await _one_at_a_time("decide_old", [decide(rid) for rid in seeded.ids[:k]])
    # The newest ones not decided already (with --decisions > count/2 they would overlap).
    newest = [rid for rid in seeded.ids[-k:] if rid not in set(seeded.ids[:k])]
    new, _ = await _one_at_a_time("decide_new", [decide(rid) for rid in newest])
    items = max((len(p["items"]) for p in pages if p is not None), default=0)
    return [inbox, listing, old, new], runner.samples, items


async def run_seed_benchmark(stack: Stack, options: SeedOptions, run_id: str) -> SeedReport:
    """Seed, then measure with the requests open; the worker's RSS along the way."""
    before = rss_mib(stack.worker_pid)
    seeded = await seed(stack, options, run_id)
    after_seed = rss_mib(stack.worker_pid)
    phases, samples, items = await measure_open(stack, options, seeded)
    at_end = rss_mib(stack.worker_pid)

    def mib(value: float | None) -> str:
        return "unknown (no worker pid)" if value is None else f"{value:.0f} MiB"

    whose = "this process (worker, API, client)" if stack.worker is not None else "dev worker"
    return SeedReport(
        seeded=seeded,
        phases=phases,
        samples=samples,
        memory={
            "worker pid": f"{stack.worker_pid} ({whose})",
            "rss before": mib(before),
            "rss seeded": mib(after_seed),
            "rss at end": mib(at_end),
            "max_cached_workflows": cache_size(stack.worker),
        },
        settings={
            "stack": stack.description,
            "count": str(options.count),
            "customer": seeded.customer,
            "seeding": (
                f"{options.batch} rows a transaction, {options.start_concurrency} starts in "
                f"flight, at most {options.max_backlog} waiting for the worker"
            ),
            "reads": f"{options.samples} each, one at a time",
            "decisions": f"{options.decisions} old + {options.decisions} new, one at a time",
        },
        machine=machine_facts(),
        inbox_items=items,
    )


def render(report: SeedReport) -> str:
    """The seeding figures, a row per phase, memory, machine and settings."""
    s = report.seeded
    lines = [
        "== seeding",
        f"{'opened':<22}{len(s.ids)} requests in review",
        f"{'started':<22}{s.start_seconds:.1f} s, {s.start_rate:.1f} requests/s "
        "(row committed + workflow started)",
        f"{'in review':<22}{s.open_seconds:.1f} s, {s.open_rate:.1f} requests/s "
        "(first stage assigned by the worker)",
        "",
        f"== with {len(s.ids)} requests open (inbox: {report.inbox_items} items)",
        *render_phases(report.phases),
        "",
        "== worker memory",
    ]
    lines += [f"{k:<22}{v}" for k, v in report.memory.items()]
    lines.append("")
    lines += [f"{k:<22}{v}" for k, v in report.machine.items()]
    lines += [f"{k:<22}{v}" for k, v in report.settings.items()]
    lines += render_samples(report.errors, report.samples, "calls")
    return "\n".join(lines) + "\n"


async def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    **in_process: Any,
) -> SeedReport:
    """Seed, measure, write the figures to ``out`` (stdout) and return the report.

    ``in_process`` goes to :func:`bench.stack.in_process_stack` (the
    test fixtures ``pg_url``, ``temporal``, ``sessions``).
    """
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:10]
    if options.api_url is not None:
        if in_process:
            raise BenchError("--api-url seeds a running stack; pass no in-process servers")
        stack_cm = remote_stack(
            options.api_url,
            token_file=options.token_file,
            concurrency=options.start_concurrency,
            request_timeout=options.request_timeout,
            connect_temporal=True,
        )
    else:
        worker_options: dict[str, Any] = {}
        if options.max_cached_workflows is not None:
            worker_options["max_cached_workflows"] = options.max_cached_workflows
        stack_cm = in_process_stack(**in_process, worker_options=worker_options)
    async with stack_cm as stack:
        report = await run_seed_benchmark(stack, options, run_id)
    (out or sys.stdout).write(render(report))
    return report


def cli(argv: Sequence[str] | None = None) -> int:
    """The command: 0 when every call succeeded, 1 when any failed, 2 when it could not run."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        report = asyncio.run(main(argv))
    except BenchError as exc:
        sys.stderr.write(f"seed benchmark: {exc}\n")
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(cli())
