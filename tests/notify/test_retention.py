"""Finished deliveries are deleted after the retention; what still matters stays."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery import DeliveryActivities
from db.deliveries import prune_finished
from db.engine import transaction
from db.models import DeliveryRow
from domain.delivery import DeliverNoticesInput
from notify.webhooks import Subscriber
from tests.support.notify import add_notice, add_request, make_notifier
from tests.support.receivers import free_port

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
STATUSES = ["sent", "skipped", "failed", "pending", "sent"]


async def _planned(sessions: Sessions, retention: timedelta | None) -> DeliveryActivities:
    """Five webhook deliveries, planned by a pass that claims nothing yet."""
    rid = await add_request(sessions)
    for _ in STATUSES:
        await add_notice(sessions, rid, "cd_xu", "cc_submitted")  # the webhook only
    sub = Subscriber(name="erp", url="http://127.0.0.1:9/", secret=SECRET)
    notifier = make_notifier(free_port(), subscribers=[sub])
    notifier.retention = retention
    acts = DeliveryActivities(sessions, notifier)
    await acts.plan_and_claim(DeliverNoticesInput(batch=1))
    return acts


async def _age(sessions: Sessions, days: list[int]) -> list[int]:
    """Give the rows, in id order, the statuses above and these ages; their ids."""
    async with transaction(sessions) as s:
        ids = list(await s.scalars(select(DeliveryRow.id).order_by(DeliveryRow.id)))
        assert len(ids) == len(STATUSES)
        now = datetime.now(UTC)
        for i, status, age in zip(ids, STATUSES, days, strict=True):
            await s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == i)
                .values(status=status, created_at=now - timedelta(days=age))
            )
    return ids


async def _left(sessions: Sessions) -> list[int]:
    async with sessions() as s:
        return list(await s.scalars(select(DeliveryRow.id).order_by(DeliveryRow.id)))


async def test_old_sent_and_skipped_go_failed_pending_and_recent_ones_stay(
    sessions: Sessions,
) -> None:
    await _planned(sessions, None)
    ids = await _age(sessions, [100, 100, 100, 100, 10])
    async with transaction(sessions) as s:
        deleted = await prune_finished(s, datetime.now(UTC) - timedelta(days=90))
    assert deleted == 2
    assert await _left(sessions) == ids[2:]  # failed, pending (old) and sent (recent)


async def test_a_backlog_goes_a_batch_at_a_time(sessions: Sessions) -> None:
    await _planned(sessions, None)
    await _age(sessions, [100, 100, 100, 100, 100])
    before = datetime.now(UTC) - timedelta(days=90)
    counts = []
    for _ in range(3):
        async with transaction(sessions) as s:
            counts.append(await prune_finished(s, before, limit=2))
    assert counts == [2, 1, 0]  # three finished (sent, skipped, sent), two a pass


async def test_a_pass_prunes_and_plans_nothing_again(sessions: Sessions) -> None:
    acts = await _planned(sessions, timedelta(days=90))
    ids = await _age(sessions, [100, 100, 100, 100, 10])
    batch = await acts.plan_and_claim(DeliverNoticesInput(batch=1))
    assert batch.planned == 0  # the notices stay fanned out: nothing is sent twice
    left = await _left(sessions)
    assert ids[0] not in left and ids[1] not in left and ids[2:] == left


async def test_no_retention_keeps_everything(sessions: Sessions) -> None:
    acts = await _planned(sessions, None)
    ids = await _age(sessions, [400, 400, 400, 400, 400])
    await acts.plan_and_claim(DeliverNoticesInput(batch=1))
    assert await _left(sessions) == ids
