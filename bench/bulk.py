"""Bulk-decision benchmark: submit 100 contracts, then time one bulk approve of all of them.

Run it from the repository root (``make bench-bulk``)::

    .venv/bin/python -m bench.bulk --requests 100

The stack is the one ``make bench`` uses: by default ``approvals dev`` started in a
temporary directory, each part its own process (:mod:`bench.deployed`); ``--api-url``
drives a running ``make dev`` stack; ``--in-process`` builds it in this process as the
tests do. am_li submits ``--requests`` big-customer contracts of 250,000
(``--concurrency`` in flight, not timed as the figure), then bcd_zheng approves all of
them in ONE ``POST /v1/decisions/bulk`` call, each item with the version the submission
answered. It prints that call's wall time and items per second, and how many items were
done and refused. The exit code is 1 when any submission or item failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from bench.api_throughput import AMOUNT, REQUEST_TYPE, Runner, _contract, _expect_view
from bench.phases import timed_phase
from bench.report import ErrorSample, PhaseResult, machine_facts
from bench.stack import REQUESTER, STAGE1, STAGE2, BenchError, Stack, chosen_stack

MAX_ITEMS = 100
"""What one bulk call may carry (the API's limit)."""


@dataclass(frozen=True)
class BulkOptions:
    requests: int
    concurrency: int
    request_timeout: float
    api_url: str | None
    token_file: Path | None
    in_process: bool = False


@dataclass
class BulkReport:
    submitted: PhaseResult
    bulk: PhaseResult
    items: int
    done: int
    refused: int
    samples: list[ErrorSample]
    settings: dict[str, str]
    customer: str
    """The customer of the run's contracts (each run its own)."""

    @property
    def seconds(self) -> float:
        return self.bulk.seconds

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        return bool(self.samples) or self.refused > 0 or self.done != self.items

    def render(self) -> str:
        lines = [
            "== bulk decision",
            f"submitted        {self.submitted.count} contracts, {self.submitted.errors} errors, "
            f"{self.submitted.seconds:.2f} s",
            f"bulk approve     {self.items} items in {self.seconds:.2f} s "
            f"({self.items_per_second:.1f} items/s): {self.done} done, {self.refused} refused",
            "== settings",
            *(f"{k:<16} {v}" for k, v in self.settings.items()),
        ]
        lines += [
            f"error            {s.phase} {s.method} {s.path} {s.status}: {s.body}"
            for s in self.samples
        ]
        return "\n".join(lines) + "\n"


def parse_options(argv: Sequence[str] | None) -> BulkOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bulk",
        description="Submit contracts, then time one bulk approve of all of them.",
    )
    parser.add_argument(
        "--requests", type=int, default=MAX_ITEMS, help=f"contracts, 1 to {MAX_ITEMS} (100)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="submissions in flight (8)")
    parser.add_argument(
        "--request-timeout", type=float, default=120.0, help="seconds per call (120)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--api-url", help="drive a running stack at this loopback URL")
    where.add_argument(
        "--in-process", action="store_true", help="run the whole stack in this process"
    )
    parser.add_argument("--token-file", type=Path, help="with --api-url: .data/dev.env")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_ITEMS:
        parser.error(f"--requests must be 1 to {MAX_ITEMS} (one bulk call)")
    if args.concurrency < 1 or args.request_timeout <= 0:
        parser.error("--concurrency and --request-timeout must be positive")
    return BulkOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        request_timeout=args.request_timeout,
        api_url=args.api_url,
        token_file=args.token_file,
        in_process=args.in_process,
    )


async def run_bulk(stack: Stack, options: BulkOptions, run_id: str) -> BulkReport:
    """Submit ``options.requests`` contracts, then approve them all in one bulk call."""
    runner = Runner(stack, options.request_timeout)
    customer = f"Bulk bench {run_id}"

    def submit(i: int) -> Any:
        return lambda phase: runner.send(
            phase,
            "POST",
            "/v1/requests",
            REQUESTER,
            expect=201,
            check=_expect_view("in_review", [STAGE1]),
            json=_contract(customer, i),
            headers={"Idempotency-Key": f"bulk-bench-{run_id}-{i}"},
        )

    jobs = [submit(i) for i in range(options.requests)]
    submitted, views = await timed_phase("submit", jobs, options.concurrency)
    items = [{"request_id": v["id"], "version_seen": v["version"]} for v in views if v]

    def check(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("summary"), dict):
            return f"not a bulk result: {body!r}"
        return None

    async def approve_all(phase: PhaseResult) -> Any:
        return await runner.send(
            phase,
            "POST",
            "/v1/decisions/bulk",
            STAGE1,
            expect=200,
            check=check,
            json={"action": "approve", "comment": "bulk benchmark", "items": items},
            headers={"Idempotency-Key": f"bulk-bench-{run_id}"},
        )

    bulk, (result,) = await timed_phase("bulk_approve", [approve_all], 1)
    summary = (result or {}).get("summary") or {}
    done = int(summary.get("done", 0))
    refused = int(summary.get("refused", len(items)))
    for outcome in (result or {}).get("items", []):
        if outcome.get("outcome") != "done" and len(runner.samples) < 5:
            error = outcome.get("error") or {}
            runner.samples.append(
                ErrorSample(
                    "bulk_approve",
                    "POST",
                    f"item {outcome.get('request_id')}",
                    outcome.get("http_status"),
                    f"{error.get('code')}: {error.get('message')}"[:500],
                )
            )
    return BulkReport(
        submitted=submitted,
        bulk=bulk,
        items=len(items),
        done=done,
        refused=refused,
        samples=runner.samples,
        settings={
            "stack": stack.description,
            "request": f"{REQUEST_TYPE} of {AMOUNT} by {REQUESTER}: {STAGE1}, then {STAGE2}",
            "bulk call": f"{STAGE1} approves all {len(items)} in one POST /v1/decisions/bulk",
            "submissions": f"{options.concurrency} in flight (not the figure)",
            "machine": ", ".join(f"{k} {v}" for k, v in machine_facts().items()),
        },
        customer=customer,
    )


async def main(
    argv: Sequence[str] | None = None,
    *,
    pg_url: str | None = None,
    temporal: WorkflowEnvironment | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    out: TextIO | None = None,
) -> BulkReport:
    """Run it on the stack the options name (or the test fixtures given) and print it."""
    options = parse_options(argv)
    stack_cm = chosen_stack(
        options, pg_url=pg_url, temporal=temporal, sessions=sessions, connect_temporal=False
    )
    async with stack_cm as stack:
        report = await run_bulk(stack, options, uuid.uuid4().hex[:10])
    (out or sys.stdout).write(report.render())
    return report


def cli(argv: Sequence[str] | None = None) -> int:
    """0 when every item was approved, 1 when any failed, 2 when it could not run."""
    started = time.perf_counter()
    try:
        report = asyncio.run(main(argv))
    except BenchError as exc:
        sys.stderr.write(f"benchmark: {exc}\n")
        return 2
    sys.stderr.write(
        f"(whole run, stack start and stop included: {time.perf_counter() - started:.0f} s)\n"
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(cli())
