"""Do the API's hot reads suffer from PostgreSQL's generic plans? Time each with and without.

Run it from the repository root (``make bench-plans``)::

    .venv/bin/python -m bench.plans --count 100000

The driver (asyncpg, through SQLAlchemy) prepares each statement once per connection;
from its sixth execution PostgreSQL may switch to a *generic* plan, made without the
parameter values (``plan_cache_mode = auto``). For the SLA report's queries that plan
was twice as slow (``db.sla.plan_each_time``). This bench asks the same of the other
hot reads.

Seeding: the SLA bench's requests and stages (``bench.sla.seed``: ``--count`` requests
over a year, one in ten open), then, in one ``INSERT ... SELECT`` statement, what the
reads below need: three assignments per request (stage 2 of three in four requests to
one of three heads, so their inboxes hold thousands of steps; the rest spread over
everyone; the open requests' last stage pending), the audit trail (a submission and
one approval per decided stage), an in-app notice per assignment and an e-mail
delivery per notice (one in a hundred failed). Then ``VACUUM ANALYZE``.

Timing: each case runs ``--runs`` times in a row on one fresh connection through the
real functions (``db.request_queries``, ``db.deliveries``, ``db.notifications``) on an
``AsyncSession``, once with ``plan_cache_mode = auto`` (PostgreSQL's default) and once
with ``force_custom_plan``, each on its own connection. It prints per case the median
of each from the sixth run on (the first prepares), the worst of those of the default,
and how many of the default's executions PostgreSQL ran with a generic plan
(``pg_prepared_statements``). Figures only; what was made of them is in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from bench import sla as sla_bench
from db import deliveries, notifications
from db import request_queries as q

_SEED = """
WITH r AS (
SELECT id, requester, created_at, closed_at, hashtext(id) & 1048575 AS h
  FROM requests r
 WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.request_id = r.id)),
a AS (
INSERT INTO assignments (request_id, stage_index, stage_key, slot, user_id, via,
                         eligible_since, due, acted, pending)
SELECT r.id, s, 'stage_' || s, 'approver',
       CASE WHEN s = 2 AND r.h % 4 <> 0
            THEN (CAST(:heads AS text[]))[1 + r.h % cardinality(CAST(:heads AS text[]))]
            ELSE (CAST(:people AS text[]))[1 + (r.h + 5 * s)
                                                 % cardinality(CAST(:people AS text[]))] END,
       'manager', r.created_at + s * interval '10 hours',
       r.created_at + s * interval '10 hours' + interval '8 hours',
       NOT (r.closed_at IS NULL AND s = 2), r.closed_at IS NULL AND s = 2
  FROM r CROSS JOIN generate_series(0, 2) s
RETURNING id, request_id, stage_index, user_id, eligible_since, acted),
submitted AS (
INSERT INTO events (request_id, seq, at, actor, kind, data)
SELECT id, 1, created_at, requester, 'submitted', '{}'::jsonb FROM r),
decided AS (
INSERT INTO events (request_id, seq, at, actor, kind, data)
SELECT request_id, stage_index + 2, eligible_since + interval '2 hours', user_id, 'approved',
       '{}'::jsonb
  FROM a WHERE acted),
n AS (
INSERT INTO notifications (request_id, recipient, channel, template, payload, dedupe_key,
                           status, created_at, read_at, fanned_out_at)
SELECT request_id, user_id, 'inbox', 'task_assigned', '{}'::jsonb, 'plans-bench-' || id,
       'sent', eligible_since, CASE WHEN acted THEN eligible_since + interval '1 hour' END,
       eligible_since
  FROM a
RETURNING id, recipient, created_at)
INSERT INTO deliveries (notification_id, channel, target, status, attempts, last_error,
                        next_attempt_at, sent_at, dedupe_id, created_at, updated_at)
SELECT id, 'email', recipient || '@demo.example',
       CASE WHEN id % 100 = 0 THEN 'failed' ELSE 'sent' END, 1,
       CASE WHEN id % 100 = 0 THEN 'mailbox unavailable' END,
       created_at, CASE WHEN id % 100 <> 0 THEN created_at + interval '1 second' END,
       'plans-bench-' || id, created_at, created_at
  FROM n
