"""The deliverer: a process that sends the outbox's notices, outside Temporal.

Why a process and not a workflow (see docs/notifications.md, "The deliverer"): the
outbox is a table, the sends are plain I/O whose retries are times on its rows, and a
workflow per pass filled the Temporal UI's list with 17,280 executions a day. The
deliverer starts none: it sleeps until PostgreSQL wakes it (``NOTIFY`` on
:data:`~db.deliveries.WAKE_CHANNEL`, sent in the transaction that writes notices and by
the admin's retry) or until the next delivery is due (a retry's back-off, a notice held
to working hours), then plans, claims and sends with the code the workflow used
(:class:`~activities.delivery.DeliveryActivities`).

Safe with several replicas: a claim is ``FOR UPDATE SKIP LOCKED`` plus a lease, and a
batch sends only rows that still hold its lease, so two deliverers never send one
delivery. A deliverer killed mid-batch loses nothing, and its rows do not wait for their
lease (about two minutes for mail): see :class:`ClaimerLock`. A cancelled one hands them
back itself. A send that reached the receiver but was not recorded before the kill is
sent again with the same dedupe id (Message-ID, ``webhook-id``): at least once, never
lost.

Why an advisory lock, and not a heartbeat column or a shorter lease. A process's death
must be seen at once, and a live process must never be taken for dead. PostgreSQL ends
a session, and every session-level lock it holds, as soon as its client's connection
closes, which is what a SIGKILL (or an OOM kill, a crash) does; no clock, no timeout to
tune. A heartbeat written every few seconds would see death only after a timeout, and
would take a live but slow (paused, overloaded) process for dead; a short lease the
same. So each deliverer holds ``pg_advisory_lock(CLAIMER_LOCK_CLASS, id)`` on a
connection of its own and claims with that ``id``; whoever finds a claimer's lock free
takes it for one transaction (``pg_try_advisory_xact_lock``) and makes its rows due
(:func:`~db.deliveries.reclaim_orphans`). The lease stays as the backstop: a connection
that lingers on the server (a network partition, the server not yet aware) keeps the
lock, and its rows wait for the lease as before. The one way a live deliverer loses its
lock is its lock connection ending (a server restart, ``pg_terminate_backend``, a
proxy): it then sends nothing more under that id (every send asks first), cancels the
sends under way, hands the rest back and claims under a new id. A send cancelled after
the receiver had it is sent again with the same dedupe id, as after a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.delivery import LEASE_MARGIN, DeliveryActivities
from common.action_links import decision_links
from common.business_calendar import load_business_calendar, log_calendar_warnings
from common.metrics import serve as serve_metrics
from common.policy_store import load_policies
from common.redaction import configured_secrets, install_log_redaction
from common.settings import Settings
from db.deliveries import (
    CLAIMER_LOCK_CLASS,
    WAKE_CHANNEL,
    ClaimedRow,
    claims_of_others,
    next_due,
    orphans_waiting,
    reclaim_orphans,
    release_claims,
)
from db.engine import make_engine, make_sessionmaker, transaction
from domain.delivery import Claimed, DeliverBatchInput, DeliverBatchOutput, DeliverNoticesInput
from notify.setup import Notifier, build_notifier

log = logging.getLogger("approvals.deliverer")

IDLE_CHECK = timedelta(seconds=60)
"""The longest the deliverer sleeps without looking at the table: a wake-up lost while
it was not listening (its connection dropped) is made up within this."""
RECONNECT_MAX = 30.0
"""Seconds between attempts to listen again, at most (doubling from 1 s)."""
RECLAIM_CHECK = timedelta(seconds=2)
"""While another deliverer holds claims, how often a sleeping one looks whether that one
is gone (one small query): its rows are sent within this of its death."""
LOCK_PING = 2.0
"""Seconds between looks at the lock connection while a batch is sent; one unanswered
for as long ends the claim."""


@dataclass
class PassResult:
    planned: int = 0
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errored: int = 0


def _setter(event: asyncio.Event) -> Callable[..., None]:
    """A callback for asyncpg that sets ``event``, whatever it is called with."""
    return lambda *_: event.set()


def listen_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` address asyncpg takes, from SQLAlchemy's URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ClaimerLock:
    """This process's claimer id, alive while its advisory lock is held on a connection of
    its own (see the module). ``acquire`` before each claim; ``held`` before each send."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._lost = asyncio.Event()
        self.id: int | None = None

    @property
    def held(self) -> bool:
        return self.id is not None and not self._lost.is_set()

    async def acquire(self) -> int:
        """The id to claim under: the one held if its connection answers, else a new one."""
        if self.id is not None and not self._lost.is_set():
            try:
                await self._conn.fetchval("SELECT 1", timeout=LOCK_PING)
                return self.id
            except Exception as exc:
                log.warning("deliverer's lock connection does not answer (%s)", exc)
                self._lost.set()
        await self.close()
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            while True:  # an id a live deliverer holds is refused: take another
                candidate = secrets.randbelow(2**31 - 1) + 1
                if await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, $2)", CLAIMER_LOCK_CLASS, candidate
                ):
                    break
        except BaseException:
            await conn.close(timeout=2)
            raise
        lost = asyncio.Event()
        conn.add_termination_listener(_setter(lost))
        self._conn, self._lost, self.id = conn, lost, candidate
        log.info("deliverer claims as %d", candidate)
        return candidate

    async def watch(self) -> None:
        """Return when the lock is lost: its connection ended or stopped answering."""
        lost, conn = self._lost, self._conn
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), LOCK_PING)
            if lost.is_set():
                break
            try:
                await conn.fetchval("SELECT 1", timeout=LOCK_PING)
            except Exception as exc:
                log.warning("deliverer's lock connection does not answer (%s)", exc)
                lost.set()
        log.warning("deliverer %s lost its claimer lock", self.id)

    async def close(self) -> None:
        """Let the lock go (closing its connection does)."""
        conn, self._conn, self.id = self._conn, None, None
        self._lost.set()
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))


