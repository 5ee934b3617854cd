"""Seed many requests into the read-model, then time the SLA report's queries.

Run it from the repository root (``make bench-sla``; ``make bench-seed`` runs it first)::

    .venv/bin/python -m bench.sla --count 100000

Seeding writes read-model rows, not workflows: ``--count`` requests of five request
types by the demo organisation's people, submitted over the last year, each with three
stages in ``request_steps`` (a reply due 8 hours after each start, decisions 0 to 16
hours later, one in ten requests still open at its last stage, one stage in ten
escalated), with one ``INSERT ... SELECT FROM generate_series`` statement, then
``VACUUM ANALYZE`` (as autovacuum would soon). It runs on a throwaway embedded
PostgreSQL unless ``--database-url`` names a migrated database (the rows stay there).

Then each query of the report (``db.sla``) runs ``--runs`` times for three reports: a
year of everything (the worst case), a quarter of one type, a quarter of one
department; it prints each query's median, their sum (one by one) and the median of the
whole report as the API reads it (``db.sla.read_report``: two connections at once, one
snapshot). Figures only: the target is under 200 ms for a report at 100,000 requests
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import sla

ROOT = Path(__file__).resolve().parents[1]
TYPES = (
    "big_customer_contract",
    "customer_discount",
    "customer_complaint",
    "overdue_receivable",
    "customer_operating_expense",
)

_SEED = """
WITH r AS (
INSERT INTO requests (id, type, title, requester, customer, amount, fields, policy_type,
                      policy_version, route, status, stage_index, stage_key, resolve_due,
                      overdue, current_approvers, last_seq, created_at, updated_at, closed_at)
SELECT id, type, 'Bench ' || g, requester, 'Customer ' || (g % 500), (g % 1000) * 100,
       '{}'::jsonb, type, 1, '{"stages": []}'::jsonb,
       CASE WHEN open THEN 'in_review' ELSE 'approved' END,
       CASE WHEN open THEN 2 END, CASE WHEN open THEN 'stage_2' END,
       created + interval '40 hours', false,
       CASE WHEN open THEN ARRAY[requester] ELSE ARRAY[]::varchar[] END, 3,
       created, created,
       CASE WHEN open THEN NULL ELSE created + interval '36 hours' END
  FROM (SELECT g, md5('sla-bench-' || CAST(:run AS text) || '-' || g)::uuid::text AS id,
               (CAST(:types AS text[]))[1 + g % cardinality(CAST(:types AS text[]))] AS type,
               (CAST(:people AS text[]))[1 + (g * 7) % cardinality(CAST(:people AS text[]))]
                   AS requester,
               g % 10 = 0 AS open,
               CAST(:now AS timestamptz) - (g % 365) * interval '1 day'
                   - (g % 24) * interval '1 hour' AS created
          FROM generate_series(1, CAST(:count AS int)) g) s
RETURNING id, type, requester, created_at, closed_at)
INSERT INTO request_steps (request_id, stage_index, stage_key, request_type, requester,
                           status, started_at, reply_due, decided_at, escalations)
SELECT r.id, s, 'stage_' || s, r.type, r.requester,
       CASE WHEN r.closed_at IS NULL AND s = 2 THEN 'active' ELSE 'approved' END,
       r.created_at + s * interval '10 hours',
       r.created_at + s * interval '10 hours' + interval '8 hours',
       CASE WHEN r.closed_at IS NULL AND s = 2 THEN NULL
            ELSE r.created_at + s * interval '10 hours' + random() * interval '16 hours' END,
       CASE WHEN random() < 0.1 THEN 1 ELSE 0 END
  FROM r CROSS JOIN generate_series(0, 2) s
