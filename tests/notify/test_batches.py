"""One channel's deliveries sent by one activity (``deliver_notices_batch``), on a real
PostgreSQL with real receivers: loaded in a few queries, sent a few at once, each outcome
recorded as its send ends, and nothing lost or sent twice when the batch is cut off.

The activity runs in the SDK's :class:`ActivityEnvironment` (a real activity context:
heartbeats, cancellation); the workflow side is in ``test_dispatcher.py``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from db.deliveries import DeliveryJob, load_job, load_jobs
from db.engine import transaction
from db.models import DeliveryRow
from domain.delivery import DeliverBatchInput, DeliverBatchOutput, DeliverNoticesInput
from notify.webhooks import Subscriber
from tests.support.notify import add_notice, add_request, hold_step, make_notifier
from tests.support.receivers import free_port, http_receiver

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def rows(sessions: Sessions) -> list[DeliveryRow]:
    async with sessions() as s:
        return list(await s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


async def claim(acts: DeliveryActivities) -> DeliverBatchInput:
    """Plan and claim as a pass does; the claimed rows of the one channel there is."""
    batch = await acts.plan_and_claim(DeliverNoticesInput())
    [channel] = {c.channel for c in batch.claimed}
    return DeliverBatchInput(
        channel=channel,
        delivery_ids=[c.delivery_id for c in batch.claimed],
        timeout_seconds=batch.claimed[0].timeout_seconds,
        leased_until=batch.claimed[0].leased_until,
    )


async def run_batch(
    acts: DeliveryActivities,
    inp: DeliverBatchInput,
    on_heartbeat: Callable[..., None] = lambda *_: None,
) -> DeliverBatchOutput:
    env = ActivityEnvironment()
    env.on_heartbeat = on_heartbeat
    return await env.run(acts.deliver_batch, inp)


def webhook_acts(sessions: Sessions, *urls: str, concurrency: int = 8) -> DeliveryActivities:
    """Delivery activities whose subscribers ("erp", then "crm") listen at ``urls``."""
    subs = [
        Subscriber(name=name, url=url, secret=SECRET)
        for name, url in zip(("erp", "crm"), urls, strict=False)
    ]
    notifier = make_notifier(free_port(), subscribers=subs)
    notifier.concurrency = concurrency
    return DeliveryActivities(sessions, notifier)


async def webhook_notices(sessions: Sessions, count: int) -> None:
    """``count`` notices that go to the webhook subscriber only."""
    rid = await add_request(sessions)
    for _ in range(count):
        await add_notice(sessions, rid, "cd_xu", "cc_submitted")  # in-app only for a person


async def test_jobs_of_a_batch_load_in_the_same_few_queries_whatever_their_number(
    sessions: Sessions,
) -> None:
    rid = await add_request(sessions)
    await hold_step(sessions, rid, "bcd_zheng", stage_index=0)
    for who in ("bcd_zheng", "dsd_liu", "bcd_zheng", "od_peng", "dsd_liu", "bcd_zheng"):
        await add_notice(sessions, rid, who, "reminder")
    await add_notice(sessions, None, "dsd_liu", "reminder")  # type: ignore[arg-type]
    acts = DeliveryActivities(sessions, make_notifier(free_port()))
    ids = [c.delivery_id for c in (await acts.plan_and_claim(DeliverNoticesInput())).claimed]
    assert len(ids) == 7

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with sessions() as s:
            one = await load_jobs(s, ids[:1])
        for_one = len(statements)
        statements.clear()
        async with sessions() as s:
            jobs = await load_jobs(s, [*ids, 10**9])
        for_all = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert for_all == for_one <= 5, statements
    assert set(jobs) == set(ids) and set(one) == {ids[0]}

    # Each job is what load_job reads for that delivery alone.
    def key(job: DeliveryJob) -> tuple[object, ...]:
        return (
            job.delivery.id,
            job.notice.id,
            job.user.id if job.user else None,
            job.preference.user_id if job.preference else None,
            job.request.id if job.request else None,
            job.stage_index,
        )

    async with sessions() as s:
        for i in ids:
            alone = await load_job(s, i)
            assert alone is not None and key(jobs[i]) == key(alone)
    assert {jobs[i].stage_index for i in ids if jobs[i].notice.recipient == "bcd_zheng"} == {0}


async def test_a_batch_sends_a_few_at_once_and_records_each_as_it_ends(sessions: Sessions) -> None:
    await webhook_notices(sessions, 6)
    with http_receiver() as recv:
        recv.delay = 1.0
        acts = webhook_acts(sessions, recv.url, concurrency=3)
        inp = await claim(acts)
        beats: list[Any] = []
        out = await run_batch(acts, inp, lambda *details: beats.append(details))
    assert [o.status for o in out.outcomes] == ["sent"] * 6
    assert [o.delivery_id for o in out.outcomes] == inp.delivery_ids
    assert recv.most_at_once == 3, "three at once, never more, not one after another"
    assert beats[-1] == (6,), "a heartbeat after each recorded send"
    sent = await rows(sessions)
    assert all((r.status, r.attempts) == ("sent", 1) for r in sent)
    # Recorded as each send ended: the first round's rows before the second round's.
    times = sorted(r.sent_at for r in sent if r.sent_at is not None)
    assert times[3] - times[2] >= timedelta(seconds=0.6)
    assert len(recv.hits) == 6


async def test_one_failing_send_leaves_the_rest_of_its_batch_alone(sessions: Sessions) -> None:
    await webhook_notices(sessions, 2)
    with http_receiver() as ok, http_receiver() as broken:
        broken.status = 500
        acts = webhook_acts(sessions, ok.url, broken.url)
        out = await run_batch(acts, await claim(acts))
    by_target: dict[str | None, list[tuple[str, int]]] = {}
    for r in await rows(sessions):
        by_target.setdefault(r.target, []).append((r.status, r.attempts))
    assert by_target == {"erp": [("sent", 1)] * 2, "crm": [("pending", 1)] * 2}
    assert sorted(o.status for o in out.outcomes) == ["pending", "pending", "sent", "sent"]
    assert all("answered 500" in (o.error or "") for o in out.outcomes if o.status == "pending")
    assert len(ok.hits) == 2 and len(broken.hits) == 2


async def test_a_batch_run_again_sends_nothing_twice_nor_before_its_backoff(
    sessions: Sessions,
) -> None:
    """A retry of the activity (its worker died after recording) sends only what is left."""
    await webhook_notices(sessions, 2)
    with http_receiver() as ok, http_receiver() as broken:
        broken.status = 500
        acts = webhook_acts(sessions, ok.url, broken.url)
        inp = await claim(acts)
        first = await run_batch(acts, inp)
        again = await run_batch(acts, inp)
        assert (len(ok.hits), len(broken.hits)) == (2, 2)
    assert [(o.delivery_id, o.status) for o in again.outcomes] == [
        (o.delivery_id, o.status) for o in first.outcomes
    ]
    assert all(r.attempts == 1 for r in await rows(sessions))


async def test_rows_a_cut_off_batch_did_not_record_keep_their_lease_and_are_sent_later_once(
    sessions: Sessions,
) -> None:
    await webhook_notices(sessions, 4)
    with http_receiver() as recv:
        recv.delay = 0.3
        sub = Subscriber(name="erp", url=recv.url, secret=SECRET)
        notifier = make_notifier(free_port(), subscribers=[sub])
        notifier.concurrency = 1  # one send at a time, so the batch can be cut off between
        acts = DeliveryActivities(sessions, notifier)
        inp = await claim(acts)
        first_recorded = asyncio.Event()

        def beat(*details: Any) -> None:
            if details == (1,):
                first_recorded.set()

        batch = asyncio.create_task(run_batch(acts, inp, beat))
        await asyncio.wait_for(first_recorded.wait(), 10)
        await asyncio.sleep(0.1)  # the second send has reached the receiver
        batch.cancel()  # the worker is gone: nothing more runs
        await asyncio.gather(batch, return_exceptions=True)
        assert batch.cancelled()

        left = await rows(sessions)
        assert [r.status for r in left] == ["sent", "pending", "pending", "pending"]
        for r in left[1:]:
            assert (r.attempts, r.last_error, r.next_attempt_at) == (0, None, inp.leased_until)
        # A later pass, once the lease has run out, sends each of them once.
        async with transaction(sessions) as s:
            await s.execute(
                update(DeliveryRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        recv.delay = 0
        notifier.concurrency = 8
        later = await claim(acts)
        assert later.delivery_ids == [r.id for r in left[1:]]
        assert [o.status for o in (await run_batch(acts, later)).outcomes] == ["sent"] * 3
    done = await rows(sessions)
    assert all((r.status, r.attempts) == ("sent", 1) for r in done)
    seen = [h.headers["webhook-id"] for h in recv.hits]
    ids = [r.dedupe_id for r in done]
    # The send cut off in flight reached the receiver twice, with the same id (it drops the
    # second); the others once.
    assert sorted(seen) == sorted([*ids, ids[1]])


async def test_a_row_claimed_again_by_a_later_pass_is_left_to_that_pass(sessions: Sessions) -> None:
    await webhook_notices(sessions, 1)
    with http_receiver() as recv:
        acts = webhook_acts(sessions, recv.url)
        stale = await claim(acts)
        async with transaction(sessions) as s:  # the lease ran out and another pass took it
            await s.execute(
                update(DeliveryRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        fresh = await claim(acts)
        assert [o.status for o in (await run_batch(acts, stale)).outcomes] == ["pending"]
        assert recv.hits == []
        assert [o.status for o in (await run_batch(acts, fresh)).outcomes] == ["sent"]
    assert len(recv.hits) == 1
