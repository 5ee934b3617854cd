"""What one benchmark run measured, and how it is printed.

A :class:`PhaseResult` per phase (every request timed on its own, and the CPU
each process spent when the stack's processes can be seen), gathered into a
:class:`BenchReport`; the headline figures set the project beside the bare-Temporal
floor (:func:`headlines`), and :func:`render` prints the tables.

There are two floors. The **shared floor** runs on the stack's own Temporal server,
the one the project uses too: the ratios to it are the headline, the one the targets
apply to (the figures published before had only this floor). The **own floor** runs
on a Temporal dev server of its own with the same on-disk store
(:mod:`bench.own_temporal`): what Temporal does with nothing else on its server.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Callable, Mapping, Sequence
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
    and ``floor_serial_phases`` the same for the bare-Temporal floor on the stack's
    shared server (none with ``--no-floor``), ``own_floor_phases`` and
    ``own_floor_serial_phases`` for the floor on a server of its own (none with
    ``--no-floor`` or ``--no-own-floor``).
    """

    phases: list[PhaseResult]
    samples: list[ErrorSample]
    settings: dict[str, str]
    machine: dict[str, str]
    customer: str
    serial_phases: list[PhaseResult] = field(default_factory=list)
    floor_phases: list[PhaseResult] = field(default_factory=list)
    floor_serial_phases: list[PhaseResult] = field(default_factory=list)
    own_floor_phases: list[PhaseResult] = field(default_factory=list)
    own_floor_serial_phases: list[PhaseResult] = field(default_factory=list)
    failed_rounds: int = 0
    """With ``--rounds``: how many rounds had errors (this report is the last round's)."""

    @property
    def errors(self) -> int:
        runs = (
            self.phases,
            self.serial_phases,
            self.floor_phases,
            self.floor_serial_phases,
            self.own_floor_phases,
            self.own_floor_serial_phases,
        )
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
    """One row of the comparison: a figure of the project, of both floors, and the target.

    ``floor`` is the shared floor's (on the stack's server) and ``target`` applies to
    :attr:`ratio`, the project's to it; ``own_floor`` is the floor's on a server of its
    own (None when not measured).
    """

    figure: str
    unit: str
    project: float | None
    floor: float | None
    target: str = ""
    own_floor: float | None = None

    @property
    def ratio(self) -> float | None:
        """project / shared floor (latency: how many times slower; throughput: what fraction)."""
        return _ratio(self.project, self.floor)

    @property
    def own_ratio(self) -> float | None:
        """project / own floor."""
        return _ratio(self.project, self.own_floor)


def _ratio(project: float | None, floor: float | None) -> float | None:
    if project is None or not floor:
        return None
    return project / floor


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
    """The comparison rows: project vs both floors, one at a time and ``concurrency`` in flight."""
    many = f"{concurrency} in flight"
    serial = (report.serial_phases, report.floor_serial_phases, report.own_floor_serial_phases)
    loaded = (report.phases, report.floor_phases, report.own_floor_phases)

    def row(
        figure: str,
        unit: str,
        measure: Callable[[Sequence[PhaseResult]], float | None],
        runs: tuple[list[PhaseResult], list[PhaseResult], list[PhaseResult]],
        target: str = "",
    ) -> Headline:
        project, shared, own = (measure(run) if run else None for run in runs)
        return Headline(figure, unit, project, shared, target, own_floor=own)

    return [
        row(
            "decision p50, 1 in flight",
            "ms",
            decision_p50,
            serial,
            f"<= {TARGET_DECISION_SERIAL:g}x",
        ),
        row(f"decision p50, {many}", "ms", decision_p50, loaded),
        row(
            f"approvals/s, {many}",
            "/s",
            approvals_per_second,
            loaded,
            f">= {TARGET_THROUGHPUT:g}x",
        ),
        row(f"submit p50, {many}", "ms", submit_p50, loaded),
    ]


def _target_note(row: Headline) -> str:
    if not row.target or row.ratio is None:
        return row.target
    bound = float(row.target.split()[1].rstrip("x"))
    met = row.ratio <= bound if row.target.startswith("<=") else row.ratio >= bound
    return f"{row.target} ({'met' if met else 'not yet'})"


FLOOR_LEGEND = (
    "shared floor: bare Temporal on the stack's server, the one the project uses; the "
    "targets apply to project/shared",
    "own floor:    bare Temporal on a dev server of its own, same on-disk SQLite store, "
    "nothing else on it",
)


def _cell(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f} {unit}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def render_comparison(rows: Sequence[Headline]) -> list[str]:
    """The side-by-side table: project, shared floor, project/shared and its target, then
    (when measured) the own floor and project/own."""
    own = any(row.own_floor is not None for row in rows)
    header = (
        f"{'figure':<28}{'project':>12}{'shared floor':>14}{'project/shared':>16}  {'target':<18}"
    )
    if own:
        header += f"{'own floor':>12}{'project/own':>13}"
    lines = [header.rstrip(), "-" * max(len(header), 92)]
    for row in rows:
        line = (
            f"{row.figure:<28}{_cell(row.project, row.unit):>12}"
            f"{_cell(row.floor, row.unit):>14}{_times(row.ratio):>16}  "
            f"{_target_note(row):<18}"
        )
        if own:
            line += f"{_cell(row.own_floor, row.unit):>12}{_times(row.own_ratio):>13}"
        lines.append(line.rstrip())
    legend = FLOOR_LEGEND if own else FLOOR_LEGEND[:1]
    return [*lines, *legend]


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


