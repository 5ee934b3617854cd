"""What one benchmark run measured, and how it is printed.

A :class:`PhaseResult` per phase (every request timed on its own, and the CPU
each process spent when the stack's processes can be seen), gathered into a
:class:`BenchReport`; the headline figures set the project beside the bare-Temporal
floor (:func:`headlines`), and :func:`render` prints the tables.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.cpu import render_cpu

WRITES = ("submit", "approve_stage1", "approve_stage2")
READS = ("inbox", "list")


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
    failed_rounds: int = 0
    """With ``--rounds``: how many rounds had errors (this report is the last round's)."""

    @property
    def errors(self) -> int:
        runs = (self.phases, self.serial_phases, self.floor_phases, self.floor_serial_phases)
        return sum(p.errors for run in runs for p in run)

    @property
    def failed(self) -> bool:
        return self.errors > 0 or self.failed_rounds > 0


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
    lines += render_samples(report.errors, report.samples, "requests")
    return "\n".join(lines) + "\n"


def render_samples(errors: int, samples: Sequence[ErrorSample], what: str) -> list[str]:
    """How many ``what`` failed, and the first ones with what the server answered."""
    if not samples:
        return []
    lines = ["", f"{errors} failed {what}; the first {len(samples)}:"]
    lines += [f"  [{e.phase}] {e.method} {e.path} -> {e.status}: {e.body}" for e in samples]
    return lines


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


def render_rounds(reports: Sequence[BenchReport]) -> str:
    """Each headline ratio round by round, and its median: one run on a busy machine can
    be a fifth off, the median of several much less."""
    if not reports or not (reports[0].phases and reports[0].floor_phases):
        return ""
    concurrency = int(reports[0].settings.get("concurrency", "0"))
    rows = [headlines(r, concurrency) for r in reports]
    header = f"{'figure':<28}{'rounds (project/floor)':<40}{'median':>8}  target"
    lines = [f"== project vs floor, {len(reports)} rounds", header, "-" * (len(header) + 16)]
    for i, first in enumerate(rows[0]):
        ratios = [x for r in rows if (x := r[i].ratio) is not None]
        each = " ".join(f"{x:.2f}x" for x in ratios)
        if not ratios:
            lines.append(f"{first.figure:<28}{'-':<40}{'-':>8}  {first.target}".rstrip())
            continue
        mid = statistics.median(ratios)
        median_row = Headline(first.figure, first.unit, mid, 1.0, first.target)
        lines.append(
            f"{first.figure:<28}{each:<40}{mid:>7.2f}x  {_target_note(median_row)}".rstrip()
        )
    return "\n".join(lines) + "\n"
