"""Drive the floor workflow (:mod:`bench.floor_workflow`) the way the API benchmark drives the API.

The same phases with the same names (``submit``: start, then the ``ready``
update; ``approve_stage1``; ``approve_stage2``), the same concurrency and the
same per-call timing, on the same Temporal server and client, with a worker
of its own on a task queue of its own. So the project's figures and the
floor's can be set side by side (see ``bench.report.headlines``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench.floor_workflow import (
    FLOOR_DECIDE,
    FLOOR_READY,
    FloorDecision,
    FloorInput,
    FloorState,
    FloorWorkflow,
    floor_step,
)
from bench.phases import MAX_ERROR_SAMPLES, timed_phase
from bench.report import ErrorSample, PhaseResult
from bench.stack import CpuProbe

FLOOR_PHASES = ("submit", "approve_stage1", "approve_stage2")


@contextlib.asynccontextmanager
async def floor_worker(client: Client) -> AsyncIterator[str]:
    """A worker for the floor on a fresh task queue (yielded), with the SDK's defaults."""
    task_queue = f"bench-floor-{uuid.uuid4().hex[:12]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[floor_step],
        graceful_shutdown_timeout=timedelta(seconds=10),
    ):
        yield task_queue


async def _timed(
    phase: PhaseResult,
    samples: list[ErrorSample],
    call_timeout: float,
    what: str,
    workflow_id: str,
    call: Callable[[], Awaitable[FloorState]],
    expect: FloorState,
) -> FloorState | None:
    """One timed call; its answer when it is ``expect``, else None and an error counted."""
    problem: str | None = None
    state: FloorState | None = None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(call_timeout):
            state = await call()
    except TimeoutError:
        problem = f"no answer within {call_timeout:g} s"
    except Exception as exc:  # any failure of the call is what the run reports
        problem = repr(exc)
    else:
        if state != expect:
            problem = f"expected {expect}, got {state}"
    phase.latencies_ms.append((time.perf_counter() - started) * 1000)
    if problem is None:
        return state
    phase.errors += 1
    if len(samples) < MAX_ERROR_SAMPLES:
        samples.append(ErrorSample(phase.name, what, workflow_id, None, problem[:500]))
    return None


async def run_floor_phases(
    client: Client,
    task_queue: str,
    *,
    requests: int,
    concurrency: int,
    call_timeout: float,
    samples: list[ErrorSample],
    cpu_probe: CpuProbe | None = None,
) -> list[PhaseResult]:
    """Submit ``requests`` floor workflows and approve both stages, ``concurrency`` in flight.

    With ``cpu_probe`` each phase records the CPU each process spent on it.
    """
    run_id = uuid.uuid4().hex[:10]

    def submit(i: int) -> Callable[[PhaseResult], Awaitable[Any]]:
        workflow_id = f"bench-floor-{run_id}-{i}"

        async def start_and_wait() -> FloorState:
            handle = await client.start_workflow(
                FloorWorkflow.run,
                FloorInput(request_id=workflow_id),
                id=workflow_id,
                task_queue=task_queue,
            )
            return await handle.execute_update(FLOOR_READY, result_type=FloorState)

        return lambda phase: _timed(
            phase,
            samples,
            call_timeout,
            "start+ready",
            workflow_id,
            start_and_wait,
            FloorState(stage=1, status="in_review"),
        )

    submitted, states = await timed_phase(
        "submit", [submit(i) for i in range(requests)], concurrency, cpu_probe
    )
    ids = [f"bench-floor-{run_id}-{i}" for i, s in enumerate(states) if s is not None]

    def approve(workflow_id: str, stage: int) -> Callable[[PhaseResult], Awaitable[Any]]:
        handle = client.get_workflow_handle_for(FloorWorkflow.run, workflow_id)
        expect = (
            FloorState(stage=0, status="approved") if stage == 2 else FloorState(2, "in_review")
        )

        async def decide() -> FloorState:
            return await handle.execute_update(
                FLOOR_DECIDE,
                FloorDecision(actor=f"stage{stage}", stage=stage),
                result_type=FloorState,
            )

        return lambda phase: _timed(
            phase, samples, call_timeout, "update", workflow_id, decide, expect
        )

    stage1, states = await timed_phase(
        "approve_stage1", [approve(wid, 1) for wid in ids], concurrency, cpu_probe
    )
    ids = [wid for wid, s in zip(ids, states, strict=True) if s is not None]
    stage2, _ = await timed_phase(
        "approve_stage2", [approve(wid, 2) for wid in ids], concurrency, cpu_probe
    )
    return [submitted, stage1, stage2]
