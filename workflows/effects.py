"""Carrying out the process's effects with Temporal: activities, local activities, attributes.

:class:`Effects` drives a step of the process (:func:`domain.core.machine.transition`)
to its end, turning each effect it yields into the Temporal command it stands for,
in the order yielded. That order is what the stored histories (``tests/histories``)
pin: change it only behind ``workflow.patched`` (docs/versioning.md). What a write
comes to (failed, then written) goes back to the process as an input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.constants import Activities
    from domain.core.details import details
    from domain.core.effects import (
        Effect,
        FlagStuck,
        LookUp,
        Patched,
        Pay,
        Step,
        Unflag,
        Verify,
        Write,
    )
    from domain.core.inputs import Input, WriteSucceeded
    from domain.core.projection import view_of
    from domain.core.publishing import published
    from domain.core.writes import MAX_BATCH, batch_summary, stuck_pause, write_failed
    from domain.policy import Policy
    from domain.process import (
        PayoutOutput,
        RequestState,
        TransitionBatch,
        TransitionRecord,
        VerifyProofOutput,
    )
    from workflows import search_attributes as sa

# Activities: short, retried until they succeed. A transition must never be lost,
# so there is no maximum of attempts and no error type that gives up: an activity
# that fails for good would fail the request itself. A stuck one shows in the
# Temporal UI with its attempt count and resumes once the cause is fixed.
_ACTIVITY_TIMEOUT = timedelta(seconds=30)
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
# Writing a transition: a few quick attempts, then the request is flagged stuck
# (search attribute, read-model, ERROR log) and retried on a durable timer until
# the cause is fixed. It never gives up: a transition must not be lost.
_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3
)
_FLAG_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
_VERIFY_TIMEOUT = timedelta(seconds=10)
_LOCAL_TIMEOUT = timedelta(seconds=10)
_LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)

ONE_WRITE = "one-write-per-transition"
"""Patch: an input's transitions are written by one activity, look-ups run locally.

Requests started before it replay the old way (one activity per event, remote
look-ups); see docs/versioning.md."""

LOCAL_WRITES = "local-writes"
"""Patch: a batch is written by a local activity, in the workflow task that made it.

