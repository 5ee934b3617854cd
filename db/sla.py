"""The SLA report's queries on the read-model, and the step rows they read.

``request_steps`` (migration 0012) holds each request's stages in columns; the
activity that writes the read-model keeps it current (:func:`write_steps`). The
report reads it and ``requests`` with a handful of aggregate queries; the
percentiles are PostgreSQL's ``percentile_disc`` over whole seconds (shaping is in
``domain.sla``). :func:`read_report` runs them on two connections at once, in one
snapshot.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.directory import MAX_CHAIN
from db.models import RequestStepRow
from domain.process import RequestView
from domain.sla import OpenRequest, RequestFigures, StepFigures, WeekFigures

_STEPS = cast(Table, RequestStepRow.__table__)
DECIDED = ("approved", "rejected", "returned")


async def write_steps(session: AsyncSession, view: RequestView, at: datetime) -> None:
    """Make the request's step rows match ``view`` (written at ``at``).

    A stage decided now gets ``decided_at``: its last slot decision, else ``at``. A
    stage started again (a new ``started_at``) replaces its earlier run.
    """
    rows: list[dict[str, Any]] = []
    for stage in view.stages:
        if stage.started_at is None:
            continue
        decided_at = None
        if stage.status in DECIDED:
            decided = [s.decided_at for s in stage.slots if s.decided_at is not None]
            decided_at = max(decided) if decided else at
        rows.append(
            {
                "request_id": view.id,
                "stage_index": stage.index,
                "stage_key": stage.key,
                "request_type": view.type,
                "requester": view.requester,
                "status": str(stage.status),
                "started_at": stage.started_at,
                "reply_due": stage.reply_due,
                "decided_at": decided_at,
                "escalations": stage.escalations,
            }
        )
    if not rows:
        return
    new = insert(_STEPS)
    same_run = _STEPS.c.started_at == new.excluded.started_at
    await session.execute(
        new.on_conflict_do_update(
            index_elements=[_STEPS.c.request_id, _STEPS.c.stage_index],
            set_={
                "stage_key": new.excluded.stage_key,
                "status": new.excluded.status,
                "started_at": new.excluded.started_at,
                "reply_due": new.excluded.reply_due,
                "escalations": new.excluded.escalations,
                # A decision once seen keeps its time while the same run is shown again.
                "decided_at": case(
                    (same_run & _STEPS.c.decided_at.is_not(None), _STEPS.c.decided_at),
                    else_=new.excluded.decided_at,
                ),
            },
        ),
        rows,
    )


# --- who sees what -------------------------------------------------------------------


async def department_of(session: AsyncSession, head: str) -> list[str]:
    """``head`` and everyone whose manager chain (as stored) leads to them."""
    rows = await session.execute(
        text(
            "WITH RECURSIVE dept(id, depth) AS ("
            " SELECT id, 0 FROM users WHERE id = :head"
            " UNION ALL SELECT u.id, d.depth + 1 FROM users u JOIN dept d ON u.manager_id = d.id"
            " WHERE d.depth < :max) SELECT DISTINCT id FROM dept"
        ),
        {"head": head, "max": MAX_CHAIN},
    )
    return [r[0] for r in rows]


async def manages_anyone(session: AsyncSession, user_id: str) -> bool:
    """True if an active user of the directory has ``user_id`` as their manager."""
    found = await session.scalar(
        text("SELECT 1 FROM users WHERE manager_id = :id AND active LIMIT 1"), {"id": user_id}
    )
    return found is not None


# --- the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class SlaFilter:
    """What the report covers: ``[start, end)``, a type, the requesters (None: all)."""

    start: datetime
    end: datetime
    now: datetime
    request_type: str | None = None
    requesters: Sequence[str] | None = None
    time_zone: str = "UTC"


def _where(f: SlaFilter, type_col: str, person_col: str) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if f.request_type is not None:
        clauses.append(f"{type_col} = :rtype")
        params["rtype"] = f.request_type
    if f.requesters is not None:
        clauses.append(f"{person_col} = ANY(:people)")
        params["people"] = list(f.requesters)
    return "".join(f" AND {c}" for c in clauses), params


# Both queries read the steps through covering indexes (migrations 0012, 0014) in the
# order they group by, so nothing sorts the period's steps but each group's durations:
# whole seconds, which PostgreSQL sorts faster than floats. ``percentile_disc`` answers
# a step's own duration (nearest rank); ``percentile_cont`` would interpolate, in floats.
_STEP_AGGREGATES = """
    count(*) AS steps,
    count(decide_seconds) AS decided,
    percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY decide_seconds) AS pct,
    count(reply_due) AS with_due,
    count(*) FILTER (WHERE decided_at > reply_due
                        OR (decided_at IS NULL AND status = 'active' AND :now > reply_due))
        AS reply_breaches,
    coalesce(sum(escalations), 0) AS escalations