class Deliverer:
    """Plans, claims and sends due deliveries whenever there are some; see the module."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        notifier: Notifier,
        database_url: str,
        *,
        batch: int = DeliverNoticesInput().batch,
        idle_check: timedelta = IDLE_CHECK,
        lease_margin: timedelta = LEASE_MARGIN,
        reclaim_check: timedelta = RECLAIM_CHECK,
    ) -> None:
        self._sessions = sessions
        self._sender = DeliveryActivities(sessions, notifier)
        self._dsn = listen_dsn(database_url)
        self._batch = batch
        self._idle_check = idle_check
        self._lease_margin = lease_margin
        self._reclaim_check = reclaim_check.total_seconds()
        self._watching = False
        """Another deliverer holds claims: look every reclaim check whether it is gone."""
        self.claimer = ClaimerLock(self._dsn)
        self._wake = asyncio.Event()
        self.listening = asyncio.Event()
        """Set while a ``LISTEN`` connection is open (tests wait for it)."""
        self.passes = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        listener = asyncio.create_task(self._listen(), name="deliverer-listen")
        try:
            while True:
                self._wake.clear()  # before the pass: a NOTIFY during it runs another
                wait = await self._pass_and_wait()
                await self._sleep(wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.claimer.close()

    async def _sleep(self, seconds: float) -> None:
        """Until woken or ``seconds`` passed; sooner when a deliverer that held claims is
        gone. Looked at every reclaim check while another deliverer holds claims, and
        once a reclaim check into each sleep (a replica woken with this one may have
        claimed just after this pass looked), so an idle system adds one query a sleep."""
        deadline = asyncio.get_running_loop().time() + seconds
        first = True
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            step = min(left, self._reclaim_check) if self._watching or first else left
            try:
                await asyncio.wait_for(self._wake.wait(), step)
                return
            except TimeoutError:
                pass
            if not (self._watching or first) or left <= step:
                continue
            try:
                async with self._sessions() as session:
                    if first and not self._watching:
                        self._watching = await claims_of_others(session, self.claimer.id)
                    elif await orphans_waiting(session):
                        return
            except Exception:  # the database is down: the next pass says so
                return
            first = False

    async def _pass_and_wait(self) -> float:
        """One pass; the seconds to sleep before the next unless woken."""
        try:
            await self.run_once()
            async with self._sessions() as session:
                due = await next_due(session)
                self._watching = await claims_of_others(session, self.claimer.id)
        except Exception:  # the database is down: try again soon, never exit
            log.exception("delivery pass failed; trying again in 5 s")
            return 5.0
        if due is None:
            return self._idle_check.total_seconds()
        wait = (due - datetime.now(UTC)).total_seconds()
        return min(max(wait, 0.0), self._idle_check.total_seconds())

    async def run_once(self) -> PassResult:
        """Plan new notices, claim the due deliveries and send them, the channels at once.

        Claims of deliverers that are gone are due again first. Cancelled mid-batch, or
        its claimer lock lost, it hands the rows it did not record back (due now).
        """
        me = await self.claimer.acquire()
        async with transaction(self._sessions) as session:
            reclaimed = await reclaim_orphans(session, datetime.now(UTC))
        if reclaimed:
            log.info("%d deliveries claimed by a deliverer that is gone are due again", reclaimed)
        batch = await self._sender.plan_and_claim_due(self._batch, self._lease_margin, me)
        self.passes += 1
        out = PassResult(planned=batch.planned, claimed=len(batch.claimed))
        by_channel: dict[str, list[Claimed]] = {}
        for c in batch.claimed:
            by_channel.setdefault(c.channel, []).append(c)
        sent = await self._send(by_channel, me, batch.claimed) if batch.claimed else []
        for result in sent:
            if isinstance(result, DeliverBatchOutput):
                for o in result.outcomes:
                    if o.status == "sent":
                        out.sent += 1
                    elif o.status == "pending":
                        out.retrying += 1
                    elif o.status == "failed":
                        out.failed += 1
                    elif o.status == "error":
                        out.errored += 1
            elif isinstance(result, BaseException):
                log.error("a channel's batch failed: %r", result)
        if out.planned or out.claimed:
            log.info(
                "planned %d notice(s); of %d due deliveries %d sent, %d to retry, %d failed, "
                "%d not recorded",
                out.planned,
                out.claimed,
                out.sent,
                out.retrying,
                out.failed,
                out.errored,
            )
        return out

    async def _send(
        self, by_channel: dict[str, list[Claimed]], me: int, every: list[Claimed]
    ) -> list[DeliverBatchOutput | BaseException]:
        """Send each channel's batch, the channels at once, while ``me`` holds the lock."""

        def still_mine() -> bool:
            return self.claimer.held and self.claimer.id == me

        sending = asyncio.gather(
            *(
                self._sender.send_batch(
                    DeliverBatchInput(
                        channel=channel,
                        delivery_ids=[c.delivery_id for c in claimed],
                        timeout_seconds=claimed[0].timeout_seconds,
                        leased_until=claimed[0].leased_until,
                    ),
                    may_send=still_mine,
                )
                for channel, claimed in by_channel.items()
            ),
            return_exceptions=True,
        )
        watch = asyncio.create_task(self.claimer.watch())
        waiting: set[asyncio.Future[Any]] = {sending, watch}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            await asyncio.shield(self._hand_back(every))
            raise
        finally:
            watch.cancel()
        if not sending.done():  # the lock is gone: another may take these rows now
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            await self._hand_back(every)
            return []
        return sending.result()

    async def _hand_back(self, claimed: list[Claimed]) -> None:
        rows = [
            ClaimedRow(c.delivery_id, c.channel, c.leased_until) for c in claimed if c.leased_until
        ]
        if not rows:
            return
        try:
            async with transaction(self._sessions) as session:
                released = await release_claims(session, rows, datetime.now(UTC))
        except Exception:
            log.exception(
                "could not hand back %d claimed deliveries; their lease runs out", len(rows)
            )
            return
        if released:
            log.info("stopped mid-batch: %d unrecorded deliveries are due again", released)

    async def _listen(self) -> None:
        """Keep a ``LISTEN`` connection open, waking the loop on each ``NOTIFY``; reconnect
        with back-off when it drops (the loop meanwhile looks at least every idle check)."""
        delay = 1.0
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(WAKE_CHANNEL, _setter(self._wake))
                self.listening.set()
                self._wake.set()  # anything written while nobody listened
                log.info("deliverer listening on %s", WAKE_CHANNEL)
                delay = 1.0
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 30)
                    if not lost.is_set():
                        # A connection whose server vanished without a word ends here.
                        await conn.fetchval("SELECT 1", timeout=10)
                log.warning("deliverer's LISTEN connection was lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("deliverer cannot listen (%s); trying again in %.0f s", exc, delay)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)


async def run_deliverer(settings: Settings) -> None:
    """The ``approvals deliverer`` process: deliver until cancelled (SIGINT/SIGTERM)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction(configured_secrets(settings))
    url = settings.require_database_url()
    engine = make_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    today = datetime.now(UTC).date()
    calendar = load_business_calendar(settings, today)
    log_calendar_warnings(calendar, today)
    notifier = build_notifier(
        settings,
        action_links=decision_links(settings),
        calendar=calendar,
        policies=load_policies(settings.policy_dir),
    )
    metrics_server = serve_metrics(settings.metrics_address)
    deliverer = Deliverer(
        make_sessionmaker(engine),
        notifier,
        url,
        idle_check=timedelta(seconds=settings.deliverer_idle_check_seconds),
    )
    log.info(
        "deliverer: woken by NOTIFY %s, looking at least every %g s (%d sends of a channel at "
        "once); metrics on %s",
        WAKE_CHANNEL,
        settings.deliverer_idle_check_seconds,
        settings.delivery_concurrency,
        settings.metrics_address or "(off)",
    )
    try:
        # Until cancelled: `approvals deliverer` cancels it on SIGINT/SIGTERM, and a batch
        # under way hands back the rows it did not record.
        await deliverer.run()
    finally:
        log.info("deliverer stopping")
        if metrics_server is not None:
            metrics_server.shutdown()
        await engine.dispose()