No activity task goes through the server: a decision is one workflow task. Should
the worker die meanwhile, the task times out and another worker writes the batch
again (idempotent on the sequence numbers). Requests started before it write their
batches with a regular activity."""

_R = TypeVar("_R")

Feed = Callable[[Input], Awaitable[RequestState]]
"""Hands an input to the process and answers the state it returns (the workflow's)."""


class Effects:
    """The Temporal side of one request's process.

    Args:
        feed: how what a write came to goes back to the process, as an input.
    """

    def __init__(
        self, feed: Feed, language: str | None = None, policy: Policy | None = None
    ) -> None:
        self._feed = feed
        # The Temporal UI's current details: in the operators' language from the input
        # (None: English, as always). Not a command: replay does not see it.
        self._language = language
        self._policy = policy
        self.batched = False  # set at the start of the run: see ONE_WRITE
        self.local_writes = False  # likewise: see LOCAL_WRITES
        self._pending: list[TransitionRecord] = []
        self._last_search_attributes: tuple[Any, ...] | None = None

    def start(self, *, one_write: bool) -> None:
        """Which shape this run has: decided once, at the start of every run."""
        self.batched = one_write
        self.local_writes = one_write and workflow.patched(LOCAL_WRITES)

    async def drive(self, step: Step[_R]) -> _R:
        """Run ``step`` to its end, carrying out each effect and sending back its result."""
        result: Any = None
        while True:
            try:
                effect = step.send(result)
            except StopIteration as done:
                return done.value
            try:
                result = await self._carry_out(effect)
            except BaseException:
                step.close()  # the step's own clean-up runs before the error goes on
                raise

    async def _carry_out(self, effect: Effect) -> Any:
        if isinstance(effect, Write):
            await self._record(effect)
            return None
        if isinstance(effect, LookUp):
            return await self._look_up(effect)
        if isinstance(effect, Verify):
            return await workflow.execute_local_activity(
                Activities.VERIFY_PROOF,
                effect.arg,
                result_type=VerifyProofOutput,
                start_to_close_timeout=_VERIFY_TIMEOUT,
                retry_policy=_RETRY,
                summary="who sent this?",
            )
        if isinstance(effect, Patched):
            return workflow.patched(effect.change)
        if isinstance(effect, Pay):
            return await workflow.execute_activity(
                Activities.EXECUTE_PAYOUT,
                effect.arg,
                result_type=PayoutOutput,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_RETRY,
                summary=effect.summary,
            )
        if isinstance(effect, FlagStuck):
            return await self._flag_stuck(effect)
        if isinstance(effect, Unflag):
            workflow.upsert_search_attributes([sa.STUCK.value_set(False)])
            return None
        raise AssertionError(f"unknown effect {effect!r}")

    async def _look_up(self, q: LookUp) -> Any:
        """A read-only directory look-up: local (no server round trip) once patched."""
        if self.batched:
            try:
                return await workflow.execute_local_activity(
                    q.activity,
                    q.arg,
                    result_type=q.result_type,
                    start_to_close_timeout=_LOCAL_TIMEOUT,
                    retry_policy=_LOCAL_RETRY,
                    summary=q.summary,
                )
            except (ActivityError, ApplicationError):
                # (A local activity's failure may arrive as its bare ApplicationError.)
                # The directory did not answer here: ask again as a regular activity,
                # which the server retries for as long as it takes, on any worker.
                pass
        return await workflow.execute_activity(
            q.activity,
            q.arg,
            result_type=q.result_type,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_RETRY,
            summary=q.summary,
        )

    async def _flag_stuck(self, flag: FlagStuck) -> None:
        stuck = flag.arg.stuck
        workflow.logger.error(
            "request %s is stuck after %d attempts: %s",
            flag.arg.request_id,
            stuck.attempts,
            stuck.reason,
        )
        workflow.upsert_search_attributes([sa.STUCK.value_set(True)])
        workflow.set_current_details(self._details(flag.state))
        try:
            await workflow.execute_activity(
                Activities.MARK_STUCK,
                flag.arg,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_FLAG_RETRY,
                summary="flag: stuck",
            )
        except ActivityError:
            pass  # the database is out of reach: the search attribute and the log say it

    # ------------------------------------------------------------ writing

    async def _record(self, write: Write) -> None:
        if not self.batched:
            record = TransitionRecord(
                view=view_of(write.state, history=False), event=write.event, notices=write.notices
            )
            summary = f"record #{write.event.seq}: {write.event.kind}"
            await self._write(Activities.RECORD_TRANSITION, record, summary, write.state)
            return
        # The read-model goes with the batch, as the state stands when it is written.
        self._pending.append(TransitionRecord(event=write.event, notices=write.notices))
        if len(self._pending) >= MAX_BATCH:
            await self.flush(write.state)

    async def flush(self, state: RequestState) -> None:
        """Write the transitions recorded since the last flush: one activity, one transaction."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        batch_of = TransitionBatch(records=batch, view=view_of(state, history=False))
        await self._write(
            Activities.RECORD_TRANSITIONS,
            batch_of,
            batch_summary(batch),
            state,
            local=self.local_writes,
        )

    async def _write(
        self, activity: str, arg: Any, summary: str, state: RequestState, *, local: bool = False
    ) -> None:
        """Write transitions; while that fails, say so loudly and keep retrying.

        ``state`` is the one the transitions lead to: published once they are written.
        """
        failures = 0
        while True:
            try:
                run = workflow.execute_local_activity if local else workflow.execute_activity
                await run(
                    activity,
                    arg,
                    start_to_close_timeout=_ACTIVITY_TIMEOUT,
                    retry_policy=_RECORD_RETRY,
                    summary=summary,
                )
                break
            except (ActivityError, ApplicationError) as err:
                # (A local activity's failure may arrive as its bare ApplicationError.)
                failures += 1
                cause: BaseException = err
                while cause.__cause__ is not None:
                    cause = cause.__cause__
                attempts_each = _RECORD_RETRY.maximum_attempts or 1
                await self._feed(
                    write_failed(summary, str(cause), workflow.now(), failures, attempts_each)
                )
                await workflow.sleep(stuck_pause(failures), summary=f"stuck, retrying: {summary}")
        if failures:
            workflow.logger.info("request %s is no longer stuck: %s written", state.id, summary)
            await self._feed(WriteSucceeded())
            self.publish(state)

    # --------------------------------------------------------- publishing

    def _details(self, s: RequestState) -> str:
        return details(s, self._language, self._policy)

    def publish(self, s: RequestState) -> None:
        """Search attributes (only when they changed) and the UI's current details."""
        p = published(s)
        if p.changes != self._last_search_attributes:
            self._last_search_attributes = p.changes
            updates: list[SearchAttributeUpdate[Any]] = [
                sa.REQUEST_STATUS.value_set(p.status),
                sa.CURRENT_APPROVERS.value_set(list(p.approvers)),
                sa.OVERDUE.value_set(p.overdue),
                sa.REQUEST_TYPE.value_set(p.request_type),
                sa.REQUESTER.value_set(p.requester),
            ]
            if p.customer is not None:
                updates.append(sa.CUSTOMER_ID.value_set(p.customer))
            if p.amount is not None:
                updates.append(sa.AMOUNT.value_set(p.amount))
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details(s))


__all__ = ["LOCAL_WRITES", "ONE_WRITE", "Effects"]
