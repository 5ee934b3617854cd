"""The approval workflow's message surface: its query, updates and signals.

Every handler only queues an input for the loop in :mod:`workflows.approval` (an
update then waits until the loop has applied and written it) or answers from the
state; none changes state itself. One typed handler per message, with explicit
names (:mod:`domain.constants`), so a rename in Python never breaks a running
request; the validators refuse at once what the process would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.constants import Queries, Signals, Updates
    from domain.core import machine
    from domain.core.inputs import Handle, Input, Message, Unreadable
    from domain.core.projection import view_of
    from domain.core.queries import handled
    from domain.core.steps import Context
    from domain.errors import DomainError
    from domain.process import (
        AddApproversInput,
        CcInput,
        CommentInput,
        DecideInput,
        DirectoryChangedInput,
        MilestoneInput,
        ReassignInput,
        RequestState,
        RequestView,
        ResubmitInput,
        RevokeInput,
        SendBackInput,
        TransferInput,
        UrgeInput,
        WithdrawInput,
    )
    from workflows.messages import earlier_refusal, read_signal, refusal, update_id

RECORD_UNREADABLE = "record-unreadable-signals"
"""Patch: a signal whose payload cannot be read is recorded as ignored (an audit row
naming the signal and what was wrong), where runs before it dropped it unseen."""

_M = TypeVar("_M", bound=Message | DirectoryChangedInput)


@dataclass
class Action:
    """One queued input, processed by the main loop in arrival order."""

    input: Input
    done: bool = False
    error: ApplicationError | None = None


class ApprovalMessages:
    """The handlers of :class:`workflows.approval.ApprovalWorkflow` (a base it extends)."""

    _ctx: Context
    _state: RequestState
    _queue: list[Action]
    _ready: bool

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

    @workflow.update(name=Updates.SEND_BACK)
    async def send_back(self, inp: SendBackInput) -> RequestView:
        return await self._submit_action(inp)

    @send_back.validator
    def _validate_send_back(self, inp: SendBackInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.ADD_APPROVERS)
    async def add_approvers(self, inp: AddApproversInput) -> RequestView:
        return await self._submit_action(inp)

    @add_approvers.validator
    def _validate_add_approvers(self, inp: AddApproversInput) -> None:
        self._check(inp)

    @workflow.update(name=Updates.ADD_CC)
    async def add_cc(self, inp: CcInput) -> RequestView:
        return await self._submit_action(inp)

    @add_cc.validator
    def _validate_add_cc(self, inp: CcInput) -> None:
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

    @workflow.signal(name=Signals.SEND_BACK)
    def send_back_signal(self, raw: RawValue) -> None:
        self._signalled(raw, SendBackInput, Signals.SEND_BACK)

    @workflow.signal(name=Signals.ADD_APPROVERS)
    def add_approvers_signal(self, raw: RawValue) -> None:
        self._signalled(raw, AddApproversInput, Signals.ADD_APPROVERS)

    @workflow.signal(name=Signals.ADD_CC)
    def add_cc_signal(self, raw: RawValue) -> None:
        self._signalled(raw, CcInput, Signals.ADD_CC)

    @workflow.update(name=Updates.REVOKE)
    async def revoke(self, inp: RevokeInput) -> RequestView:
        return await self._submit_action(inp)

    @revoke.validator
    def _validate_revoke(self, inp: RevokeInput) -> None:
        self._check(inp)

    @workflow.signal(name=Signals.REVOKE)
    def revoke_signal(self, raw: RawValue) -> None:
        self._signalled(raw, RevokeInput, Signals.REVOKE)

    @workflow.update(name=Updates.URGE)
    async def urge(self, inp: UrgeInput) -> RequestView:
        return await self._submit_action(inp)

    @urge.validator
    def _validate_urge(self, inp: UrgeInput) -> None:
        self._check(inp)

    @workflow.signal(name=Signals.URGE)
    def urge_signal(self, raw: RawValue) -> None:
        self._signalled(raw, UrgeInput, Signals.URGE)

    @workflow.update(name=Updates.REASSIGN)
    async def reassign(self, inp: ReassignInput) -> RequestView:
        return await self._submit_action(inp)

    @reassign.validator
    def _validate_reassign(self, inp: ReassignInput) -> None:
        self._check(inp)

    @workflow.signal(name=Signals.REASSIGN)
    def reassign_signal(self, raw: RawValue) -> None:
        self._signalled(raw, ReassignInput, Signals.REASSIGN)

    @workflow.update(name=Updates.COMMENT)
    async def comment(self, inp: CommentInput) -> RequestView:
        return await self._submit_action(inp)

    @comment.validator
    def _validate_comment(self, inp: CommentInput) -> None:
        self._check(inp)

    @workflow.signal(name=Signals.COMMENT)
    def comment_signal(self, raw: RawValue) -> None:
        self._signalled(raw, CommentInput, Signals.COMMENT)

    def _signalled(self, raw: RawValue, kind: type[_M], signal: str) -> None:
        """Queue a signal's input; one that cannot be read is queued to be recorded."""
        inp = read_signal(raw, kind, signal)
        if isinstance(inp, Unreadable):
            workflow.logger.warning("unreadable %s signal: %s", signal, inp.problem)
            # Runs before the patch dropped it unseen, and it woke nothing: queueing it
            # would end their timers early, so they still drop it.
            if not workflow.patched(RECORD_UNREADABLE):
                return
        self._queue.append(Action(inp))

    async def _submit_action(self, message: Message) -> RequestView:
        uid = update_id()
        earlier = handled(self._state, uid) if uid is not None else None
        if earlier is not None:
            # The same update id again, in a later run than the one that handled it
            # (Temporal itself answers a repeat within one run): the same outcome.
            if earlier.code is not None:
                raise earlier_refusal(earlier)
            return view_of(self._state)
        action = Action(Handle(message, from_signal=False, update_id=uid))
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


__all__ = ["RECORD_UNREADABLE", "Action", "ApprovalMessages"]