"""


async def step_figures(session: AsyncSession, f: SlaFilter) -> list[StepFigures]:
    """Per (type, stage) and per type (``stage_key`` None): the steps started in the period."""
    extra, params = _where(f, "request_type", "requester")
    sql = f"""
        SELECT request_type, stage_key, grouping(stage_key) AS total, min(stage_index) AS idx,
               {_STEP_AGGREGATES}
          FROM request_steps
         WHERE started_at >= :start AND started_at < :end{extra}
         GROUP BY GROUPING SETS ((request_type, stage_key), (request_type))
    """
    rows = await session.execute(
        text(sql), {"start": f.start, "end": f.end, "now": f.now, **params}
    )
    return [
        StepFigures(
            request_type=r.request_type,
            stage_key=None if r.total else r.stage_key,
            stage_index=None if r.total else r.idx,
            steps=r.steps,
            decided=r.decided,
            median_seconds=_pct(r.pct, 0),
            p90_seconds=_pct(r.pct, 1),
            with_reply_due=r.with_due,
            reply_breaches=r.reply_breaches,
            escalations=int(r.escalations),
        )
        for r in rows
    ]


async def request_figures(session: AsyncSession, f: SlaFilter) -> list[RequestFigures]:
    """Per type: the requests submitted in the period, resolved, past their resolve due."""
    extra, params = _where(f, "type", "requester")
    sql = f"""
        SELECT type, count(*) AS submitted, count(closed_at) AS resolved,
               count(resolve_due) AS with_due,
               count(*) FILTER (WHERE closed_at > resolve_due
                                   OR (closed_at IS NULL AND :now > resolve_due)) AS breaches
          FROM requests
         WHERE created_at >= :start AND created_at < :end{extra}
         GROUP BY type
    """
    rows = await session.execute(
        text(sql), {"start": f.start, "end": f.end, "now": f.now, **params}
    )
    return [RequestFigures(r.type, r.submitted, r.resolved, r.with_due, r.breaches) for r in rows]


async def week_figures(session: AsyncSession, f: SlaFilter) -> list[WeekFigures]:
    """The steps started in the period, by the ISO week (in ``f.time_zone``) they started.

    One index range scan per week (at most 53), rather than sorting the period's steps.
    """
    extra, params = _where(f, "request_type", "requester")
    sql = f"""
        SELECT w.week::date AS week, a.*
          FROM generate_series(date_trunc('week', :start AT TIME ZONE :tz),
                               :end AT TIME ZONE :tz, interval '1 week') AS w(week)
         CROSS JOIN LATERAL (
            SELECT {_STEP_AGGREGATES}
              FROM request_steps
             WHERE started_at >= greatest(:start, w.week AT TIME ZONE :tz)
               AND started_at < least(:end, (w.week + interval '1 week') AT TIME ZONE :tz){extra}
         ) AS a
         WHERE a.steps > 0
         ORDER BY 1
    """
    rows = await session.execute(
        text(sql),
        {"start": f.start, "end": f.end, "now": f.now, "tz": f.time_zone, **params},
    )
    return [
        WeekFigures(
            week_start=r.week,
            steps=r.steps,
            decided=r.decided,
            median_seconds=_pct(r.pct, 0),
            p90_seconds=_pct(r.pct, 1),
            reply_breaches=r.reply_breaches,
            escalations=int(r.escalations),
        )
        for r in rows
    ]


async def slowest_open(session: AsyncSession, f: SlaFilter, top: int) -> list[OpenRequest]:
    """The ``top`` open requests submitted longest ago (whatever the period), oldest first."""
    extra, params = _where(f, "r.type", "r.requester")
    sql = f"""
        SELECT r.id, r.type, r.title, r.requester, r.amount, r.stage_key, r.current_approvers,
               r.created_at, r.resolve_due, s.started_at AS step_started, s.reply_due
          FROM requests r
          LEFT JOIN request_steps s ON s.request_id = r.id AND s.stage_index = r.stage_index
         WHERE r.closed_at IS NULL{extra}
         ORDER BY r.created_at, r.id
         LIMIT :top
    """
    rows = await session.execute(text(sql), {"top": top, **params})
    return [
        OpenRequest(
            id=r.id,
            request_type=r.type,
            title=r.title,
            requester=r.requester,
            amount=r.amount,
            stage_key=r.stage_key,
            waiting_on=tuple(r.current_approvers or ()),
            submitted_at=r.created_at,
            step_started_at=r.step_started,
            reply_due=r.reply_due,
            resolve_due=r.resolve_due,
        )
        for r in rows
    ]


def _pct(values: Sequence[int | None] | None, i: int) -> float | None:
    """The ``i``-th of ``percentile_disc(ARRAY[...])``'s answers (None for no input)."""
    value = values[i] if values else None
    return None if value is None else float(value)