"""


async def seed(engine: AsyncEngine, sessions: Any, count: int, now: datetime) -> float:
    """Write ``count`` requests and their steps; the seconds it took."""
    from db.directory import load_org_file

    await load_org_file(sessions, ROOT / "org" / "demo.yaml")
    started = time.perf_counter()
    async with sessions() as session:
        people = list((await session.execute(text("SELECT id FROM users WHERE active"))).scalars())
        run = f"{int(now.timestamp())}"
        await session.execute(text("SELECT setseed(0.42)"))
        await session.execute(
            text(_SEED),
            {"run": run, "types": list(TYPES), "people": people, "count": count, "now": now},
        )
        await session.commit()
    # As autovacuum would soon: statistics, and the visibility map index-only scans need.
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE requests"))
        await autocommit.execute(text("VACUUM ANALYZE request_steps"))
    return time.perf_counter() - started


async def _median_ms(
    sessions: Any, runs: int, query: Callable[[AsyncSession], Awaitable[object]]
) -> float:
    times = []
    for _ in range(runs):
        async with sessions() as session:
            await sla.plan_each_time(session)  # as the report does
            started = time.perf_counter()
            await query(session)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def time_reports(sessions: Any, runs: int, now: datetime, out: Any) -> None:
    """Print each query's median time for three reports."""
    async with sessions() as session:
        department = await sla.department_of(session, "sh_zhou")
    year = sla.SlaFilter(start=now - timedelta(days=366), end=now, now=now)
    quarter = now - timedelta(days=91)
    reports = {
        "a year, everything": year,
        "a quarter, one type": sla.SlaFilter(
            start=quarter, end=now, now=now, request_type=TYPES[0]
        ),
        "a quarter, sh_zhou's department": sla.SlaFilter(
            start=quarter, end=now, now=now, requesters=department
        ),
    }
    queries: dict[str, Callable[[sla.SlaFilter], Callable[[AsyncSession], Awaitable[object]]]] = {
        "steps": lambda f: lambda s: sla.step_figures(s, f),
        "requests": lambda f: lambda s: sla.request_figures(s, f),
        "weeks": lambda f: lambda s: sla.week_figures(s, f),
        "slowest open": lambda f: lambda s: sla.slowest_open(s, f, 10),
    }
    head = "".join(f"{q:>14}" for q in queries)
    print(f"{'report':<34}{head}{'one by one':>14}{'the report':>14}", file=out)
    for name, f in reports.items():
        cells = [await _median_ms(sessions, runs, make(f)) for make in queries.values()]
        whole = await _whole_ms(sessions, runs, f)
        print(
            f"{name:<34}"
            + "".join(f"{c:>11.1f} ms" for c in cells)
            + f"{sum(cells):>11.1f} ms{whole:>11.1f} ms",
            file=out,
        )
    print(
        "the report: what GET /v1/reports/sla waits for (db.sla.read_report: the four "
        "queries on two connections at once, one snapshot); target under 200 ms",
        file=out,
    )


async def _whole_ms(sessions: Any, runs: int, f: sla.SlaFilter) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await sla.read_report(sessions, f, 10)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@asynccontextmanager
async def bench_database(
    url: str | None, prefix: str
) -> AsyncIterator[tuple[str, AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """``url`` (a migrated database), else a throwaway embedded one; its URL, engine and
    sessions (the benches seed and time on it)."""
    from cli.embedded_pg import throwaway_database
    from db.engine import make_engine, make_sessionmaker

    with ExitStack() as stack:
        url = url or stack.enter_context(throwaway_database(prefix))
        engine = make_engine(url)
        try:
            yield url, engine, make_sessionmaker(engine)
        finally:
            await engine.dispose()


def print_load(out: Any) -> None:
    """The load average before timing: figures on a busy machine read differently."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before timing: {load} ({os.cpu_count()} cores)", file=out)


async def main(argv: list[str] | None = None, out: Any = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="bench.sla", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="requests to seed")
    parser.add_argument("--runs", type=int, default=5, help="runs per query (median)")
    parser.add_argument("--database-url", help="a migrated database (default: a throwaway one)")
    args = parser.parse_args(argv)
    async with bench_database(args.database_url, "approvals_sla") as (_, engine, sessions):
        now = datetime.now(UTC)
        seconds = await seed(engine, sessions, args.count, now)
        print(
            f"seeded {args.count:,} requests ({3 * args.count:,} steps) in {seconds:.1f} s",
            file=out,
        )
        print_load(out)
        await time_reports(sessions, args.runs, now, out)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
