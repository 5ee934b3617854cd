"""ApprovalWorkflow: one durable process per request, for every request type.

The workflow is a shell around the pure process (:class:`domain.core.machine.Process`).
It queues what arrives (updates and signals never change state themselves),
feeds one input at a time to the process, and carries out the effects the
process yields: transitions written, directory look-ups, proofs checked, a
payout made (:mod:`workflows.effects`). Only when it is idle again does it mark
the input done, so an update answers with the settled state (the next stage
already assigned and written to the database), and two concurrent decisions
never interleave half-way.

Deadlines are not separate coroutines: in every state the process names the
earliest deadline that applies (:meth:`Process.next_deadline`), and the loop
waits for "an input arrived" with that timeout. Timers are therefore durable
Temporal timers, recomputed from state, never polled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.constants import WORKFLOW_NAME, Queries, Signals, Updates
    from domain.core.machine import Message, Process
    from domain.errors import DomainError, ErrorCode, unreadable_problems
    from domain.process import (
        ApprovalInput,
        DecideInput,
        DirectoryChangedInput,
        MilestoneInput,
        RequestView,
        ResubmitInput,
        TransferInput,
        WithdrawInput,
    )
    from workflows.effects import ONE_WRITE, Effects


RECORD_UNREADABLE = "record-unreadable-signals"
"""Patch: a signal whose payload cannot be read is recorded as ignored (an audit row
naming the signal and what was wrong), where runs before it dropped it unseen."""

_M = TypeVar("_M", bound=Message | DirectoryChangedInput)


@dataclass(frozen=True)
class _Unreadable:
    """A signal whose payload did not decode into its message type."""

    signal: str
    problem: str


def _read(raw: RawValue, kind: type[_M], signal: str) -> _M | _Unreadable:
    """The signal's message, or what was wrong with it (the SDK would drop it silently)."""
    try:
        return workflow.payload_converter().from_payload(raw.payload, kind)
    except Exception as exc:  # whatever the sender's bytes cause, it is the sender's
        return _Unreadable(signal, unreadable_problems(exc))


@dataclass
class _Action:
    """One queued input, processed by the main loop in arrival order."""

    message: Message | DirectoryChangedInput | _Unreadable
    from_signal: bool
    update_id: str | None = None
    done: bool = False
    error: ApplicationError | None = None


def _refusal(err: DomainError) -> ApplicationError:
    """A business refusal as Temporal carries it: the API maps its type to a status."""
    return ApplicationError(err.message, err.details or {}, type=err.code.value, non_retryable=True)


def _update_id() -> str | None:
    info = workflow.current_update_info()
    return info.id if info is not None else None


@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, inp: ApprovalInput) -> None:
        self._process = Process(inp, workflow.now)
        self._effects = Effects(self._process)
        self._queue: list[_Action] = []
        self._processed: list[_Action] = []
        self._ready = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ApprovalInput) -> RequestView:
        p = self._process
        self._effects.start(one_write=workflow.patched(ONE_WRITE))
        if not p.resumed:
            await self._effects.drive(p.submit())
        while not p.finished:
            if self._queue:
                await self._take(self._queue.pop(0))
                continue
            await self._effects.flush()
            self._settle()
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # An input that came meanwhile is handled first (patched: the old code
                # carried on without it, and its histories must replay as they were).
                if not (self._queue and self._effects.batched):
                    workflow.continue_as_new(p.carry())
                continue
            deadline = p.next_deadline()
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
            await self._effects.drive(p.on_deadline(deadline.kind))
        # Closed: refuse whatever arrived too late, then let handlers finish.
        while self._queue:
            action = self._queue.pop(0)
            if isinstance(action.message, DirectoryChangedInput | _Unreadable):
                action.error = _refusal(
                    DomainError(ErrorCode.INVALID_STATE, "the request is closed")
                )
            else:
                late = p.refuse_closed(action.message, action.from_signal)
                refused = await self._effects.drive(late)
                action.error = _refusal(refused)
                if action.update_id is not None:
                    p.remember(action.update_id, refused)
            self._processed.append(action)
        await self._effects.flush()
        self._settle()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return p.view.public()

    async def _take(self, action: _Action) -> None:
        msg = action.message
        if isinstance(msg, DirectoryChangedInput):
            await self._effects.drive(self._process.directory_changed(msg))
        elif isinstance(msg, _Unreadable):
            await self._effects.drive(self._process.ignore_unreadable(msg.signal, msg.problem))
        else:
            err = await self._effects.drive(self._process.handle(msg, action.from_signal))
            if err is not None:
                action.error = _refusal(err)
            if action.update_id is not None:
                self._process.remember(action.update_id, err)
        self._processed.append(action)

    def _settle(self) -> None:
        """The loop is idle: publish state and release the updates that waited for it."""
        for action in self._processed:
            action.done = True
        self._processed.clear()
        self._ready = True
        self._effects.publish()

    def _should_continue_as_new(self) -> bool:
        wanted = self._process.continue_requested or workflow.info().is_continue_as_new_suggested()
        return wanted and not self._queue

    # ----------------------------------------------------------- messages

    @workflow.query(name=Queries.STATE)
    def state(self) -> RequestView:
        return self._process.view.public()

    @workflow.update(name=Updates.READY)
    async def ready(self) -> RequestView:
        """Wait until the request is assigned and persisted, then answer its view."""
        await workflow.wait_condition(lambda: self._ready)
        return self._process.view.public()

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
        """Queue a signal's message; one that cannot be read is queued to be recorded."""
        message = _read(raw, kind, signal)
        if isinstance(message, _Unreadable):
            workflow.logger.warning("unreadable %s signal: %s", signal, message.problem)
            # Runs before the patch dropped it unseen, and it woke nothing: queueing it
            # would end their timers early, so they still drop it.
            if not workflow.patched(RECORD_UNREADABLE):
                return
        self._queue.append(_Action(message, from_signal=True))

    async def _submit_action(self, message: Message) -> RequestView:
        update_id = _update_id()
        earlier = self._process.handled(update_id) if update_id is not None else None
        if earlier is not None:
            # The same update id again, in a later run than the one that handled it
            # (Temporal itself answers a repeat within one run): the same outcome.
            if earlier.code is not None:
                raise ApplicationError(
                    earlier.message or "", {}, type=earlier.code, non_retryable=True
                )
            return self._process.view.public()
        action = _Action(message, from_signal=False, update_id=update_id)
        self._queue.append(action)
        await workflow.wait_condition(lambda: action.done)
        if action.error is not None:
            raise action.error
        return self._process.view.public()

    def _check(self, msg: Message) -> None:
        """Refuse a message that is not allowed now (validators and the loop alike).

        An update id handled before is let through: its handler answers as it did then.
        """
        update_id = _update_id()
        if update_id is not None and self._process.handled(update_id) is not None:
            return
        try:
            self._process.check(msg)
        except DomainError as err:
            raise _refusal(err) from None


__all__ = ["ApprovalWorkflow"]
