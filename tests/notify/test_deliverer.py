"""The deliverer process (worker/deliverer.py) on a real PostgreSQL, a real SMTP server
(aiosmtpd) and the real Temporal dev server: a transition's notice goes out within
seconds and no workflow execution is started but the request's own; an idle deliverer
starts nothing and sleeps; a failed send is retried after its back-off; the admin's
retry wakes it; two deliverers send each notice once; one stopped mid-batch loses
nothing; the rows of one killed with SIGKILL go out within seconds, not after their lease,
and a live one's rows are never taken."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.delivery import DeliveryActivities
from common.policy_store import load_policies
from db.deliveries import reclaim_orphans, retry_delivery, wake_deliverers
from db.engine import transaction
from db.models import DeliveryRow, NotificationRow
from domain.constants import WORKFLOW_NAME, Updates, workflow_id
from domain.delivery import DeliverBatchInput, batch_time_limit
from domain.process import RequestView
from notify.setup import Notifier
from tests.support.notify import add_notice, add_request, make_notifier
from tests.support.receivers import MailBox, free_port, smtp_server
from tests.support.workflows import make_input
from worker.deliverer import ClaimerLock, Deliverer, listen_dsn
from worker.main import build_worker

ROOT = Path(__file__).resolve().parents[2]
Sessions = async_sessionmaker[AsyncSession]
IDLE = timedelta(seconds=60)
"""The deliverer's own look at the table: longer than any test, so only a NOTIFY (or a
retry's time) wakes it within one."""


