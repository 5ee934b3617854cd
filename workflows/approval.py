"""ApprovalWorkflow: one durable process per request, for every request type.

A shell around the pure process (:mod:`domain.core.machine`). It holds the one
state variable and only ever replaces it with what the process returns. Messages
are queued (handlers never change state) and fed to the process one at a time;
the effects it yields are carried out by :mod:`workflows.effects`. Only when the
loop is idle again is an input marked done, so an update answers with the settled
state, and two concurrent decisions never interleave half-way. In every state the
process names its earliest deadline, and the loop waits for an input with that
timeout: durable Temporal timers, recomputed from state, never polled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.constants import WORKFLOW_NAME, Queries, Signals, Updates
    from domain.core import machine
    from domain.core.inputs import DeadlineReached, Handle, Input, Message, Submit, Unreadable
    from domain.core.projection import view_of
    from domain.core.queries import handled
    from domain.core.steps import Context
    from domain.errors import DomainError
    from domain.process import (
        ApprovalInput,
        DecideInput,
        DirectoryChangedInput,
        MilestoneInput,
        RequestState,
        RequestView,
        ResubmitInput,
        TransferInput,
        WithdrawInput,
    )
    from workflows.effects import ONE_WRITE, Effects
    from workflows.messages import earlier_refusal, read_signal, refusal, update_id

RECORD_UNREADABLE = "record-unreadable-signals"
"""Patch: a signal whose payload cannot be read is recorded as ignored (an audit row
naming the signal and what was wrong), where runs before it dropped it unseen."""

_M = TypeVar("_M", bound=Message | DirectoryChangedInput)


@dataclass
class _Action:
    """One queued input, processed by the main loop in arrival order."""

    input: Input
    done: bool = False
    error: ApplicationError | None = None


@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, inp: ApprovalInput) -> None:
        self._ctx = Context(inp.policy, workflow.now)
        self._state: RequestState = machine.start(inp, workflow.now())
        self._effects = Effects(self._feed)
        self._queue: list[_Action] = []
        self._processed: list[_Action] = []
        self._ready = False

    @workflow.run
    async def run(self, inp: ApprovalInput) -> RequestView:
        self._effects.start(one_write=workflow.patched(ONE_WRITE))
        if inp.carried is None:
            await self._apply(Submit())
        while not self._state.finished:
            if self._queue:
                await self._take(self._queue.pop(0))
                continue
            await self._settle()
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # An input that came meanwhile is handled first (patched: the old code
                # carried on without it, and its histories must replay as they were).
                if not (self._queue and self._effects.batched):
                    workflow.continue_as_new(machine.carry(inp, self._state))
                continue
            deadline = machine.deadline(self._state, inp.policy)
            if deadline is None:  # nothing timed in this state: wait for an input
                await workflow.wait_condition(lambda: bool(self._queue))
                continue
            if deadline.at > workflow.now():
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._queue),
                        timeout=deadline.at - workflow.now(),
                        timeout_summary=deadline.summary,
                    )
                    continue
                except TimeoutError:
                    pass
            await self._apply(DeadlineReached(deadline.kind))
        while self._queue:  # closed: the process refuses whatever arrived too late
            await self._take(self._queue.pop(0))
        await self._settle()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return view_of(self._state)

    def _should_continue_as_new(self) -> bool:
        wanted = self._state.continue_requested or workflow.info().is_continue_as_new_suggested()
        return wanted and not self._queue

    async def _apply(self, inp: Input) -> DomainError | None:
        outcome = await self._effects.drive(machine.transition(self._ctx, self._state, inp))
        self._state = outcome.state
        return outcome.refusal

    async def _feed(self, inp: Input) -> RequestState:
        await self._apply(inp)
        return self._state

    async def _take(self, action: _Action) -> None:
        err = await self._apply(action.input)
        action.error = refusal(err) if err is not None else None
        self._processed.append(action)

    async def _settle(self) -> None:
        """The loop is idle: write, publish, and release the updates that waited for it."""
        await self._effects.flush(self._state)
        for action in self._processed:
            action.done = True
        self._processed.clear()
        self._ready = True
        self._effects.publish(self._state)

    @workflow.query(name=Queries.STATE)
    def state(self) -> RequestView:
        return view_of(self._state)

    @workflow.update(name=Updates.READY)
    async def ready(self) -> RequestView:
        """Wait until the request is assigned and persisted, then answer its view."""
        await workflow.wait_condition(lambda: self._ready)
        return view_of(self._state)

    @workflow.update(name=Updates.DECIDE)
    async def decide(self, inp: DecideInput) -> RequestView:
        return await self._submit_action(inp)

    @decide.validator
    def _validate_decide(self, inp: DecideInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.RESUBMIT)
    async def resubmit(self, inp: ResubmitInput) -> RequestView:
        return await self._submit_action(inp)

    @resubmit.validator
    def _validate_resubmit(self, inp: ResubmitInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.WITHDRAW)
    async def withdraw(self, inp: WithdrawInput) -> RequestView:
        return await self._submit_action(inp)

    @withdraw.validator
    def _validate_withdraw(self, inp: WithdrawInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.TRANSFER)
    async def transfer(self, inp: TransferInput) -> RequestView:
        return await self._submit_action(inp)

    @transfer.validator
    def _validate_transfer(self, inp: TransferInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.RECORD_MILESTONE)
    async def record_milestone(self, inp: MilestoneInput) -> RequestView:
        return await self._submit_action(inp)

    @record_milestone.validator
    def _validate_record_milestone(self, inp: MilestoneInput) -> None:
        self._check(inp)

    @workflow.signal(name=Signals.DECIDE)
    def decide_signal(self, raw: RawValue) -> None:
        self._signalled(raw, DecideInput, Signals.DECIDE)

    @workflow.signal(name=Signals.RESUBMIT)
    def resubmit_signal(self, raw: RawValue) -> None:
        self._signalled(raw, ResubmitInput, Signals.RESUBMIT)

    @workflow.signal(name=Signals.WITHDRAW)
    def withdraw_signal(self, raw: RawValue) -> None:
        self._signalled(raw, WithdrawInput, Signals.WITHDRAW)

    @workflow.signal(name=Signals.TRANSFER)
    def transfer_signal(self, raw: RawValue) -> None:
        self._signalled(raw, TransferInput, Signals.TRANSFER)

    @workflow.signal(name=Signals.RECORD_MILESTONE)
    def record_milestone_signal(self, raw: RawValue) -> None:
        self._signalled(raw, MilestoneInput, Signals.RECORD_MILESTONE)

    @workflow.signal(name=Signals.DIRECTORY_CHANGED)
    def directory_changed(self, raw: RawValue) -> None:
        """Someone may have left: check the current approvers against the directory."""
        self._signalled(raw, DirectoryChangedInput, Signals.DIRECTORY_CHANGED)

    def _signalled(self, raw: RawValue, kind: type[_M], signal: str) -> None:
        """Queue a signal's input; one that cannot be read is queued to be recorded."""
        inp = read_signal(raw, kind, signal)
        if isinstance(inp, Unreadable):
            workflow.logger.warning("unreadable %s signal: %s", signal, inp.problem)
            # Runs before the patch dropped it unseen, and it woke nothing: queueing it
            # would end their timers early, so they still drop it.
            if not workflow.patched(RECORD_UNREADABLE):
                return
        self._queue.append(_Action(inp))

    async def _submit_action(self, message: Message) -> RequestView:
        uid = update_id()
        earlier = handled(self._state, uid) if uid is not None else None
        if earlier is not None:
            # The same update id again, in a later run than the one that handled it
            # (Temporal itself answers a repeat within one run): the same outcome.
            if earlier.code is not None:
                raise earlier_refusal(earlier)
            return view_of(self._state)
        action = _Action(Handle(message, from_signal=False, update_id=uid))
        self._queue.append(action)
        await workflow.wait_condition(lambda: action.done)
        if action.error is not None:
            raise action.error
        return view_of(self._state)

    def _check(self, msg: Message) -> None:
        """Refuse a message that is not allowed now (validators and the loop alike)."""
        try:
            machine.check(self._state, self._ctx.policy, msg, update_id())
        except DomainError as err:
            raise refusal(err) from None


__all__ = ["ApprovalWorkflow"]
