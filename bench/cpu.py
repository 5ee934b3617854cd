"""CPU time of the stack's processes while the benchmark measures: where the CPU goes.

A probe (:data:`bench.stack.CpuProbe`) gives, per named process, the CPU
seconds (user + system) it has used since it started; the benchmark reads it
before and after each phase, so each phase knows what every process spent on
it (:func:`spent`). The table (:func:`render_cpu`) adds the phases up per
column and divides by the approvals they made.

A process counts with its descendants: PostgreSQL is the postmaster, its live
backends and the backends that have ended meanwhile (the kernel adds an ended
child's time to its parent's "children" time when the parent reaps it). psutil
reads ``/proc/<pid>/stat`` on Linux; a process it cannot read is "n/a".
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import psutil

CpuSeconds = Mapping[str, float | None]


def _own_and_reaped(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def process_cpu_seconds(pid: int, *, descendants: bool = True) -> float | None:
    """CPU seconds used by ``pid`` (and, with ``descendants``, every process below it)."""
    try:
        proc = psutil.Process(pid)
        total = _own_and_reaped(proc)
        below = proc.children(recursive=True) if descendants else []
    except psutil.Error:
        return None
    for child in below:
        # A backend that ends between the listing and the reading: its parent counts it.
        with contextlib.suppress(psutil.Error):
            total += _own_and_reaped(child)
    return total


def spent(before: CpuSeconds, after: CpuSeconds) -> dict[str, float | None]:
    """CPU seconds each process used between two readings.

    A process first seen in ``after`` started in between: all its time counts.
    One that reads less than before was restarted under the same name: "n/a".
    """
    used: dict[str, float | None] = {}
    for name, now in after.items():
        then = before.get(name, 0.0)
        if now is None or then is None or now < then:
            used[name] = None
        else:
            used[name] = now - then
    return used


def _total(readings: Sequence[CpuSeconds], name: str) -> float | None:
    values = [r.get(name) for r in readings if name in r]
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def render_cpu(columns: Sequence[tuple[str, Sequence[CpuSeconds], int | None]]) -> list[str]:
    """A row per process, a column per ``(title, each phase's CPU, approvals)``.

    The last rows: every process together, and that total in CPU milliseconds
    per approval (for columns with approvals).
    """
    names: list[str] = []
    for _, readings, _ in columns:
        for reading in readings:
            # A process seen only in a later column goes after the one it follows there
            # (the floor's own Temporal under the stack's), not at the end.
            previous: str | None = None
            for name in reading:
                if name not in names:
                    names.insert(names.index(previous) + 1 if previous else len(names), name)
                previous = name
    width = max([24, *(len(n) + 2 for n in names)])

    def cell(value: float | None) -> str:
        return f"{'n/a' if value is None else f'{value:.2f}':>16}"

    header = f"{'process':<{width}}" + "".join(f"{title:>16}" for title, _, _ in columns)
    lines = [header, "-" * len(header)]
    for name in names:
        lines.append(f"{name:<{width}}" + "".join(cell(_total(r, name)) for _, r, _ in columns))
    totals = [
        sum(t for n in names if (t := _total(r, n)) is not None) if r else None
        for _, r, _ in columns
    ]
    lines.append(f"{'all processes':<{width}}" + "".join(cell(t) for t in totals))
    per_approval = [
        f"{t / approvals * 1000:>16.1f}" if t is not None and approvals else f"{'-':>16}"
        for t, (_, _, approvals) in zip(totals, columns, strict=True)
    ]
    lines.append(f"{'CPU ms per approval':<{width}}" + "".join(per_approval))
    return lines