# --- the whole report ----------------------------------------------------------------


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?")
_CONSISTENT = {"isolation_level": "REPEATABLE READ"}


@asynccontextmanager
async def one_snapshot(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[AsyncSession, AsyncSession]]:
    """Two sessions that read one snapshot of the database (``REPEATABLE READ``, the
    second importing the first one's ``pg_export_snapshot``), for queries run at once,
    each planned for its own period (:func:`plan_each_time`)."""
    async with sessions() as first, sessions() as second:
        await first.connection(execution_options=_CONSISTENT)
        snapshot = str(await first.scalar(text("SELECT pg_export_snapshot()")))
        if not _SNAPSHOT_ID.fullmatch(snapshot):  # it is spliced into a statement
            raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
        await second.connection(execution_options=_CONSISTENT)
        await second.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        await plan_each_time(first)
        await plan_each_time(second)
        yield first, second


async def plan_each_time(session: AsyncSession) -> None:
    """Plan the report's queries for the values they run with, in this transaction.

    The driver prepares each statement once per connection; from the sixth run on,
    PostgreSQL may switch to a generic plan, made without knowing the period, and for
    these queries that plan is twice as slow (a year of every request: 300 ms rather
    than 150). Planning takes well under a millisecond of that.
    """
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@dataclass(frozen=True)
class ReportFigures:
    """Everything the report reads, as of one snapshot of the read-model."""

    steps: list[StepFigures]
    requests: list[RequestFigures]
    weeks: list[WeekFigures]
    slowest: list[OpenRequest]


async def read_report(
    sessions: async_sessionmaker[AsyncSession], f: SlaFilter, top: int
) -> ReportFigures:
    """The report's four queries, on two connections at once, in one snapshot.

    The step figures take about as long as the three others together, so each half
    gets a connection (two cores serve a year of every request in about half the time).
    The second connection imports the first one's snapshot (``pg_export_snapshot``),
    so the halves agree as if they were one query: a request closed meanwhile is
    closed in both or in neither.
    """
    async with one_snapshot(sessions) as (first, second):

        async def steps_and_slowest() -> tuple[list[StepFigures], list[OpenRequest]]:
            return await step_figures(first, f), await slowest_open(first, f, top)

        async def requests_and_weeks() -> tuple[list[RequestFigures], list[WeekFigures]]:
            return await request_figures(second, f), await week_figures(second, f)

        (steps, slowest), (requests, weeks) = await asyncio.gather(
            steps_and_slowest(), requests_and_weeks()
        )
    return ReportFigures(steps=steps, requests=requests, weeks=weeks, slowest=slowest)
