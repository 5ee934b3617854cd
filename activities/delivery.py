"""The delivery activities: plan and claim due deliveries, and send them.

A pass sends each channel's claimed rows in one activity (``deliver_batch``), a
few at once, each send bounded by its channel's time limit: one activity per
channel rather than per row, because a Temporal round trip and two transactions
per message cost more than most sends. ``deliver`` (one row) stays for passes
started before the batches.

A send never raises for a channel's failure: the outcome (sent, retry at a
later time, failed for good) is recorded on the ``deliveries`` row, which is
where the backoff lives, so a channel that is down delays only its own
messages. What does raise (the database down) is retried by Temporal; if it
keeps failing the row's lease runs out and a later pass takes it again, with
the same dedupe id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from common.metrics import count_delivery_attempt
from db.deliveries import (
    DeliveryJob,
    claim_due,
    load_job,
    load_jobs,
    plan_deliveries,
    prune_finished,
    record_attempt,
)
from db.engine import transaction
from db.models import RequestRow
from domain.delivery import (
    CHANNELS,
    Claimed,
    ClaimedBatch,
    DeliverBatchInput,
    DeliverBatchOutput,
    DeliverInput,
    DeliverNoticesInput,
    DeliverOutcome,
    batch_time_limit,
    send_limit,
)
from domain.delivery import (
    DeliveryActivityNames as Names,
)
from notify.message import Rendered, SendError, check_shareable
from notify.render import NoticeFacts
from notify.setup import Notifier

log = logging.getLogger("approvals.delivery")

LEASE_MARGIN = timedelta(seconds=60)
"""A claimed row is left alone this long past its channel's time limit."""
_FACT_KEYS = ("request_id", "title", "stage", "due")


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _stage_key(req: RequestRow, name: str) -> str | None:
    """The key of the request's stage called ``name``: the notice names its stage in the
    workflow's default language, the recipient may read another."""
    for source in (req.view or {}, req.route or {}):
        for stage in source.get("stages") or []:
            if isinstance(stage, dict) and stage.get("name") == name and stage.get("key"):
                return str(stage["key"])
    return None


def notice_facts(job: DeliveryJob) -> NoticeFacts:
    """What the message says, from the notice's payload and, where it lacks it, the request."""
    payload = dict(job.notice.payload or {})
    req = job.request
    stage = payload.get("stage")
    stage_key = None
    if stage is None and req is not None and req.view and req.stage_index is not None:
        stages = req.view.get("stages") or []
        if 0 <= req.stage_index < len(stages):
            stage = stages[req.stage_index].get("name")
            stage_key = stages[req.stage_index].get("key")
    elif stage is not None and req is not None:
        stage_key = _stage_key(req, str(stage))
    deadline = _parse_time(payload.get("due"))
    if deadline is None and req is not None and req.closed_at is None:
        deadline = req.resolve_due
    amount = req.amount if req is not None else None
    return NoticeFacts(
        kind=job.notice.template,
        recipient=job.notice.recipient,
        recipient_name=job.user.name if job.user is not None else job.notice.recipient,
        request_id=job.notice.request_id,
        title=str(payload.get("title") or (req.title if req is not None else "")),
        amount=Decimal(amount) if amount is not None else None,
        stage=stage,
        stage_index=job.stage_index,
        step_since=job.step_since,
        deadline=deadline,
        customer=req.customer if req is not None else None,
        request_type=req.type if req is not None else None,
        policy_type=req.policy_type if req is not None else None,
        stage_key=stage_key,
        extra={k: v for k, v in payload.items() if k not in _FACT_KEYS},
    )