@asynccontextmanager
async def running(deliverer: Deliverer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(deliverer.run())
    try:
        await asyncio.wait_for(deliverer.listening.wait(), 10)
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def deliverer(sessions: Sessions, notifier: Notifier, url: str) -> Deliverer:
    return Deliverer(sessions, notifier, url, idle_check=IDLE)


async def deliveries(sessions: Sessions) -> list[DeliveryRow]:
    async with sessions() as s:
        return list(await s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


async def until(check: object, seconds: float, what: str) -> float:
    """Wait until ``check()`` (an async callable) is true; the seconds it took."""
    started = time.monotonic()
    while not await check():  # type: ignore[operator]
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def executions(env: WorkflowEnvironment) -> int:
    return (await env.client.count_workflows()).count


async def test_a_transitions_notice_goes_out_within_seconds_and_starts_no_other_workflow(
    temporal_local: WorkflowEnvironment, sessions: Sessions, scratch_url: str
) -> None:
    client = temporal_local.client
    queue = f"deliverer-{uuid.uuid4()}"
    box = MailBox()
    policies = load_policies(ROOT / "policies")
    inp = make_input(
        policies["big_customer_contract"],
        "am_li",
        Decimal(250000),
        {"contract_no": "HT-D1", "settlement_floor_price": "1"},
    )
    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        async with build_worker(client, sessions, queue, notifier=notifier):
            async with running(deliverer(sessions, notifier, scratch_url)):
                await asyncio.sleep(1)  # the deliverer's first look is done; it sleeps
                before = await executions(temporal_local)
                h = await client.start_workflow(
                    WORKFLOW_NAME, inp, id=workflow_id(inp.request_id), task_queue=queue
                )
                try:
                    v = await h.execute_update(Updates.READY, result_type=RequestView)
                    assert v.current_approvers == ["bcd_zheng"]
                    took = await until(lambda: _all_sent(sessions), 5, "the assigned mail")
                    await asyncio.sleep(2)  # anything a pass would have started is listed
                    after = await executions(temporal_local)
                finally:
                    await h.terminate("test finished")
    assert took < 5
    assert after - before == 1, "only the request's own workflow was started"
    [(_, to)] = box.envelopes
    assert to == ["bcd_zheng@demo.example"]
    [row] = await deliveries(sessions)
    assert (row.channel, row.status, row.attempts) == ("email", "sent", 1)


async def _mails(box: MailBox, n: int) -> bool:
    return len(box.messages) >= n


async def _all_sent(sessions: Sessions) -> bool:
    rows = await deliveries(sessions)
    return bool(rows) and all(r.status == "sent" for r in rows)


async def test_an_idle_deliverer_starts_nothing_and_sleeps(
    temporal_local: WorkflowEnvironment, sessions: Sessions, scratch_url: str
) -> None:
    before = await executions(temporal_local)
    d = deliverer(sessions, make_notifier(free_port()), scratch_url)
    async with running(d):
        await asyncio.sleep(0.5)
        looked = d.passes
        await asyncio.sleep(3)
        assert d.passes == looked, "asleep until woken"
    assert looked <= 2, "a look at start-up, and one when it began to listen"
    assert await executions(temporal_local) == before


async def test_a_failed_send_is_retried_after_its_back_off_without_a_wake_up(
    sessions: Sessions, scratch_url: str
) -> None:
    box = MailBox(refuse="450 mailbox busy, try later")
    async with smtp_server(box) as port:
        d = deliverer(sessions, make_notifier(port), scratch_url)
        async with running(d):
            rid = await add_request(sessions)
            # Written without NOTIFY: the deliverer's look at start-up takes it.
            await add_notice(sessions, rid, "dsd_liu", "overdue")
            d.wake()

            async def refused() -> bool:
                return [r.attempts for r in await deliveries(sessions)] == [1]

            await until(refused, 5, "the first attempt")
            [row] = await deliveries(sessions)
            assert row.status == "pending" and "450" in (row.last_error or "")
            wait = (row.next_attempt_at - datetime.now(UTC)).total_seconds()
            assert 7 < wait <= 10, "the first back-off is 10 s"
            box.refuse = None
            took = await until(lambda: _all_sent(sessions), wait + 5, "the retry")
            assert took > wait - 1.5, "not before its time"
    assert len(box.messages) == 1
    [row] = await deliveries(sessions)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_the_admin_retry_wakes_the_deliverer(sessions: Sessions, scratch_url: str) -> None:
    box = MailBox(refuse="550 no such user")
    async with smtp_server(box) as port:
        d = deliverer(sessions, make_notifier(port, max_attempts=1), scratch_url)
        async with running(d):
            rid = await add_request(sessions)
            await add_notice(sessions, rid, "dsd_liu", "overdue")
            d.wake()

            async def failed() -> bool:
                return [r.status for r in await deliveries(sessions)] == ["failed"]

            await until(failed, 5, "the failure")
            box.refuse = None
            await asyncio.sleep(0.5)
            async with transaction(sessions) as s:
                [row] = await deliveries(sessions)
                await retry_delivery(s, row.id, datetime.now(UTC))
            took = await until(lambda: _all_sent(sessions), 5, "the retried mail")
    assert took < 3, "woken by the retry, not by its minute's look"
    assert len(box.messages) == 1
    [row] = await deliveries(sessions)
    assert (row.status, row.attempts) == ("sent", 1)


class SlowBox(MailBox):
    """A mail server that takes its time over each message."""

    delay = 0.3

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def message_ids(box: MailBox) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in box.messages)


async def _notices(sessions: Sessions, n: int) -> None:
    rid = await add_request(sessions)
    for i in range(n):
        await add_notice(sessions, rid, ("bcd_zheng", "dsd_liu", "od_peng")[i % 3], "reminder")


async def test_two_deliverers_send_each_notice_once(sessions: Sessions, scratch_url: str) -> None:
    box = SlowBox()
    box.delay = 0.05
    async with smtp_server(box) as port:
        one = deliverer(sessions, make_notifier(port), scratch_url)
        two = deliverer(sessions, make_notifier(port), scratch_url)
        async with running(one), running(two):
            await _notices(sessions, 30)
            one.wake()
            two.wake()

            async def all_sent() -> bool:
                rows = await deliveries(sessions)
                return len(rows) == 30 and all(r.status == "sent" for r in rows)

            await until(all_sent, 30, "every delivery")
            await asyncio.sleep(0.5)
    rows = await deliveries(sessions)
    assert all(r.attempts == 1 for r in rows)
    assert message_ids(box) == Counter(f"<{r.dedupe_id}@corp.test>" for r in rows)
    assert one.passes > 0 and two.passes > 0


async def test_a_deliverer_stopped_mid_batch_loses_nothing(
    sessions: Sessions, scratch_url: str
) -> None:
    """Cancelled while its batch is half sent, the deliverer hands the rows it did not
    record back at once: the other sends them now, not when their lease runs out. A
    message cut off in its send may arrive twice, always with the same Message-ID."""
    box = SlowBox()
    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        notifier.concurrency = 2
        first = deliverer(sessions, notifier, scratch_url)
        await _notices(sessions, 12)
        task = asyncio.create_task(first.run())
        await until(lambda: _mails(box, 3), 10, "the first mails")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rows = await deliveries(sessions)
        assert any(r.status == "pending" for r in rows), "stopped mid-batch"
        due = [r for r in rows if r.status == "pending"]
        assert all(r.next_attempt_at <= datetime.now(UTC) for r in due), "handed back"

        second = deliverer(sessions, make_notifier(port), scratch_url)
        async with running(second):

            async def all_sent() -> bool:
                return all(r.status == "sent" for r in await deliveries(sessions))

            await until(all_sent, 20, "the rest")
    rows = await deliveries(sessions)
    expected = {f"<{r.dedupe_id}@corp.test>" for r in rows}
    arrived = message_ids(box)
    assert set(arrived) == expected, "nothing lost"
    assert sum(arrived.values()) - len(expected) <= notifier.concurrency, (
        "at most the sends cut off arrive twice"
    )


async def test_a_deliverer_whose_listen_connection_drops_listens_again_and_is_woken(
    sessions: Sessions, scratch_url: str
) -> None:
    """PostgreSQL ends the deliverer's LISTEN connection (a restart, a failover): it
    connects again within seconds, and the next NOTIFY wakes it as before."""
    box = MailBox()
    async with smtp_server(box) as port:
        d = deliverer(sessions, make_notifier(port), scratch_url)
        async with running(d):
            async with transaction(sessions) as s:
                ended = await s.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
            assert ended == 1

            async def dropped() -> bool:
                return not d.listening.is_set()

            await until(dropped, 5, "the drop noticed")
            await asyncio.wait_for(d.listening.wait(), 10)
            await asyncio.sleep(0.5)  # its catch-up look is done; it sleeps again
            rid = await add_request(sessions)
            async with transaction(sessions) as s:
                await add_notice_here(s, rid)
                await wake_deliverers(s)
            took = await until(lambda: _all_sent(sessions), 5, "the mail after the drop")
    assert took < 3
    assert len(box.messages) == 1


async def add_notice_here(session: AsyncSession, request_id: str) -> None:
    """A notice written in the caller's transaction, as a transition writes it."""
    session.add(
        NotificationRow(
            request_id=request_id,
            recipient="dsd_liu",
            channel="inbox",
            template="overdue",
            payload={"request_id": request_id, "title": "Annual supply contract"},
            dedupe_key=f"{request_id}:1:overdue:dsd_liu",
            status="pending",
        )
    )
    await session.flush()


async def test_rows_a_killed_deliverer_had_claimed_are_sent_once_their_lease_runs_out(
    sessions: Sessions, scratch_url: str
) -> None:
    """The lease is the backstop for a claim no lock vouches for (an old pass's, which
    records no claimer; a lock connection that lingers): another deliverer sleeps until
    the lease ends (here made 2 s long), then sends each once."""
    box = MailBox()
    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        await _notices(sessions, 3)
        limit = batch_time_limit(3, notifier.concurrency, notifier.timeout_of("email"))
        killed = DeliveryActivities(sessions, notifier)
        batch = await killed.plan_and_claim_due(50, timedelta(seconds=2) - limit)
        assert len(batch.claimed) == 3
        started = time.monotonic()
        async with running(deliverer(sessions, make_notifier(port), scratch_url)):
            await until(lambda: _all_sent(sessions), 10, "the leased rows")
        took = time.monotonic() - started
    assert took > 1, "not before the lease ran out"
    rows = await deliveries(sessions)
    assert all(r.attempts == 1 for r in rows)
    assert message_ids(box) == Counter(f"<{r.dedupe_id}@corp.test>" for r in rows)


async def claimed_by(sessions: Sessions) -> list[tuple[int | None, datetime]]:
    return [(r.claimed_by, r.next_attempt_at) for r in await deliveries(sessions)]


async def test_a_deliverer_killed_mid_batch_has_its_rows_sent_by_another_within_seconds(
    sessions: Sessions, scratch_url: str, tmp_path: Path
) -> None:
    """A real deliverer process claims three mails and is stuck sending them (a slow
    server) when it is killed with SIGKILL. Another deliverer, running meanwhile, does
    not touch them while it lives; once it is dead, sends them within seconds although
    their lease had minutes left, each once."""
    stuck = SlowBox()
    stuck.delay = 60
    box = MailBox()
    async with smtp_server(stuck) as stuck_port, smtp_server(box) as port:
        await _notices(sessions, 3)
        with (tmp_path / "victim.log").open("w") as log:
            victim = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "tests.support.deliverer_process"),
                *(scratch_url, str(stuck_port)),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:

            async def claimed() -> bool:
                rows = await claimed_by(sessions)
                return len(rows) == 3 and all(c is not None for c, _ in rows)

            await until(claimed, 20, "the victim's claim")
            held = await claimed_by(sessions)
            assert held[0][1] > datetime.now(UTC) + timedelta(seconds=60), "a long lease"
            survivor = Deliverer(sessions, make_notifier(port), scratch_url, idle_check=IDLE)
            async with running(survivor):
                await asyncio.sleep(4)  # two of its looks at the claims of others
                assert await claimed_by(sessions) == held, "a live deliverer's rows stay"
                assert box.messages == []
                os.kill(victim.pid, signal.SIGKILL)
                await asyncio.wait_for(victim.wait(), 10)
                took = await until(lambda: _all_sent(sessions), 10, "the victim's rows")
                await asyncio.sleep(0.5)
        finally:
            if victim.returncode is None:
                victim.kill()
                await asyncio.wait_for(victim.wait(), 10)
    assert took < 6, f"within seconds of the kill, not after the lease ({took:.1f} s)"
    rows = await deliveries(sessions)
    assert all((r.attempts, r.claimed_by) == (1, None) for r in rows)
    assert message_ids(box) == Counter(f"<{r.dedupe_id}@corp.test>" for r in rows)


