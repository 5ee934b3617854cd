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
p50/p90/p99/max latency), the project beside the floor (:mod:`bench.floor`) on
the stack's shared Temporal server and on a server of its own
(:mod:`bench.own_temporal`; ``--no-own-floor`` leaves that one out),
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
import signal
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.phases import MAX_ERROR_SAMPLES, timed_phase
from bench.report import (
    BenchReport,
    ErrorSample,
    PhaseResult,
    machine_facts,
    render,
    render_rounds,
)
from bench.stack import (
    REQUESTER,
    STAGE1,
    STAGE2,
    BenchError,
    CpuProbe,
    Stack,
    chosen_stack,
)

REQUEST_TYPE = "big_customer_contract"
AMOUNT = "250000"
PHASES = ("submit", "approve_stage1", "inbox", "approve_stage2", "list")
FLOOR_SHAPE = "BenchFloorWorkflow: start + 2 updates, one no-op activity per step"


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
    own_floor: bool = True
    in_process: bool = False
    rounds: int = 1


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
    parser.add_argument(
        "--rounds",
        type=_positive_int,
        default=1,
        help="measure the project and both floors this many times in turn on the same "
        "stack, then print each ratio's and each figure's median over the rounds (1)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--no-floor",
        action="store_true",
        help="measure the project only (neither bare-Temporal floor, no comparison)",
    )
    which.add_argument(
        "--floor-only",
        action="store_true",
        help="measure the bare-Temporal floors only (no API requests)",
    )
    parser.add_argument(
        "--no-own-floor",
        action="store_true",
        help="skip the floor on a Temporal server of its own (saves starting that server "
        "and running the floor twice); the floor on the stack's server still runs",
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
        own_floor=not args.no_floor and not args.no_own_floor,
        in_process=args.in_process,
        rounds=args.rounds,
    )


# --- measuring -------------------------------------------------------------------------


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


async def run_benchmark(stack: Stack, options: Options, run_id: str) -> BenchReport:
    """The project's passes (``--concurrency``, then one at a time), then the floors'.

    The floor runs first on the stack's Temporal (the shared floor), then (unless
    ``--no-own-floor``) on a Temporal server started for it alone (the own floor). That
    server runs only while its floor is measured, so it is not in the way of the
    project's figures nor of the shared floor's.
    """
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
        if stack.temporal is None:
            raise BenchError("the floor needs the stack's Temporal, and this stack has none")
        (
            report.floor_phases,
            report.floor_serial_phases,
            task_queue,
        ) = await measure_floor(stack.temporal, options, report, stack.cpu_probe)
        report.settings["shared floor"] = (
            f"{FLOOR_SHAPE}, on the stack's Temporal server, own worker (task queue {task_queue})"
        )
    if options.floor and options.own_floor:
        from bench.own_temporal import own_temporal_server

        namespace = stack.settings.temporal_namespace if stack.settings else "default"
        async with own_temporal_server(namespace=namespace) as own:
            # Its CPU is read with the stack's, so the table shows where the floor's went.
            probe = own.with_cpu(stack.cpu_probe) if stack.cpu_probe is not None else None
            (
                report.own_floor_phases,
                report.own_floor_serial_phases,
                task_queue,
            ) = await measure_floor(own.client, options, report, probe)
        report.settings["own floor"] = (
            f"{FLOOR_SHAPE}, on a Temporal dev server of its own at {own.address} "
            f"(--db-filename {own.db_file}), started for it and stopped after it, "
            f"own worker (task queue {task_queue})"
        )
    return report


async def measure_floor(
    client: Client, options: Options, report: BenchReport, cpu_probe: CpuProbe | None
) -> tuple[list[PhaseResult], list[PhaseResult], str]:
    """The floor on ``client``'s server: ``--concurrency`` in flight, then one at a time.

    Its errors are added to ``report``'s samples; returns both passes' phases and the
    task queue its worker polled.
    """
    from bench.floor import floor_worker, run_floor_phases  # imports this module

    passes: list[list[PhaseResult]] = []
    async with floor_worker(client) as task_queue:
        for requests, concurrency in (
            (options.requests, options.concurrency),
            (options.serial_requests, 1),
        ):
            passes.append(
                await run_floor_phases(
                    client,
                    task_queue,
                    requests=requests,
                    concurrency=concurrency,
                    call_timeout=options.request_timeout,
                    samples=report.samples,
                    cpu_probe=cpu_probe,
                )
            )
    return passes[0], passes[1], task_queue


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
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:10]
    stack_cm = chosen_stack(
        options, pg_url=pg_url, temporal=temporal, sessions=sessions, connect_temporal=options.floor
    )
    write = (out or sys.stdout).write
    reports: list[BenchReport] = []
    async with stack_cm as stack:
        for n in range(1, options.rounds + 1):
            suffix = f"-r{n}" if options.rounds > 1 else ""
            reports.append(await run_benchmark(stack, options, run_id + suffix))
            if options.rounds > 1:
                write(f"==== round {n} of {options.rounds}\n")
            write(render(reports[-1]))
    if options.rounds > 1:
        write(render_rounds(reports))
    report = reports[-1]  # each round's errors were printed with it
    report.failed_rounds = sum(r.failed for r in reports)
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
