"""A phase of a benchmark: jobs run with a bound on how many are in flight, timed as one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.cpu import spent
from bench.report import PhaseResult
from bench.stack import CpuProbe

MAX_ERROR_SAMPLES = 5
"""Failed calls shown per run (the first ones): enough to see what went wrong."""


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