"""

_TABLES = ("assignments", "events", "notifications", "deliveries")


async def seed(engine: AsyncEngine, sessions: Any, count: int, now: datetime) -> float:
    """The SLA bench's requests, then their assignments, audit, notices and deliveries."""
    started = time.perf_counter()
    await sla_bench.seed(engine, sessions, count, now)
    async with sessions() as session:
        people = list(
            (await session.execute(text("SELECT id FROM users WHERE active ORDER BY id"))).scalars()
        )
        heads = list(
            (
                await session.execute(
                    text(
                        "SELECT DISTINCT manager_id FROM users"
                        " WHERE manager_id IS NOT NULL ORDER BY 1 LIMIT 3"
                    )
                )
            ).scalars()
        )
        await session.execute(text(_SEED), {"people": people, "heads": heads})
        await session.commit()
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in _TABLES:
            await autocommit.execute(text(f"VACUUM ANALYZE {table}"))
    return time.perf_counter() - started


Query = Callable[[AsyncSession], Awaitable[object]]


@dataclass(frozen=True)
class Case:
    name: str
    query: Query


@dataclass(frozen=True)
class Timing:
    times: list[float]
    """Milliseconds of each run, in order."""
    generic: int
    """Executions PostgreSQL ran with a generic plan."""


async def time_case(url: str, query: Query, runs: int, mode: str) -> Timing:
    """``runs`` runs of ``query`` in a row on one fresh connection, ``plan_cache_mode = mode``.

    A fresh connection (``NullPool``) so that no statement is already prepared there.
    """
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"SET plan_cache_mode = {mode}"))
            await connection.commit()
            times = []
            for _ in range(runs):
                async with AsyncSession(bind=connection) as session:
                    started = time.perf_counter()
                    await query(session)
                    times.append((time.perf_counter() - started) * 1000)
                    await session.rollback()
            generic = await connection.scalar(
                text(
                    "SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements"
                    " WHERE cardinality(parameter_types) > 0"
                    " AND statement NOT LIKE '%pg_prepared_statements%'"
                )
            )
            await connection.rollback()
    finally:
        await engine.dispose()
    return Timing(times=times, generic=int(generic or 0))


