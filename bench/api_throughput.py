"""API throughput benchmark: submit, approve twice, then read, and print the figures.

Run it from the repository root::

    .venv/bin/python -m bench.api_throughput --requests 200 --concurrency 8

By default it measures the project as it is deployed, each part its own
process: it starts ``approvals dev`` in a temporary directory on free ports
(:mod:`bench.deployed`), drives its API over HTTP, reads the CPU time every
process spent on each phase, and stops the stack at the end. With
``--in-process`` it builds the whole stack in this one process instead, the
way the tests do (an embedded PostgreSQL, the Temporal dev server, a worker,
the FastAPI app through httpx's ASGI transport): the GIL then limits
everything. With ``--api-url`` it drives an already running ``make dev``
stack over HTTP on this machine.

Each of ``--requests`` big-customer contracts of 250,000 takes two stages
(bcd_zheng signs, dsd_liu approves). The phases, each request timed on its own:

1. ``submit``: am_li submits every contract, ``--concurrency`` in flight;
2. ``approve_stage1``: bcd_zheng approves each one;
3. ``inbox``: dsd_liu reads ``GET /v1/inbox`` once per request, while all of them
   wait for him;
4. ``approve_stage2``: dsd_liu approves each one (the request ends ``approved``), and ``list``:
   ``--concurrency`` readers each page through ``GET /v1/requests`` for the
   run's customer.

The output is a table per pass (count, errors, requests per second,
p50/p90/p99/max latency), the project beside the floor (:mod:`bench.floor`),
on a stack it started the CPU seconds each process spent (:mod:`bench.cpu`),
the machine and the settings. The exit code is 1 when any request
failed: a status other than the expected 201/200, a timeout, or an answer that
says the request is not where it should be. Timing is reported, never judged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import platform
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench.cpu import render_cpu, spent
from bench.stack import (
    REQUESTER,
    STAGE1,
    STAGE2,
    BenchError,
    CpuProbe,
    Stack,
    in_process_stack,
    remote_stack,
)

REQUEST_TYPE = "big_customer_contract"
AMOUNT = "250000"
PHASES = ("submit", "approve_stage1", "inbox", "approve_stage2", "list")
WRITES = ("submit", "approve_stage1", "approve_stage2")
READS = ("inbox", "list")
MAX_ERROR_SAMPLES = 5


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
    in_process: bool = False


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
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--api-url",
        help="drive a running stack at this loopback URL (e.g. http://127.0.0.1:8000) "
        "instead of starting one",
    )
    where.add_argument(
        "--in-process",
        action="store_true",
        help="run API, worker and client in this one process (ASGI transport), as the "
        "tests do, instead of starting `approvals dev` (separate processes)",
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
        in_process=args.in_process,
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
    # CPU seconds each process of the stack spent on the phase (when a probe could see them).
    cpu: dict[str, float | None] | None = None

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
    name: str,
    jobs: Sequence[Callable[[PhaseResult], Awaitable[Any]]],
    concurrency: int,
    cpu_probe: CpuProbe | None = None,
) -> tuple[PhaseResult, list[Any]]:
    """Run ``jobs`` with at most ``concurrency`` in flight; the phase's wall time and results.

    With ``cpu_probe`` the phase also records the CPU each process spent on it
    (read outside the timed span).
    """
    phase = PhaseResult(name)
    gate = asyncio.Semaphore(concurrency)

    async def gated(job: Callable[[PhaseResult], Awaitable[Any]]) -> Any:
        async with gate:
            return await job(phase)

    cpu_before = cpu_probe() if cpu_probe is not None else None
    started = time.perf_counter()
    results = await asyncio.gather(*(gated(job) for job in jobs))
    phase.seconds = time.perf_counter() - started
    if cpu_probe is not None and cpu_before is not None:
        phase.cpu = spent(cpu_before, cpu_probe())
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

    probe = stack.cpu_probe
    submitted, views = await timed_phase("submit", [submit(i) for i in range(n)], conc, probe)
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
        probe,
    )
    ids = [v["id"] for v in views if v is not None]

    # Read the inbox while every request waits for dsd_liu: a full inbox, not an empty one.
    def read_inbox(phase: PhaseResult) -> Awaitable[Any]:
        return runner.send(phase, "GET", "/v1/inbox", STAGE2, expect=200, check=_has_items)

    inbox, _ = await timed_phase("inbox", [read_inbox] * (n if reads else 0), conc, probe)

    stage2, _ = await timed_phase(
        "approve_stage2",
        [approve(rid, STAGE2, _expect_view("approved", [])) for rid in ids],
        conc,
        probe,
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

    listing, _ = await timed_phase("list", [walk_pages] * (conc if reads else 0), conc, probe)
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
    seconds = sum(p.seconds for p in _by_name(phases, *WRITES))
    return approved(phases) / seconds if seconds > 0 else None


def approved(phases: Sequence[PhaseResult]) -> int:
    """Requests approved end to end: the stage-2 decisions that succeeded."""
    return sum(p.count - p.errors for p in _by_name(phases, "approve_stage2"))


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
    lines += render_cpu_use(report)
    lines += [f"{k:<16}{v}" for k, v in report.machine.items()]
    lines += [f"{k:<16}{v}" for k, v in report.settings.items()]
    if report.samples:
        lines += ["", f"{report.errors} failed requests; the first {len(report.samples)}:"]
        for s in report.samples:
            lines.append(f"  [{s.phase}] {s.method} {s.path} -> {s.status}: {s.body}")
    return "\n".join(lines) + "\n"


def render_cpu_use(report: BenchReport) -> list[str]:
    """CPU seconds per process: the project's writes and reads, the floor (when measured)."""
    project = [*report.phases, *report.serial_phases]
    floor = [*report.floor_phases, *report.floor_serial_phases]
    if not any(p.cpu is not None for p in (*project, *floor)):
        return []

    def cpu(phases: Sequence[PhaseResult]) -> list[Mapping[str, float | None]]:
        return [p.cpu for p in phases if p.cpu is not None]

    columns: list[tuple[str, Sequence[Mapping[str, float | None]], int | None]] = []
    if project:
        columns.append(("project writes", cpu(_by_name(project, *WRITES)), approved(project)))
        columns.append(("project reads", cpu(_by_name(project, *READS)), None))
    if floor:
        columns.append(("floor", cpu(floor), approved(floor)))
    return [
        "== CPU seconds per process while measuring (user + system)",
        *render_cpu(columns),
        "(writes: submit and both decisions, both passes; reads: inbox and list;",
        " the floor's worker runs in the bench process)",
        "",
    ]


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
                    cpu_probe=stack.cpu_probe,
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
    names, reused by the in-process stack instead of starting its own (passing
    any of them means ``--in-process``).
    """
    from bench.deployed import deployed_stack

    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:10]
    in_process = options.in_process or bool(pg_url or temporal or sessions)
    stack_cm: contextlib.AbstractAsyncContextManager[Stack]
    if options.api_url is not None:
        if in_process:
            raise BenchError("--api-url drives a running stack; pass no in-process servers")
        stack_cm = remote_stack(
            options.api_url,
            token_file=options.token_file,
            concurrency=options.concurrency,
            request_timeout=options.request_timeout,
            connect_temporal=options.floor,
        )
    elif in_process:
        stack_cm = in_process_stack(pg_url=pg_url, temporal=temporal, sessions=sessions)
    else:
        stack_cm = deployed_stack(
            concurrency=options.concurrency,
            request_timeout=options.request_timeout,
            connect_temporal=options.floor,
        )
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
        report = asyncio.run(_until_stopped(main(argv)))
    except BenchError as exc:
        sys.stderr.write(f"benchmark: {exc}\n")
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.stderr.write("benchmark: interrupted (the stack it started is stopped)\n")
        return 130
    return 1 if report.failed else 0


async def _until_stopped(run: Awaitable[BenchReport]) -> BenchReport:
    """``run``, cancelled by SIGTERM as by Ctrl-C, so a started stack is always stopped."""
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run


if __name__ == "__main__":
    raise SystemExit(cli())
