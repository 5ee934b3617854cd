"""The gauges of what waits in PostgreSQL read real rows (a database of the test's own)."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.metrics import BusinessCollector, read_snapshot, refresh_forever, serve
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow, RequestRow

Sessions = async_sessionmaker[AsyncSession]


async def a_request(sessions: Sessions, status: str, **columns: object) -> str:
    rid = str(uuid.uuid4())
    async with transaction(sessions) as s:
        s.add(
            RequestRow(
                id=rid,
                type="t",
                title="metrics test",
                requester="am_li",
                policy_type="t",
                policy_version=1,
                route={"stages": []},
                status=status,
                **columns,
            )
        )
    return rid


async def a_delivery(sessions: Sessions, status: str, created: datetime, due: datetime) -> None:
    rid = await a_request(sessions, "in_review")
    async with transaction(sessions) as s:
        notice = NotificationRow(
            request_id=rid, recipient="bcd_zheng", template="assigned", dedupe_key=rid
        )
        s.add(notice)
        await s.flush()
        s.add(
            DeliveryRow(
                notification_id=notice.id,
                channel="email",
                target="bcd_zheng@demo.example",
                status=status,
                created_at=created,
                next_attempt_at=due,
                dedupe_id=f"ntf-test-{uuid.uuid4().hex}",
            )
        )


def gauges(collector: BusinessCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (family.name, tuple(s.labels.values())): s.value
        for family in collector.collect()
        for s in family.samples
    }


async def test_gauges_count_waiting_deliveries_stuck_and_open_requests_with_their_ages(
    scratch_sessions: Sessions,
) -> None:
    now = datetime.now(UTC)
    # Pending for 10 minutes, due for 4 (a deliverer that stopped); one given up; one sent.
    await a_delivery(
        scratch_sessions, "pending", now - timedelta(minutes=10), now - timedelta(minutes=4)
    )
    await a_delivery(
        scratch_sessions, "pending", now - timedelta(minutes=1), now + timedelta(minutes=5)
    )
    await a_delivery(scratch_sessions, "failed", now - timedelta(hours=3), now - timedelta(hours=2))
    await a_delivery(scratch_sessions, "sent", now - timedelta(days=9), now - timedelta(days=9))
    await a_request(
        scratch_sessions, "in_review", stuck_since=now - timedelta(minutes=3), stuck_reason="x"
    )
    await a_request(scratch_sessions, "approved", closed_at=now)  # closed: not counted

    collector = BusinessCollector()
    assert gauges(collector) == {}  # nothing read yet: no made-up zeros
    collector.snapshot = await read_snapshot(scratch_sessions)
    got = gauges(collector)

    assert got[("approvals_deliveries", ("pending",))] == 2
    assert got[("approvals_deliveries", ("failed",))] == 1
    assert 600 <= got[("approvals_delivery_oldest_pending_age_seconds", ())] < 660
    assert 240 <= got[("approvals_delivery_due_lag_seconds", ())] < 300
    assert got[("approvals_requests_stuck", ())] == 1
    assert 180 <= got[("approvals_requests_stuck_oldest_age_seconds", ())] < 240
    # Four deliveries' requests plus the stuck one are in review; the approved one is closed.
    assert got[("approvals_open_requests", ("in_review",))] == 5
    assert ("approvals_open_requests", ("approved",)) not in got


async def test_nothing_waiting_reads_as_zero_ages(scratch_sessions: Sessions) -> None:
    collector = BusinessCollector()
    collector.snapshot = await read_snapshot(scratch_sessions)
    got = gauges(collector)
    assert got[("approvals_deliveries", ("pending",))] == 0
    assert got[("approvals_delivery_oldest_pending_age_seconds", ())] == 0
    assert got[("approvals_delivery_due_lag_seconds", ())] == 0
    assert got[("approvals_requests_stuck", ())] == 0


async def test_the_refresher_feeds_an_endpoint_prometheus_can_scrape(
    scratch_sessions: Sessions, free_port: int
) -> None:
    await a_request(scratch_sessions, "in_review", stuck_since=datetime.now(UTC), stuck_reason="x")
    registry = CollectorRegistry()
    collector = BusinessCollector()
    registry.register(collector)
    task = asyncio.create_task(refresh_forever(scratch_sessions, collector, every=0.1))
    server = serve(f"127.0.0.1:{free_port}", registry)
    assert server is not None
    try:
        for _ in range(200):  # the first read, within 10 s
            if collector.snapshot is not None:
                break
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{free_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    finally:
        task.cancel()
        server.shutdown()
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert values["approvals_requests_stuck"] == 1