async def cases(sessions: Any) -> list[Case]:
    """The hot reads, with viewers and values picked from the seeded rows."""
    async with sessions() as session:
        by_load = (
            await session.execute(
                text(
                    "SELECT user_id, count(*) FROM assignments WHERE pending"
                    " GROUP BY user_id ORDER BY 2 DESC, 1"
                )
            )
        ).all()
        busy, light = by_load[0][0], by_load[-1][0]
        requester = await session.scalar(
            text(
                "SELECT requester FROM requests JOIN users u ON u.id = requester"
                " WHERE NOT u.is_admin AND requester <> ALL(CAST(:heads AS text[]))"
                " GROUP BY requester ORDER BY count(*) DESC, 1 LIMIT 1"
            ),
            {"heads": [u for u, _ in by_load[:3]]},
        )
        customer = await session.scalar(
            text("SELECT customer FROM requests ORDER BY created_at DESC LIMIT 1")
        )
        one = await session.scalar(
            text(
                "SELECT request_id FROM assignments WHERE user_id = :u AND acted"
                " ORDER BY request_id LIMIT 1"
            ),
            {"u": busy},
        )
        _, inbox_next, _ = await q.inbox(session, busy, limit=50)
        admin = q.Viewer(user_id="admin", sees_all=True)
        _, list_next = await q.list_requests(
            session, admin, q.RequestFilters(), after=None, limit=20
        )
        first = await deliveries.list_deliveries(session, None, 51, None)
    busy_viewer = q.Viewer(user_id=busy, sees_all=False)
    mine = q.Viewer(user_id=requester, sees_all=False)
    newcomer = q.Viewer(user_id="newcomer", sees_all=False)
    before = first[-1][0].id

    async def audit_trail(s: AsyncSession) -> None:
        row = await q.get_visible_request(s, one, busy_viewer)
        assert row is not None
        await q.request_history(s, row.id)

    def listing(viewer: q.Viewer, f: q.RequestFilters, after: q.Cursor | None = None) -> Query:
        return lambda s: q.list_requests(s, viewer, f, after=after, limit=20)

    return [
        Case(f"inbox, {busy} (busiest)", lambda s: q.inbox(s, busy, limit=50)),
        Case(f"inbox page 2, {busy}", lambda s: q.inbox(s, busy, after=inbox_next, limit=50)),
        Case(f"inbox, {light} (least busy)", lambda s: q.inbox(s, light, limit=50)),
        Case(f"requests, {requester}", listing(mine, q.RequestFilters())),
        Case(
            f"requests, {requester}, in_review",
            listing(mine, q.RequestFilters(status="in_review")),
        ),
        Case(f"requests, {busy}", listing(busy_viewer, q.RequestFilters())),
        # Takes part in no request: the old rule read the whole table for a page.
        Case("requests, a newcomer (sees none)", listing(newcomer, q.RequestFilters())),
        Case(
            f"requests, {busy}, assignee=me",
            listing(busy_viewer, q.RequestFilters(assignee=busy)),
        ),
        Case("requests, admin", listing(admin, q.RequestFilters())),
        Case("requests, admin, page 2", listing(admin, q.RequestFilters(), list_next)),
        Case(
            "requests, admin, a type, in_review",
            listing(admin, q.RequestFilters(type=sla_bench.TYPES[0], status="in_review")),
        ),
        Case("requests, admin, overdue", listing(admin, q.RequestFilters(overdue=True))),
        Case(f"search: customer={customer!r}", listing(admin, q.RequestFilters(customer=customer))),
        Case(
            f"search as {requester}: customer",
            listing(mine, q.RequestFilters(customer=customer)),
        ),
        Case(f"audit trail, as {busy}", audit_trail),
        Case("deliveries", lambda s: deliveries.list_deliveries(s, None, 51, None)),
        Case("deliveries, page 2", lambda s: deliveries.list_deliveries(s, None, 51, before)),
        Case("deliveries, failed", lambda s: deliveries.list_deliveries(s, "failed", 51, None)),
        Case(
            f"notices, {busy}",
            lambda s: notifications.page(s, busy, after=None, limit=20),
        ),
        Case(f"unread notices, {busy}", lambda s: notifications.unread_count(s, busy)),
    ]


async def time_cases(url: str, sessions: Any, runs: int, out: Any) -> None:
    """Print each case's medians with the default and with custom plans."""
    print(
        f"{'query':<44}{'default':>10}{'custom':>10}{'ratio':>7}{'worst 6+':>12}{'generic':>9}",
        file=out,
    )
    for case in await cases(sessions):
        auto = await time_case(url, case.query, runs, "auto")
        custom = await time_case(url, case.query, runs, "force_custom_plan")
        # From the sixth run on: where PostgreSQL may have switched, and none prepares.
        steady, steady_custom = auto.times[5:] or auto.times, custom.times[5:] or custom.times
        default, forced = statistics.median(steady), statistics.median(steady_custom)
        print(
            f"{case.name:<44}{default:>7.2f} ms{forced:>7.2f} ms{default / forced:>7.2f}"
            f"{max(steady):>9.2f} ms{auto.generic:>9}",
            file=out,
        )
    print(
        f"{runs} runs in a row on one connection each, medians of the sixth on (where "
        "PostgreSQL may switch to a generic plan; the first run prepares); default: "
        "plan_cache_mode = auto, custom: force_custom_plan; ratio: default / custom; "
        "worst 6+: the default's slowest of those runs; generic: executions of the "
        "default PostgreSQL ran with a generic plan",
        file=out,
    )


async def main(argv: list[str] | None = None, out: Any = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="bench.plans", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="requests to seed")
    parser.add_argument("--runs", type=int, default=10, help="runs per case on one connection")
    parser.add_argument("--database-url", help="a migrated database (default: a throwaway one)")
    args = parser.parse_args(argv)
    async with sla_bench.bench_database(args.database_url, "approvals_plans") as (
        url,
        engine,
        sessions,
    ):
        seconds = await seed(engine, sessions, args.count, datetime.now(UTC))
        print(f"seeded {args.count:,} requests and their reads in {seconds:.1f} s", file=out)
        sla_bench.print_load(out)
        await time_cases(url, sessions, args.runs, out)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