def webhook_event(job: DeliveryJob, rendered: Rendered) -> dict[str, Any]:
    """The JSON event a webhook subscriber receives.

    Raises:
        SendError: permanent, when ``rendered`` was made for one person (with their
            decision links): a subscriber is never that person.
    """
    check_shareable(rendered, f"webhook {job.delivery.target}")
    return {
        "type": f"notice.{job.notice.template}",
        "id": job.delivery.dedupe_id,
        "timestamp": job.notice.created_at.astimezone(UTC).isoformat(),
        "data": {
            "kind": job.notice.template,
            "recipient": job.notice.recipient,
            "request_id": job.notice.request_id,
            "subject": rendered.subject,
            "link": rendered.link,
            "payload": job.notice.payload,
            "facts": {k: str(v) for k, v in rendered.facts.items()},
        },
    }


class DeliveryActivities:
    """Activities with an injected session factory and :class:`Notifier`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], notifier: Notifier) -> None:
        self._sessions = sessions
        self._notifier = notifier

    @activity.defn(name=Names.PLAN_AND_CLAIM)
    async def plan_and_claim(self, input: DeliverNoticesInput) -> ClaimedBatch:
        """Fan new notices out to their deliveries, then claim up to ``batch`` due ones
        of each channel."""
        return await self.plan_and_claim_due(input.batch)

    async def plan_and_claim_due(
        self, batch: int, lease_margin: timedelta = LEASE_MARGIN, claimer: int | None = None
    ) -> ClaimedBatch:
        """:meth:`plan_and_claim` outside an activity (the deliverer process calls it, with
        its ``claimer`` id: see ``worker.deliverer.ClaimerLock``)."""
        n = self._notifier
        now = datetime.now(UTC)
        async with transaction(self._sessions) as session:
            planned = await plan_deliveries(session, now, n.plan_config())

        def lease(channel: str, count: int) -> timedelta:
            # Long enough for the channel's whole batch (and for one send of the
            # per-delivery path): no other pass takes a row while it may still be sent.
            return batch_time_limit(count, n.concurrency, n.timeout_of(channel)) + lease_margin

        async with transaction(self._sessions) as session:
            claimed = await claim_due(session, now, batch, lease, CHANNELS, claimer)
        if n.retention is not None:
            async with transaction(self._sessions) as session:
                pruned = await prune_finished(session, now - n.retention)
            if pruned:
                log.info("deleted %d finished deliveries (retention)", pruned)
        return ClaimedBatch(
            planned=planned,
            claimed=[
                Claimed(
                    delivery_id=c.id,
                    channel=c.channel,
                    timeout_seconds=n.timeout_of(c.channel),
                    leased_until=c.leased_until,
                )
                for c in claimed
            ],
            concurrency=n.concurrency,
        )

    @activity.defn(name=Names.DELIVER)
    async def deliver(self, input: DeliverInput) -> DeliverOutcome:
        """Send one delivery and record the outcome on its row."""
        async with self._sessions() as session:
            job = await load_job(session, input.delivery_id)
        if job is None:
            return DeliverOutcome(delivery_id=input.delivery_id, status="gone")
        if job.delivery.status != "pending":
            return DeliverOutcome(delivery_id=input.delivery_id, status=job.delivery.status)
        return await self._attempt(job)

    @activity.defn(name=Names.DELIVER_BATCH)
    async def deliver_batch(self, input: DeliverBatchInput) -> DeliverBatchOutput:
        """Send one channel's claimed deliveries, a few at once, each outcome recorded on
        its row as soon as its send ends.

        Idempotent: a row that is no longer pending, or whose lease has moved (an earlier
        attempt of this activity recorded it, or a later pass claimed it again), is not
        sent again; its outcome is what the row says. A worker that dies mid-batch loses
        nothing: the rows it did not record keep their lease and are sent again, with the
        same dedupe id, by the retry of this activity or a later pass.
        """
        return await self.send_batch(input, activity.heartbeat)

    async def send_batch(
        self,
        input: DeliverBatchInput,
        progress: Callable[[int], None] = lambda _: None,
        may_send: Callable[[], bool] = lambda: True,
    ) -> DeliverBatchOutput:
        """:meth:`deliver_batch` outside an activity; ``progress`` hears the number of
        outcomes recorded so far (0 before the first send). A row is sent only while
        ``may_send()`` (the deliverer's claim still stands); else it is left, not recorded."""
        async with self._sessions() as session:
            jobs = await load_jobs(session, input.delivery_ids)
        outcomes: dict[int, DeliverOutcome] = {}
        todo: list[DeliveryJob] = []
        for i in input.delivery_ids:
            job = jobs.get(i)
            if job is None:
                outcomes[i] = DeliverOutcome(delivery_id=i, status="gone")
            elif job.delivery.status != "pending" or (
                input.leased_until is not None
                and job.delivery.next_attempt_at != input.leased_until
            ):
                d = job.delivery
                outcomes[i] = DeliverOutcome(delivery_id=i, status=d.status, error=d.last_error)
            else:
                todo.append(job)
        progress(0)
        slots = asyncio.Semaphore(self._notifier.concurrency)
        recorded = 0

        async def one(job: DeliveryJob) -> None:
            nonlocal recorded
            async with slots:
                if not may_send():
                    outcomes[job.delivery.id] = DeliverOutcome(
                        delivery_id=job.delivery.id, status="error", error="claim lost"
                    )
                    return
                try:
                    outcomes[job.delivery.id] = await self._attempt(job)
                except Exception as exc:  # the database: this row alone waits for its lease
                    log.exception("delivery %s not recorded", job.delivery.id)
                    outcomes[job.delivery.id] = DeliverOutcome(
                        delivery_id=job.delivery.id, status="error", error=repr(exc)[:500]
                    )
            recorded += 1
            progress(recorded)

        await asyncio.gather(*(one(job) for job in todo))
        return DeliverBatchOutput(outcomes=[outcomes[i] for i in input.delivery_ids])

    async def _attempt(self, job: DeliveryJob) -> DeliverOutcome:
        """Send ``job`` (a pending row) and record the outcome on its row."""
        error: str | None = None
        permanent = False
        try:
            await self._send(job)
        except SendError as exc:
            error, permanent = exc.reason, exc.permanent
        async with transaction(self._sessions) as session:
            status = await record_attempt(
                session,
                job.delivery.id,
                datetime.now(UTC),
                error=error,
                permanent=permanent,
                max_attempts=self._notifier.max_attempts,
            )
        d = job.delivery
        count_delivery_attempt(d.channel, status)
        if error is None:
            log.info("delivery %s sent (%s %s)", d.id, d.channel, d.target)
        else:
            log.warning("delivery %s (%s): %s -> %s", d.id, d.channel, error, status)
        return DeliverOutcome(delivery_id=d.id, status=status, error=error)

    async def _send(self, job: DeliveryJob) -> None:
        n = self._notifier
        d = job.delivery
        pref = job.preference
        # Rendered for this channel's audience: decision links only where the recipient
        # alone reads the message.
        rendered = n.render_for(
            d.channel,
            notice_facts(job),
            pref.locale if pref is not None else None,
            pref.time_zone if pref is not None else None,
        )
        limit = send_limit(n.timeout_of(d.channel))
        try:
            async with asyncio.timeout(limit):
                if d.channel == "email":
                    # The address as the directory has it now (a retry after a fix reaches it).
                    to = (job.user.email if job.user is not None else None) or d.target
                    if not to:
                        raise SendError(
                            f"user {job.notice.recipient} has no e-mail address", permanent=True
                        )
                    await n.email.send(rendered, to, d.dedupe_id)
                elif d.channel == "webhook":
                    await n.webhooks.send(d.target, webhook_event(job, rendered), d.dedupe_id)
                elif d.channel in n.robots:
                    await n.robots[d.channel].send(rendered)
                else:
                    raise SendError(f"the {d.channel} channel is not configured", permanent=True)
        except TimeoutError as exc:
            raise SendError(f"{d.channel}: no answer within {limit:g} s") from exc
