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
delivery. A deliverer killed mid-batch loses nothing: the rows it did not record keep
their lease and fall due again when it runs out (a cancelled one hands them back at
once). A send that reached the receiver but was not recorded before the kill is sent
again with the same dedupe id (Message-ID, ``webhook-id``): at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from db.deliveries import WAKE_CHANNEL, ClaimedRow, next_due, release_claims
from db.engine import make_engine, make_sessionmaker, transaction
from domain.delivery import Claimed, DeliverBatchInput, DeliverBatchOutput, DeliverNoticesInput
from notify.setup import Notifier, build_notifier

log = logging.getLogger("approvals.deliverer")

IDLE_CHECK = timedelta(seconds=60)
"""The longest the deliverer sleeps without looking at the table: a wake-up lost while
it was not listening (its connection dropped) is made up within this."""
RECONNECT_MAX = 30.0
"""Seconds between attempts to listen again, at most (doubling from 1 s)."""


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
    ) -> None:
        self._sessions = sessions
        self._sender = DeliveryActivities(sessions, notifier)
        self._dsn = listen_dsn(database_url)
        self._batch = batch
        self._idle_check = idle_check
        self._lease_margin = lease_margin
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
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _pass_and_wait(self) -> float:
        """One pass; the seconds to sleep before the next unless woken."""
        try:
            await self.run_once()
            async with self._sessions() as session:
                due = await next_due(session)
        except Exception:  # the database is down: try again soon, never exit
            log.exception("delivery pass failed; trying again in 5 s")
            return 5.0
        if due is None:
            return self._idle_check.total_seconds()
        wait = (due - datetime.now(UTC)).total_seconds()
        return min(max(wait, 0.0), self._idle_check.total_seconds())

    async def run_once(self) -> PassResult:
        """Plan new notices, claim the due deliveries and send them, the channels at once.

        Cancelled mid-batch, it hands the rows it did not record back (due now) first.
        """
        batch = await self._sender.plan_and_claim_due(self._batch, self._lease_margin)
        self.passes += 1
        out = PassResult(planned=batch.planned, claimed=len(batch.claimed))
        by_channel: dict[str, list[Claimed]] = {}
        for c in batch.claimed:
            by_channel.setdefault(c.channel, []).append(c)
        try:
            sent = await asyncio.gather(
                *(
                    self._sender.send_batch(
                        DeliverBatchInput(
                            channel=channel,
                            delivery_ids=[c.delivery_id for c in claimed],
                            timeout_seconds=claimed[0].timeout_seconds,
                            leased_until=claimed[0].leased_until,
                        )
                    )
                    for channel, claimed in by_channel.items()
                ),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(batch.claimed))
            raise
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
