"""DeliverNotices: one pass of the delivery pipeline, started every few seconds by a Schedule.

Why a scheduled short workflow, and not an activity inside the approval
workflow or a long-running dispatcher: the approval workflow only writes
``notifications`` rows in the same transaction as its transition (an outbox),
so no channel can ever slow or block an approval. A pass plans the new notices'
deliveries, claims the due ones (``FOR UPDATE SKIP LOCKED``, so passes and
worker replicas never take the same row) and sends each channel's in one
activity, a few at once, each send with its channel's time limit; the channels
all at once. (Passes started before ``deliver-batches`` send one activity per
delivery, and replay so.) Retries with backoff are times on
the rows, not sleeps in a workflow: a pass is short, its history small, and
nothing is lost if a worker dies (the row's lease runs out, a later pass takes
it with the same dedupe id). The schedule skips a tick while a pass runs, and
the Temporal UI shows every pass with what it did.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.delivery import (
        DELIVERY_WORKFLOW_NAME,
        Claimed,
        ClaimedBatch,
        DeliverBatchInput,
        DeliverBatchOutput,
        DeliverInput,
        DeliverNoticesInput,
        DeliverNoticesOutput,
        DeliverOutcome,
        batch_heartbeat_timeout,
        batch_time_limit,
    )
    from domain.delivery import DeliveryActivityNames as Activities

# Only for infrastructure failures (database down): a channel's failure is recorded, not raised.
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)


@workflow.defn(name=DELIVERY_WORKFLOW_NAME)
class DeliverNoticesWorkflow:
    @workflow.run
    async def run(self, input: DeliverNoticesInput) -> DeliverNoticesOutput:
        batch: ClaimedBatch = await workflow.execute_activity(
            Activities.PLAN_AND_CLAIM,
            input,
            result_type=ClaimedBatch,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
            summary="plan new notices' deliveries and claim the due ones",
        )
        out = DeliverNoticesOutput(planned=batch.planned)
        results: list[DeliverOutcome | BaseException]
        if workflow.patched("deliver-batches"):
            results = await self._deliver_by_channel(batch)
        else:
            results = await asyncio.gather(
                *(
                    workflow.execute_activity(
                        Activities.DELIVER,
                        DeliverInput(delivery_id=c.delivery_id),
                        result_type=DeliverOutcome,
                        # The activity bounds the send at twice the channel's limit, plus the
                        # database work around it.
                        start_to_close_timeout=timedelta(seconds=c.timeout_seconds * 2 + 20),
                        retry_policy=_RETRY,
                        summary=f"deliver #{c.delivery_id} by {c.channel}",
                    )
                    for c in batch.claimed
                ),
                return_exceptions=True,
            )
        for result in results:
            if isinstance(result, DeliverOutcome):
                if result.status == "sent":
                    out.sent += 1
                elif result.status == "pending":
                    out.retrying += 1
                elif result.status == "failed":
                    out.failed += 1
                elif result.status == "error":
                    out.errored += 1
            elif isinstance(result, ActivityError):
                out.errored += 1
            elif isinstance(result, BaseException):
                raise result
        workflow.set_current_details(
            f"planned {out.planned} notice(s); of {len(batch.claimed)} due deliveries "
            f"{out.sent} sent, {out.retrying} to retry, {out.failed} failed, "
            f"{out.errored} not recorded"
        )
        return out

    async def _deliver_by_channel(
        self, batch: ClaimedBatch
    ) -> list[DeliverOutcome | BaseException]:
        """One activity per channel, all at once: a slow channel delays only its own.

        Each delivery's outcome; every delivery of a channel whose activity failed gets
        that failure (counted as not recorded).
        """
        by_channel: dict[str, list[Claimed]] = {}
        for c in batch.claimed:
            by_channel.setdefault(c.channel, []).append(c)
        sent = await asyncio.gather(
            *(
                workflow.execute_activity(
                    Activities.DELIVER_BATCH,
                    DeliverBatchInput(
                        channel=channel,
                        delivery_ids=[c.delivery_id for c in claimed],
                        timeout_seconds=claimed[0].timeout_seconds,
                        leased_until=claimed[0].leased_until,
                    ),
                    result_type=DeliverBatchOutput,
                    start_to_close_timeout=batch_time_limit(
                        len(claimed), batch.concurrency, claimed[0].timeout_seconds
                    ),
                    # A dead worker is noticed after one send's time, not the whole batch's;
                    # the retry sends only what was not recorded.
                    heartbeat_timeout=batch_heartbeat_timeout(claimed[0].timeout_seconds),
                    retry_policy=_RETRY,
                    summary=f"deliver {len(claimed)} by {channel}",
                )
                for channel, claimed in by_channel.items()
            ),
            return_exceptions=True,
        )
        results: list[DeliverOutcome | BaseException] = []
        for claimed, result in zip(by_channel.values(), sent, strict=True):
            if isinstance(result, DeliverBatchOutput):
                results += result.outcomes
            else:
                results += [result] * len(claimed)
        return results