async def test_a_claim_whose_lock_was_let_go_is_due_at_once_for_a_deliverer_that_starts(
    sessions: Sessions, scratch_url: str
) -> None:
    """A deliverer that claimed and whose lock connection closed without a word (as at a
    kill), restarted: its first pass sends the rows at once. While the lock is held, the
    claim is not due, even for a deliverer's look at start-up."""
    box = MailBox()
    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        await _notices(sessions, 3)
        lock = ClaimerLock(listen_dsn(scratch_url))
        me = await lock.acquire()
        batch = await DeliveryActivities(sessions, notifier).plan_and_claim_due(50, claimer=me)
        assert len(batch.claimed) == 3
        d = deliverer(sessions, make_notifier(port), scratch_url)
        async with running(d):
            await asyncio.sleep(1)
            assert box.messages == [] and d.passes >= 1, "held: not taken at start-up"
        await lock.close()
        started = time.monotonic()
        async with running(deliverer(sessions, make_notifier(port), scratch_url)):
            await until(lambda: _all_sent(sessions), 10, "the released rows")
        took = time.monotonic() - started
    assert took < 5, "at once, not after the lease"
    rows = await deliveries(sessions)
    assert all(r.attempts == 1 for r in rows)
    assert message_ids(box) == Counter(f"<{r.dedupe_id}@corp.test>" for r in rows)