SHARED_TITLE = "shared floor (bare Temporal on the stack's server)"
OWN_TITLE = "own floor (bare Temporal on a server of its own)"


def render(report: BenchReport) -> str:
    """The report as the tables and notes the benchmark prints."""
    concurrency = int(report.settings.get("concurrency", "0"))
    runs = [
        (f"project, {concurrency} in flight", report.phases),
        ("project, 1 in flight", report.serial_phases),
        (f"{SHARED_TITLE}, {concurrency} in flight", report.floor_phases),
        (f"{SHARED_TITLE}, 1 in flight", report.floor_serial_phases),
        (f"{OWN_TITLE}, {concurrency} in flight", report.own_floor_phases),
        (f"{OWN_TITLE}, 1 in flight", report.own_floor_serial_phases),
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
    own = [*report.own_floor_phases, *report.own_floor_serial_phases]
    if not any(p.cpu is not None for p in (*project, *floor, *own)):
        return []

    def cpu(phases: Sequence[PhaseResult]) -> list[Mapping[str, float | None]]:
        return [p.cpu for p in phases if p.cpu is not None]

    columns: list[tuple[str, Sequence[Mapping[str, float | None]], int | None]] = []
    if project:
        columns.append(("project writes", cpu(_by_name(project, *WRITES)), approved(project)))
        columns.append(("project reads", cpu(_by_name(project, *READS)), None))
    if floor:
        columns.append(("shared floor", cpu(floor), approved(floor)))
    if own:
        columns.append(("own floor", cpu(own), approved(own)))
    return [
        "== CPU seconds per process while measuring (user + system)",
        *render_cpu(columns),
        "(writes: submit and both decisions, both passes; reads: inbox and list;",
        " shared floor: on the stack's temporal; own floor: on temporal (floor's own);",
        " the floors' worker runs in the bench process)",
        "",
    ]


def render_rounds(reports: Sequence[BenchReport]) -> str:
    """Each ratio round by round with its median, then each figure's median: one run on a
    busy machine can be a fifth off, the median of several much less.

    The ratios to the shared floor come first (the targets apply to them), then those to
    the own floor; the figures' medians cover the project and both floors, so the floors
    can be quoted too (also with ``--floor-only``).
    """
    if not reports:
        return ""
    first = reports[0]
    concurrency = int(first.settings.get("concurrency", "0"))
    rows = [headlines(r, concurrency) for r in reports]
    n = len(reports)
    lines: list[str] = []
    if first.phases and first.floor_phases:
        lines += _ratio_rounds(
            f"== project vs shared floor, {n} rounds (the ratios the targets apply to)",
            rows,
            lambda h: h.ratio,
            targets=True,
        )
    if first.phases and first.own_floor_phases:
        lines += _ratio_rounds(
            f"== project vs own floor, {n} rounds", rows, lambda h: h.own_ratio, targets=False
        )
    lines += _median_figures(f"== median figures over {n} rounds", rows)
    return "\n".join(lines) + "\n" if lines else ""


def _ratio_rounds(
    title: str,
    rows: Sequence[Sequence[Headline]],
    ratio_of: Callable[[Headline], float | None],
    *,
    targets: bool,
) -> list[str]:
    header = f"{'figure':<28}{'rounds (project/floor)':<40}{'median':>8}"
    header += "  target" if targets else ""
    lines = [title, header, "-" * (len(header) + (16 if targets else 0))]
    for i, headline in enumerate(rows[0]):
        target = headline.target if targets else ""
        ratios = [x for r in rows if (x := ratio_of(r[i])) is not None]
        if not ratios:
            lines.append(f"{headline.figure:<28}{'-':<40}{'-':>8}  {target}".rstrip())
            continue
        each = " ".join(f"{x:.2f}x" for x in ratios)
        mid = statistics.median(ratios)
        note = _target_note(Headline(headline.figure, headline.unit, mid, 1.0, target))
        lines.append(f"{headline.figure:<28}{each:<40}{mid:>7.2f}x  {note}".rstrip())
    return [*lines, ""]


def _median_figures(title: str, rows: Sequence[Sequence[Headline]]) -> list[str]:
    """Each figure's median over the rounds, for the project and each floor measured."""
    columns: list[tuple[str, Callable[[Headline], float | None]]] = [
        ("project", lambda h: h.project),
        ("shared floor", lambda h: h.floor),
        ("own floor", lambda h: h.own_floor),
    ]
    measured = [
        (name, get) for name, get in columns if any(get(h) is not None for r in rows for h in r)
    ]
    if not measured:
        return []
    header = f"{'figure':<28}" + "".join(f"{name:>14}" for name, _ in measured)
    lines = [title, header, "-" * len(header)]
    for i, headline in enumerate(rows[0]):
        cells = ""
        for _, get in measured:
            values = [x for r in rows if (x := get(r[i])) is not None]
            mid = statistics.median(values) if values else None
            cells += f"{_cell(mid, headline.unit):>14}"
        lines.append(f"{headline.figure:<28}{cells}")
    names = [name for name, _ in measured]
    legend = [FLOOR_LEGEND[0]] if "shared floor" in names else []
    legend += [FLOOR_LEGEND[1]] if "own floor" in names else []
    return [*lines, *legend, ""]
