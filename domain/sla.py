"""The SLA report's shaping: rates, percentiles, ISO weeks, the report's rows (pure).

The figures come from the read-model (``db.sla``, which computes the percentiles in
SQL, by nearest rank over whole seconds); this module turns them into the report's
rows (by type and stage, by week, the slowest open requests), which the API serves
as they are and :mod:`domain.sla_exports` lays out as the CSV and XLSX tables.

A step belongs to the period (and the ISO week) in which it started; a request to
the one in which it was submitted. Dues (``reply_due``, ``resolve_due``) are stored
as instants already counted in working time where the policy counts it, so a
breach is a plain comparison of instants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

HOUR = Decimal(3600)
TWO_PLACES = Decimal("0.01")
ONE_PLACE = Decimal("0.1")


@dataclass(frozen=True)
class StepFigures:
    """A (type, stage) group's step figures as counted by the database; ``stage_key``
    None: all stages of the type together."""

    request_type: str
    stage_key: str | None
    stage_index: int | None
    steps: int
    decided: int
    median_seconds: float | None
    p90_seconds: float | None
    with_reply_due: int
    reply_breaches: int
    escalations: int


@dataclass(frozen=True)
class RequestFigures:
    """A type's request-level figures: submitted in the period, resolved, breaches."""

    request_type: str
    submitted: int
    resolved: int
    with_resolve_due: int
    resolve_breaches: int


@dataclass(frozen=True)
class WeekFigures:
    """The steps that started in one ISO week (``week_start`` is its Monday)."""

    week_start: date
    steps: int
    decided: int
    median_seconds: float | None
    p90_seconds: float | None
    reply_breaches: int
    escalations: int


@dataclass(frozen=True)
class OpenRequest:
    """An open request and whom it waits on."""

    id: str
    request_type: str
    title: str
    requester: str
    amount: Decimal | None
    stage_key: str | None
    waiting_on: tuple[str, ...]
    submitted_at: datetime
    step_started_at: datetime | None
    reply_due: datetime | None
    resolve_due: datetime | None


@dataclass(frozen=True)
class ReportRow:
    """One line of the report (and of its exports)."""

    request_type: str
    type_title: str
    stage_key: str | None
    stage_name: str
    steps: int
    decided: int
    median_hours: Decimal | None
    p90_hours: Decimal | None
    reply_breaches: int
    reply_breach_rate: Decimal | None
    """Percent of the steps with a reply due, one decimal."""
    escalations: int
    submitted: int | None
    resolved: int | None
    resolve_breaches: int | None
    resolve_breach_rate: Decimal | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by nearest rank, as PostgreSQL's ``percentile_disc``: the first
    value (in order) whose position ``i / n`` reaches ``q``; one of the values, never
    an interpolation between two."""
    if not 0 <= q <= 1:
        raise ValueError("q must lie between 0 and 1")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def hours(seconds: float | None) -> Decimal | None:
    """Seconds as hours, two decimals."""
    if seconds is None:
        return None
    return (Decimal(str(seconds)) / HOUR).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` of ``whole`` in percent, one decimal; None when there is no whole."""
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP)


def iso_week(day: date) -> str:
    """``2026-W49``: the ISO week of ``day``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def report_rows(
    steps: Sequence[StepFigures],
    requests: Sequence[RequestFigures],
    type_titles: dict[str, str],
    stage_names: dict[tuple[str, str], str],
    all_stages: str,
) -> list[ReportRow]:
    """The report's rows: per type, its total first (with the request figures), then its
    stages in route order. A type with requests but no started step still gets a row."""
    by_type: dict[str, list[StepFigures]] = {}
    for s in steps:
        by_type.setdefault(s.request_type, []).append(s)
    request_by_type = {r.request_type: r for r in requests}
    rows: list[ReportRow] = []
    for request_type in sorted(set(by_type) | set(request_by_type)):
        group = by_type.get(request_type, [])
        total = next((s for s in group if s.stage_key is None), None)
        stages = sorted(
            (s for s in group if s.stage_key is not None),
            key=lambda s: (s.stage_index if s.stage_index is not None else 0, s.stage_key or ""),
        )
        req = request_by_type.get(request_type)
        title = type_titles.get(request_type, request_type)
        rows.append(
            _row(
                total or _empty(request_type),
                title,
                all_stages,
                req,
            )
        )
        for s in stages:
            name = stage_names.get((request_type, s.stage_key or ""), s.stage_key or "")
            rows.append(_row(s, title, name, None))
    return rows


def _empty(request_type: str) -> StepFigures:
    return StepFigures(request_type, None, None, 0, 0, None, None, 0, 0, 0)


def _row(s: StepFigures, title: str, stage: str, req: RequestFigures | None) -> ReportRow:
    return ReportRow(
        request_type=s.request_type,
        type_title=title,
        stage_key=s.stage_key,
        stage_name=stage,
        steps=s.steps,
        decided=s.decided,
        median_hours=hours(s.median_seconds),
        p90_hours=hours(s.p90_seconds),
        reply_breaches=s.reply_breaches,
        reply_breach_rate=rate(s.reply_breaches, s.with_reply_due),
        escalations=s.escalations,
        submitted=req.submitted if req else None,
        resolved=req.resolved if req else None,
        resolve_breaches=req.resolve_breaches if req else None,
        resolve_breach_rate=rate(req.resolve_breaches, req.with_resolve_due) if req else None,
    )


# --- the trend by week and the slowest open requests ------------------------------


@dataclass(frozen=True)
class WeekRow:
    """One ISO week of the report's trend (and of its export)."""

    week: str
    week_start: date
    steps: int
    decided: int
    median_hours: Decimal | None
    p90_hours: Decimal | None
    reply_breaches: int
    escalations: int


@dataclass(frozen=True)
class OpenRow:
    """One of the slowest open requests, as the report shows it."""

    id: str
    request_type: str
    title: str
    requester: str
    amount: Decimal | None
    stage_key: str | None
    stage_name: str | None
    waiting_on: tuple[str, ...]
    submitted_at: datetime
    open_hours: Decimal | None
    """Hours since submission, at the report's ``now``."""
    step_started_at: datetime | None
    reply_due: datetime | None
    resolve_due: datetime | None


def week_rows(weeks: Sequence[WeekFigures]) -> list[WeekRow]:
    """The trend's rows, one per ISO week, in the order given."""
    return [
        WeekRow(
            week=iso_week(w.week_start),
            week_start=w.week_start,
            steps=w.steps,
            decided=w.decided,
            median_hours=hours(w.median_seconds),
            p90_hours=hours(w.p90_seconds),
            reply_breaches=w.reply_breaches,
            escalations=w.escalations,
        )
        for w in weeks
    ]


def open_rows(
    requests: Sequence[OpenRequest], now: datetime, stage_names: dict[tuple[str, str], str]
) -> list[OpenRow]:
    """The slowest open requests' rows, with their stage's name and hours open at ``now``."""
    return [
        OpenRow(
            **vars(o),
            stage_name=stage_names.get((o.request_type, o.stage_key)) if o.stage_key else None,
            open_hours=hours((now - o.submitted_at).total_seconds()),
        )
        for o in requests
    ]