async def test_a_deliverer_whose_lock_connection_ends_mid_batch_stops_and_loses_nothing(
    sessions: Sessions, scratch_url: str
) -> None:
    """PostgreSQL ends the connection holding a deliverer's lock while it sends (a
    restart, pg_terminate_backend): from then on another deliverer takes its rows, so it
    sends no more under that id, hands the rest back, and claims again under a new one.
    Every message arrives; at most the sends cut off arrive twice, same Message-ID."""
    box = SlowBox()
    box.delay = 1.0
    async with smtp_server(box) as port:
        notifier = make_notifier(port)
        notifier.concurrency = 2
        d = deliverer(sessions, notifier, scratch_url)
        other = deliverer(sessions, make_notifier(port), scratch_url)
        await _notices(sessions, 12)
        async with running(d):
            await until(lambda: _mails(box, 3), 10, "the first mails")
            first = d.claimer.id
            assert {c for c, _ in await claimed_by(sessions)} <= {first, None}
            async with running(other):
                await asyncio.sleep(0.5)  # its first look: nothing of d's is due
                async with transaction(sessions) as s:
                    ended = await s.scalar(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND objsubid = 2 "
                            "AND objid::bigint = :id"
                        ),
                        {"id": first},
                    )
                assert ended == 1
                await until(lambda: _all_sent(sessions), 30, "the rest")

                async def new_id() -> bool:
                    return d.claimer.id not in (None, first)

                await until(new_id, 10, "a claim under a new id")
                await asyncio.sleep(1.5)  # a send cut off meanwhile arrives
    rows = await deliveries(sessions)
    expected = {f"<{r.dedupe_id}@corp.test>" for r in rows}
    arrived = message_ids(box)
    assert set(arrived) == expected, "nothing lost"
    assert sum(arrived.values()) - len(expected) <= notifier.concurrency


async def test_a_retry_its_gone_deliverer_recorded_waits_for_its_back_off(
    sessions: Sessions, scratch_url: str
) -> None:
    """The claim ends with the attempt's record: a refused send's back-off is not cut
    short when the deliverer that recorded it is gone afterwards."""
    box = MailBox(refuse="450 mailbox busy, try later")
    async with smtp_server(box) as port:
        sender = DeliveryActivities(sessions, make_notifier(port))
        await _notices(sessions, 1)
        lock = ClaimerLock(listen_dsn(scratch_url))
        [c] = (await sender.plan_and_claim_due(50, claimer=await lock.acquire())).claimed
        await sender.send_batch(
            DeliverBatchInput(
                channel=c.channel,
                delivery_ids=[c.delivery_id],
                timeout_seconds=c.timeout_seconds,
                leased_until=c.leased_until,
            )
        )
        await lock.close()
        async with transaction(sessions) as s:
            assert await reclaim_orphans(s, datetime.now(UTC)) == 0
    [row] = await deliveries(sessions)
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 1, None)
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=5), "its back-off"
