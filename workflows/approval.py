"""ApprovalWorkflow: one durable process per request, for every request type.

The workflow is a single-driver state machine. Updates and signals never change
state themselves: they queue an action and (updates) wait for it. The main loop
takes one action at a time, checks it against the state it finds, applies it,
records the transition through one activity (read-model + audit + notices, in
order, idempotent on the sequence number), and only when it is idle again marks
the action done. So an update answers with the settled state (the next stage
already assigned and written to the database), and two concurrent decisions can
never interleave half-way.

Deadlines are not separate coroutines: in every state the loop computes the
earliest deadline that applies (reply, resolve, resubmit, milestone reminder,
milestone due) and waits for "an action arrived" with that timeout. Timers are
therefore durable Temporal timers, recomputed from state, never polled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain import signing
    from domain.calendar import next_payout_window
    from domain.conditions import evaluate
    from domain.constants import WORKFLOW_NAME, Activities, Queries, Signals, Updates
    from domain.core import admission, escalation
    from domain.core.deadlines import DeadlineKind, next_deadline
    from domain.core.details import details
    from domain.core.milestones import milestone_state
    from domain.core.queries import (
        active_stage,
        current_approvers,
        milestone_spec,
        money,
        open_milestone,
        outstanding,
        stage_complete,
    )
    from domain.errors import DomainError, ErrorCode
    from domain.policy import ApproverSpec, Policy, ResolveAction, StageMode
    from domain.process import (
        SYSTEM,
        Actor,
        ApprovalInput,
        Carried,
        DecideInput,
        DirectoryChangedInput,
        EscalationInput,
        EscalationOutput,
        EventKind,
        HistoryEvent,
        InactiveUsersInput,
        InactiveUsersOutput,
        MarkStuckInput,
        MilestoneInput,
        MilestoneState,
        Notice,
        Payment,
        PayoutInput,
        PayoutOutput,
        PayoutState,
        RequestView,
        ResolveAssigneesInput,
        ResolveAssigneesOutput,
        ResubmitInput,
        Slot,
        StageState,
        Status,
        StuckState,
        TransferInput,
        TransitionBatch,
        TransitionRecord,
        VerifyProofInput,
        VerifyProofOutput,
        WatchState,
        WithdrawInput,
        awaiting,
        stages_of,
    )
    from domain.requests import condition_values
    from domain.routing import Route, resolve_route

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
_KEEP_EVENTS_ON_CONTINUE = 50
# Writing a transition: a few quick attempts, then the request is flagged stuck
# (search attribute, read-model, ERROR log) and retried on a durable timer until
# the cause is fixed. It never gives up: a transition must not be lost.
_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3
)
_STUCK_RETRY_FIRST = timedelta(seconds=5)
_STUCK_RETRY_MAX = timedelta(minutes=5)
_FLAG_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
_VERIFY_TIMEOUT = timedelta(seconds=10)
_MAX_NONCES = 2000
_ONE_WRITE = "one-write-per-transition"
"""Patch: a message's transitions are written by one activity, look-ups run locally.

Requests started before it replay the old way (one activity per event, remote
look-ups); see README "Changing workflow code"."""
_MAX_BATCH = 50
_LOCAL_TIMEOUT = timedelta(seconds=10)
_LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)

_OUTCOMES = frozenset(
    {
        EventKind.REQUEST_APPROVED,
        EventKind.REJECTED,
        EventKind.WITHDRAWN,
        EventKind.LAPSED,
        EventKind.EXPIRED,
        EventKind.COMPLETED,
        EventKind.SETTLED,
    }
)
"""Transitions the people copied (CC) are told of."""

Message = DecideInput | ResubmitInput | WithdrawInput | TransferInput | MilestoneInput

_MESSAGE_NAMES: dict[type, str] = {
    DecideInput: Updates.DECIDE,
    ResubmitInput: Updates.RESUBMIT,
    WithdrawInput: Updates.WITHDRAW,
    TransferInput: Updates.TRANSFER,
    MilestoneInput: Updates.RECORD_MILESTONE,
}
"""The name a message's proof is signed for: the update's, for its signal too."""


@dataclass
class _Action:
    """One queued message, processed by the main loop in arrival order."""

    message: Message | DirectoryChangedInput
    from_signal: bool
    done: bool = False
    error: ApplicationError | None = None


def _refuse(code: ErrorCode, message: str, **details: Any) -> ApplicationError:
    return ApplicationError(message, details or {}, type=code.value, non_retryable=True)


_R = TypeVar("_R")


@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow:
    @workflow.init
    def __init__(self, inp: ApprovalInput) -> None:
        self._policy: Policy = inp.policy
        self._queue: list[_Action] = []
        self._processed: list[_Action] = []
        self._ready = False
        self._finished = False
        self._last_search_attributes: tuple[Any, ...] | None = None
        self._continue_requested = False
        self._operator: str | None = None  # the operator vouching for the message in hand
        self._batched = False  # set at the start of run(): see _ONE_WRITE
        self._pending: list[TransitionRecord] = []
        self._nonces: dict[str, datetime] = {}
        if inp.carried is not None:
            self._view = inp.carried.view
            self._seq = inp.carried.seq
            self._resolve_fired = inp.carried.resolve_fired
            self._nonces = dict(inp.carried.nonces)
            self._resumed = True
        else:
            self._view = RequestView(
                id=inp.request_id,
                type=inp.policy.type,
                title=inp.title,
                requester=inp.requester,
                customer=inp.customer,
                amount=inp.amount,
                fields=inp.fields,
                comment=inp.comment,
                policy_type=inp.policy.type,
                policy_version=inp.policy.version,
                status=Status.IN_REVIEW,
                stages=stages_of(inp.route),
                milestones=[],
                submitted_at=workflow.now(),
            )
            self._seq = 0
            self._resolve_fired = False
            self._resumed = False
        self._input = inp

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: ApprovalInput) -> RequestView:
        self._batched = workflow.patched(_ONE_WRITE)
        if not self._resumed:
            await self._submit()
        while not self._finished:
            if self._queue:
                await self._process(self._queue.pop(0))
                continue
            await self._flush()
            self._settle()
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # A message that came meanwhile is handled first (patched: the old code
                # carried on without it, and its histories must replay as they were).
                if not (self._queue and self._batched):
                    workflow.continue_as_new(self._carry())
                continue
            deadline = self._next_deadline()
            if deadline is None:  # nothing timed in this state: wait for a message
                await workflow.wait_condition(lambda: bool(self._queue))
                continue
            due, summary, fire = deadline
            if due <= workflow.now():
                await fire()
                continue
            try:
                await workflow.wait_condition(
                    lambda: bool(self._queue), timeout=due - workflow.now(), timeout_summary=summary
                )
            except TimeoutError:
                await fire()
        # Closed: refuse whatever arrived too late, then let handlers finish.
        while self._queue:
            action = self._queue.pop(0)
            action.error = _refuse(ErrorCode.INVALID_STATE, "the request is closed")
            if action.from_signal:
                await self._ignore(action)
            self._processed.append(action)
        await self._flush()
        self._settle()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    # ----------------------------------------------------------- messages

    @workflow.query(name=Queries.STATE)
    def state(self) -> RequestView:
        return self._view

    @workflow.update(name=Updates.READY)
    async def ready(self) -> RequestView:
        """Wait until the request is assigned and persisted, then answer its view."""
        await workflow.wait_condition(lambda: self._ready)
        return self._view

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
    def decide_signal(self, inp: DecideInput) -> None:
        self._queue.append(_Action(inp, from_signal=True))

    @workflow.signal(name=Signals.RESUBMIT)
    def resubmit_signal(self, inp: ResubmitInput) -> None:
        self._queue.append(_Action(inp, from_signal=True))

    @workflow.signal(name=Signals.WITHDRAW)
    def withdraw_signal(self, inp: WithdrawInput) -> None:
        self._queue.append(_Action(inp, from_signal=True))

    @workflow.signal(name=Signals.TRANSFER)
    def transfer_signal(self, inp: TransferInput) -> None:
        self._queue.append(_Action(inp, from_signal=True))

    @workflow.signal(name=Signals.RECORD_MILESTONE)
    def record_milestone_signal(self, inp: MilestoneInput) -> None:
        self._queue.append(_Action(inp, from_signal=True))

    @workflow.signal(name=Signals.DIRECTORY_CHANGED)
    def directory_changed(self, inp: DirectoryChangedInput) -> None:
        """Someone may have left: check the current approvers against the directory."""
        self._queue.append(_Action(inp, from_signal=True))

    async def _submit_action(self, message: Message) -> RequestView:
        action = _Action(message, from_signal=False)
        self._queue.append(action)
        await workflow.wait_condition(lambda: action.done)
        if action.error is not None:
            raise action.error
        return self._view

    # ------------------------------------------------------------- checks

    def _check(self, msg: Message) -> None:
        """Refuse a message that is not allowed now (validators and the loop alike)."""
        try:
            admission.check(self._view, self._policy, self._finished, msg)
        except DomainError as err:
            raise _refuse(err.code, err.message, **err.details) from None

    # --------------------------------------------------------- processing

    async def _process(self, action: _Action) -> None:
        msg = action.message
        if isinstance(msg, DirectoryChangedInput):
            if not self._finished:
                await self._reassign_departed()
            self._processed.append(action)
            return
        try:
            self._check(msg)
        except ApplicationError as err:
            action.error = err
            if action.from_signal:
                await self._ignore(action)
            self._processed.append(action)
            return
        unproven = await self._unproven(msg)
        if unproven is not None:
            # Nobody vouches for the actor: record the attempt, change nothing.
            action.error = _refuse(ErrorCode.UNAUTHENTICATED, unproven)
            await self._ignore(action)
            self._processed.append(action)
            return
        self._operator = msg.proof.operator if msg.proof and msg.proof.by == "operator" else None
        try:
            await self._apply(msg)
        finally:
            self._operator = None
        self._processed.append(action)

    async def _apply(self, msg: Message) -> None:
        if isinstance(msg, DecideInput):
            await self._apply_decision(msg)
        elif isinstance(msg, TransferInput):
            await self._apply_transfer(msg)
        elif isinstance(msg, ResubmitInput):
            await self._apply_resubmit(msg)
        elif isinstance(msg, WithdrawInput):
            await self._apply_withdraw(msg)
        elif isinstance(msg, MilestoneInput):
            await self._apply_milestone(msg)

    async def _unproven(self, msg: Message) -> str | None:
        """Why nobody vouches for ``msg.actor``, or None when a valid, fresh proof does."""
        proof = msg.proof
        if proof is not None and proof.nonce in self._nonces:
            return "the message's proof was already used"
        out = await workflow.execute_local_activity(
            Activities.VERIFY_PROOF,
            VerifyProofInput(
                request_id=self._view.id,
                message=_MESSAGE_NAMES[type(msg)],
                payload=signing.payload_of(msg),
                proof=proof,
            ),
            result_type=VerifyProofOutput,
            start_to_close_timeout=_VERIFY_TIMEOUT,
            retry_policy=_RETRY,
            summary="who sent this?",
        )
        if out.reason is None and proof is not None:
            self._remember_nonce(proof.nonce, proof.issued_at)
        return out.reason

    def _remember_nonce(self, nonce: str, issued_at: datetime) -> None:
        horizon = workflow.now() - signing.MAX_AGE - signing.CLOCK_SKEW
        kept = {n: at for n, at in self._nonces.items() if at >= horizon}
        kept[nonce] = issued_at
        # Bounded: the oldest go first (their proofs expire first anyway).
        newest = sorted(kept.items(), key=lambda item: item[1])[-_MAX_NONCES:]
        self._nonces = dict(newest)

    async def _ignore(self, action: _Action) -> None:
        err = action.error
        msg = action.message
        if isinstance(msg, DirectoryChangedInput):
            return  # a hint, not an action of anyone's: nothing to record
        await self._record(
            EventKind.IGNORED,
            actor=msg.actor,
            comment=msg.comment,
            data={
                "signal" if action.from_signal else "update": type(msg).__name__,
                "reason": err.message if err else "",
                "code": err.type if err else None,
            },
        )

    async def _reassign_departed(self) -> None:
        """Take people who left the directory off the active step; their managers step in."""
        v = self._view
        stage = active_stage(self._view)
        if stage is None or v.status != Status.IN_REVIEW:
            return
        waiting = [s for s in stage.slots if s.decision is None]
        holders = sorted({a.user for s in waiting for a in s.actors})
        if not holders:
            return
        found = await self._look_up(
            Activities.INACTIVE_USERS,
            InactiveUsersInput(users=holders),
            InactiveUsersOutput,
            f"who has left: {stage.name}",
        )
        gone = set(found.inactive)
        if not gone:
            return
        up = await self._look_up(
            Activities.RESOLVE_ESCALATION,
            EscalationInput(
                request_id=v.id,
                requester=v.requester,
                users=sorted(gone),
                escalation_role=self._policy.timers.escalation_role,
                at=workflow.now(),
            ),
            EscalationOutput,
            f"who steps in: {stage.name}",
        )
        added = escalation.hand_over(waiting, gone, up.next_up, v.requester, workflow.now())
        await self._record(
            EventKind.REASSIGNED,
            SYSTEM,
            None,
            {
                "stage": stage.key,
                "removed": sorted(gone & set(holders)),
                "added": sorted(added),
                "unassigned": [s.label for s in waiting if not s.actors],
                "reason": "left the directory",
            },
            notices=[self._notice(u, "assigned", stage=stage.name) for u in sorted(added)],
        )

    async def _apply_decision(self, msg: DecideInput) -> None:
        stage = active_stage(self._view)
        assert stage is not None  # checked
        now = workflow.now()
        mine = [s for s in stage.slots if s.decision is None and s.may_act(msg.actor)]
        on_behalf = next(
            (a.on_behalf_of for s in mine for a in s.actors if a.user == msg.actor), None
        )
        data: dict[str, Any] = {"stage": stage.key, "stage_name": stage.name}
        if msg.action == "approve":
            for slot in mine:
                slot.decision = "approve"
                slot.decided_by = msg.actor
                slot.decided_at = now
            await self._record(
                EventKind.APPROVED, msg.actor, msg.comment, data, on_behalf_of=on_behalf
            )
            if stage_complete(stage):
                stage.status = "approved"
                await self._record(EventKind.STAGE_COMPLETED, SYSTEM, None, data)
                await self._advance(stage.index + 1)
            return
        requester_notice = [self._notice(self._view.requester, msg.action)]
        if msg.action == "reject":
            stage.status = "rejected"
            self._close(Status.REJECTED)
            await self._record(
                EventKind.REJECTED,
                msg.actor,
                msg.comment,
                data,
                notices=requester_notice,
                on_behalf_of=on_behalf,
            )
        else:
            stage.status = "returned"
            self._view.status = Status.RETURNED
            self._view.resubmit_due = now + self._policy.timers.resubmit
            await self._record(
                EventKind.RETURNED,
                msg.actor,
                msg.comment,
                {**data, "resubmit_due": self._view.resubmit_due.isoformat()},
                notices=requester_notice,
                on_behalf_of=on_behalf,
            )

    async def _apply_transfer(self, msg: TransferInput) -> None:
        stage = active_stage(self._view)
        assert stage is not None
        now = workflow.now()
        for slot in stage.slots:
            if slot.decision is not None or not slot.may_act(msg.actor):
                continue
            kept = [a for a in slot.actors if a.user != msg.actor]
            giver = next(a for a in slot.actors if a.user == msg.actor)
            if not any(a.user == msg.to_user for a in kept):
                kept.append(
                    Actor(
                        user=msg.to_user,
                        via="transfer",
                        on_behalf_of=giver.on_behalf_of or msg.actor,
                        since=now,
                    )
                )
            slot.actors = kept
            slot.escalation_frontier = [msg.to_user]
        await self._record(
            EventKind.TRANSFERRED,
            msg.actor,
            msg.comment,
            {"stage": stage.key, "to_user": msg.to_user},
            notices=[self._notice(msg.to_user, "transferred", stage=stage.name)],
        )

    async def _apply_withdraw(self, msg: WithdrawInput) -> None:
        stage = active_stage(self._view)
        notices = [self._notice(u, "withdrawn") for u in current_approvers(self._view)]
        if stage is not None:
            stage.status = "closed"
        self._close(Status.WITHDRAWN)
        await self._record(EventKind.WITHDRAWN, msg.actor, msg.comment, notices=notices)

    def _resubmitted_route(
        self, msg: ResubmitInput
    ) -> tuple[Decimal | None, dict[str, Any], Route]:
        try:
            return admission.resubmitted(self._view, self._policy, msg)
        except DomainError as err:
            raise _refuse(err.code, err.message, **err.details) from None

    async def _apply_resubmit(self, msg: ResubmitInput) -> None:
        amount, fields, route = self._resubmitted_route(msg)
        v = self._view
        changed = {
            k: True
            for k, old, new in (("amount", v.amount, amount), ("fields", v.fields, fields))
            if old != new
        }
        v.amount, v.fields = amount, fields
        v.stages = stages_of(route)
        v.status = Status.IN_REVIEW
        v.resubmit_due = None
        v.overdue = False
        v.stage_index = None
        v.resolve_due = workflow.now() + self._policy.timers.resolve
        self._resolve_fired = False
        await self._record(
            EventKind.RESUBMITTED,
            msg.actor,
            msg.comment,
            {"changed": sorted(changed), "stages": [s.key for s in route.stages]},
        )
        await self._advance(0)

    async def _apply_milestone(self, msg: MilestoneInput) -> None:
        m = open_milestone(self._view)
        assert m is not None
        m.payments.append(
            Payment(amount=msg.amount, reference=msg.reference, by=msg.actor, at=workflow.now())
        )
        if msg.amount is not None:
            m.paid = money(m.paid + msg.amount)
        data = {
            "milestone": m.name,
            "amount": str(msg.amount) if msg.amount is not None else None,
            "paid": str(m.paid),
            "required": str(m.required) if m.required is not None else None,
            "reference": msg.reference,
        }
        await self._record(EventKind.MILESTONE, msg.actor, msg.comment, data)
        if m.required is None or m.paid >= m.required:
            m.status = "met"
            await self._record(
                EventKind.MILESTONE_MET,
                SYSTEM,
                None,
                data,
                notices=[self._notice(self._view.requester, "milestone_met", milestone=m.title)],
            )
            if self._policy.watch is not None and m.name == self._policy.watch.settles_with:
                await self._settle_receivable()
            else:
                await self._open_next_milestone()

    # ------------------------------------------------------------ process

    async def _submit(self) -> None:
        v = self._view
        if self._policy.watch is None:
            v.resolve_due = workflow.now() + self._policy.timers.resolve
        await self._record(
            EventKind.SUBMITTED,
            v.requester,
            v.comment,
            {
                "policy": f"{v.policy_type} v{v.policy_version}",
                "route": [{"stage": s.key, "reason": s.reason} for s in v.stages],
            },
        )
        await self._copy_in()
        if self._policy.watch is not None:
            await self._start_watch()
            return
        await self._advance(0)

    async def _resolve_slots(
        self, key: str, mode: StageMode, approvers: tuple[ApproverSpec, ...], summary: str
    ) -> list[Slot]:
        """Who the directory names for ``approvers`` now (the requester never among them)."""
        v = self._view
        out = await self._look_up(
            Activities.RESOLVE_ASSIGNEES,
            ResolveAssigneesInput(
                request_id=v.id,
                requester=v.requester,
                stage_key=key,
                mode=mode,
                approvers=approvers,
                at=workflow.now(),
            ),
            ResolveAssigneesOutput,
            summary,
        )
        return out.slots

    async def _look_up(self, name: str, arg: Any, result_type: type[_R], summary: str) -> _R:
        """A read-only directory look-up: local (no server round trip) once patched."""
        if self._batched:
            try:
                return await workflow.execute_local_activity(
                    name,
                    arg,
                    result_type=result_type,
                    start_to_close_timeout=_LOCAL_TIMEOUT,
                    retry_policy=_LOCAL_RETRY,
                    summary=summary,
                )
            except (ActivityError, ApplicationError):
                # (A local activity's failure may arrive as its bare ApplicationError.)
                # The directory did not answer here: ask again as a regular activity,
                # which the server retries for as long as it takes, on any worker.
                pass
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_RETRY,
            summary=summary,
        )

    async def _people(self, key: str, approvers: tuple[ApproverSpec, ...]) -> list[str]:
        """Everyone ``approvers`` names today; the requester only where named as such."""
        v = self._view
        named = {v.requester} if any(a.requester for a in approvers) else set()
        others = tuple(a for a in approvers if not a.requester)
        if not others:
            return sorted(named)
        slots = await self._resolve_slots(key, StageMode.ANY, others, f"who is {key}")
        return sorted(named | {a.user for s in slots for a in s.actors})

    async def _copy_in(self) -> None:
        """CC (抄送): people told at submission and of the outcome, deciding nothing."""
        values = condition_values(self._view.amount, self._view.fields)
        specs = tuple(c.who for c in self._policy.cc if c.when is None or evaluate(c.when, values))
        if not specs:
            return
        self._view.cc = await self._people("copied", specs)
        await self._record(
            EventKind.CC,
            SYSTEM,
            None,
            {"people": self._view.cc},
            notices=[self._notice(u, "cc_submitted") for u in self._view.cc],
        )

    async def _advance(self, index: int) -> None:
        """Activate stage ``index``, or approve when the route is done."""
        v = self._view
        if index >= len(v.stages):
            await self._approve()
            return
        stage = v.stages[index]
        now = workflow.now()
        stage.slots = await self._resolve_slots(
            stage.key, stage.mode, stage.approvers, f"who decides: {stage.name}"
        )
        for slot in stage.slots:
            slot.escalation_frontier = [a.user for a in slot.actors]
        stage.status = "active"
        stage.started_at = now
        stage.reply_due = now + self._policy.timers.reply
        v.stage_index = index
        v.status = Status.IN_REVIEW
        people = sorted({a.user for s in stage.slots for a in s.actors})
        await self._record(
            EventKind.ASSIGNED,
            SYSTEM,
            None,
            {
                "stage": stage.key,
                "stage_name": stage.name,
                "reason": stage.reason,
                "people": people,
                "unassigned": [s.label for s in stage.slots if not s.actors],
            },
            notices=[self._notice(u, "assigned", stage=stage.name) for u in people],
        )

    async def _approve(self) -> None:
        v = self._view
        v.status = Status.APPROVED
        v.stage_index = None
        data: dict[str, Any] = {}
        if not v.stages:
            data["within_authority"] = True
        if v.review_cycle:
            data["review_cycle"] = v.review_cycle
        # Decide what follows before recording, so that an approval that ends the
        # request is recorded as closed (closed_at in the read-model).
        if self._policy.watch is not None:
            # The write-off is approved: stop waiting for the money.
            for m in v.milestones:
                if m.status == "open":
                    m.status = "closed"
            self._close(Status.APPROVED)
        elif not v.review_cycle:  # a re-evaluation keeps the milestones met the first time
            values = condition_values(v.amount, v.fields)
            v.milestones = [
                milestone_state(spec, v)
                for spec in self._policy.milestones
                if spec.when is None or evaluate(spec.when, values)
            ]
            if not v.milestones and not self._policy.payout and not self._policy.review_cycle:
                self._close(Status.APPROVED)  # nothing follows: the approval is final
        await self._record(
            EventKind.REQUEST_APPROVED,
            SYSTEM,
            None,
            data,
            notices=[self._notice(v.requester, "approved")],
        )
        if self._finished:
            return
        if v.review_cycle:
            await self._enter_force()
            return
        await self._open_next_milestone()

    async def _open_next_milestone(self) -> None:
        v = self._view
        nxt = next((m for m in v.milestones if m.status == "pending"), None)
        if nxt is None:
            await self._after_milestones()
            return
        spec = milestone_spec(self._policy, nxt)
        now = workflow.now()
        nxt.status = "open"
        nxt.opened_at = now
        nxt.due = now + spec.due
        v.status = awaiting(nxt.name)
        await self._record(
            EventKind.MILESTONE_OPENED,
            SYSTEM,
            None,
            {
                "milestone": nxt.name,
                "due": nxt.due.isoformat(),
                "required": str(nxt.required) if nxt.required is not None else None,
            },
            notices=[
                self._notice(
                    v.requester, "milestone_opened", milestone=nxt.title, due=nxt.due.isoformat()
                )
            ],
        )

    def _close(self, status: Status) -> None:
        self._view.status = status
        self._view.closed_at = workflow.now()
        self._finished = True

    async def _after_milestones(self) -> None:
        """Everything the customer owed is done: pay out, stay in force, or finish."""
        v = self._view
        if self._policy.payout is not None and v.payout is None:
            await self._schedule_payout()
        elif self._policy.review_cycle is not None:
            await self._enter_force()
        else:
            self._close(Status.COMPLETED)
            await self._record(EventKind.COMPLETED, SYSTEM, None)

    async def _schedule_payout(self) -> None:
        spec = self._policy.payout
        assert spec is not None
        v = self._view
        opens = next_payout_window(
            workflow.now(), spec.windows, timedelta(hours=spec.utc_offset_hours)
        )
        v.payout = PayoutState(title=spec.title, amount=v.amount, window_opens=opens)
        v.status = Status.AWAITING_PAYOUT
        await self._record(
            EventKind.PAYOUT_SCHEDULED,
            SYSTEM,
            None,
            {"window_opens": opens.isoformat(), "amount": str(v.amount), "method": spec.method},
        )

    async def _on_payout_window(self) -> None:
        spec = self._policy.payout
        v = self._view
        assert spec is not None and v.payout is not None
        out = await workflow.execute_activity(
            Activities.EXECUTE_PAYOUT,
            PayoutInput(
                request_id=v.id,
                idempotency_key=f"{v.id}:payout:{v.review_cycle}",
                amount=v.payout.amount,
                beneficiary=v.customer,
                method=spec.method,
            ),
            result_type=PayoutOutput,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_RETRY,
            summary=f"{spec.title}: {v.payout.amount} CNY",
        )
        v.payout.paid_at = workflow.now()
        v.payout.reference = out.reference
        await self._record(
            EventKind.PAID_OUT,
            SYSTEM,
            None,
            {"reference": out.reference, "amount": str(v.payout.amount)},
            notices=[self._notice(v.requester, "paid_out", reference=out.reference)],
        )
        self._close(Status.COMPLETED)
        await self._record(EventKind.COMPLETED, SYSTEM, None)

    async def _enter_force(self) -> None:
        """Approved and in force until the next periodic re-evaluation (credit lines)."""
        cycle = self._policy.review_cycle
        assert cycle is not None
        v = self._view
        v.status = Status.ACTIVE
        v.stage_index = None
        v.next_review = workflow.now() + cycle.every
        await self._record(
            EventKind.IN_FORCE,
            SYSTEM,
            None,
            {"next_review": v.next_review.isoformat(), "cycle": v.review_cycle},
            notices=[self._notice(v.requester, "in_force", next_review=v.next_review.isoformat())],
        )
        # Each cycle starts a fresh run: the history of a years-long process stays small.
        self._continue_requested = True

    async def _on_review_due(self) -> None:
        cycle = self._policy.review_cycle
        assert cycle is not None
        v = self._view
        v.review_cycle += 1
        v.next_review = None
        route = resolve_route(self._policy, v.amount, v.fields)
        v.stages = stages_of(route)
        v.overdue = False
        v.resolve_due = workflow.now() + self._policy.timers.resolve
        self._resolve_fired = False
        await self._record(
            EventKind.REVIEW_STARTED,
            SYSTEM,
            cycle.title,
            {"cycle": v.review_cycle, "stages": [s.key for s in route.stages]},
            notices=[self._notice(v.requester, "review_started")],
        )
        await self._advance(0)

    async def _start_watch(self) -> None:
        """Receivables: a ladder of notices while the money may still arrive."""
        w = self._policy.watch
        assert w is not None
        v = self._view
        now = workflow.now()
        anchor = now
        raw = v.fields.get(w.anchor_field) if w.anchor_field else None
        if isinstance(raw, str):
            anchor = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        v.watch = WatchState(
            anchor=anchor,
            next_step=0,
            next_at=anchor + w.steps[0].after if w.steps else None,
            review_at=anchor + w.review_after,
        )
        v.milestones = [
            MilestoneState(
                name=w.settles_with,
                title=w.settles_title,
                required=v.amount,
                status="open",
                opened_at=now,
            )
        ]
        v.status = Status.WATCHING
        await self._record(
            EventKind.MILESTONE_OPENED,
            SYSTEM,
            None,
            {
                "milestone": w.settles_with,
                "required": str(v.amount),
                "ladder": [{"after": str(st.after), "title": st.title} for st in w.steps],
                "review_at": v.watch.review_at.isoformat(),
            },
        )

    async def _on_watch_step(self) -> None:
        w = self._policy.watch
        v = self._view
        assert w is not None and v.watch is not None and v.watch.next_at is not None
        i = v.watch.next_step
        step = w.steps[i]
        people = await self._people(f"told: {step.title}", step.notify)
        await self._record(
            EventKind.WATCH_NOTICE,
            SYSTEM,
            step.title,
            {"step": i, "people": people, "outstanding": str(outstanding(self._view))},
            notices=[self._notice(u, "watch_notice", step=step.title) for u in people],
        )
        now = workflow.now()
        following = (
            v.watch.anchor + w.steps[i + 1].after if i + 1 < len(w.steps) else v.watch.review_at
        )
        if step.repeat_every is not None:
            nxt = v.watch.next_at + step.repeat_every
            while nxt <= now:  # submitted late: no burst of past reminders
                nxt += step.repeat_every
            if nxt < following:
                v.watch.next_at = nxt
                return
        v.watch.next_step = i + 1
        v.watch.next_at = following if i + 1 < len(w.steps) else None

    async def _on_watch_review(self) -> None:
        v = self._view
        assert v.watch is not None
        v.watch.next_at = None
        v.resolve_due = workflow.now() + self._policy.timers.resolve
        await self._record(
            EventKind.REVIEW_STARTED,
            SYSTEM,
            "still unpaid: the decision goes to the route's approvers",
            {"outstanding": str(outstanding(self._view))},
        )
        await self._advance(0)

    async def _settle_receivable(self) -> None:
        """The money arrived in full: the receivable process ends, whatever its stage."""
        told = current_approvers(self._view)
        stage = active_stage(self._view)
        if stage is not None:
            stage.status = "closed"
        self._close(Status.COMPLETED)
        await self._record(
            EventKind.SETTLED,
            SYSTEM,
            None,
            notices=[self._notice(u, "settled") for u in told],
        )

    # ------------------------------------------------------------- timers

    def _next_deadline(self) -> tuple[datetime, str, Callable[[], Awaitable[None]]] | None:
        """The earliest deadline of the current state, its timer summary and its handler."""
        due = next_deadline(self._view, self._policy, self._resolve_fired)
        if due is None:
            return None
        handlers: dict[DeadlineKind, Callable[[], Awaitable[None]]] = {
            DeadlineKind.REPLY: self._on_reply_due,
            DeadlineKind.RESOLVE: self._on_resolve_due,
            DeadlineKind.RESUBMIT: self._on_resubmit_due,
            DeadlineKind.PAYOUT_WINDOW: self._on_payout_window,
            DeadlineKind.REVIEW: self._on_review_due,
            DeadlineKind.WATCH_STEP: self._on_watch_step,
            DeadlineKind.WATCH_REVIEW: self._on_watch_review,
            DeadlineKind.MILESTONE_REMINDER: self._on_milestone_reminder,
            DeadlineKind.MILESTONE_DUE: self._on_milestone_due,
        }
        return due.at, due.summary, handlers[due.kind]

    async def _on_reply_due(self) -> None:
        """Nobody acted in time: remind the assignees, then escalate one level up."""
        stage = active_stage(self._view)
        assert stage is not None
        now = workflow.now()
        waiting = [s for s in stage.slots if s.decision is None]
        reminded = sorted({a.user for s in waiting for a in s.actors})
        await self._record(
            EventKind.REMINDED,
            SYSTEM,
            None,
            {"stage": stage.key, "people": reminded},
            notices=[self._notice(u, "reminder", stage=stage.name) for u in reminded],
        )
        frontier = sorted({u for s in waiting for u in s.escalation_frontier})
        added = await self._escalate(stage, waiting, frontier, reason="reply timeout")
        stage.escalations += 1
        if not added or stage.escalations >= self._policy.timers.max_escalations:
            stage.reply_due = None  # the top of the chain: nobody further to escalate to
        else:
            stage.reply_due = now + self._policy.timers.reply

    async def _escalate(
        self, stage: StageState, waiting: list[Slot], frontier: list[str], reason: str
    ) -> list[str]:
        """Make the next person up from ``frontier`` eligible on ``waiting`` slots."""
        if not frontier:
            return []
        out = await self._look_up(
            Activities.RESOLVE_ESCALATION,
            EscalationInput(
                request_id=self._view.id,
                requester=self._view.requester,
                users=frontier,
                escalation_role=self._policy.timers.escalation_role,
                at=workflow.now(),
            ),
            EscalationOutput,
            f"who is next up: {stage.name}",
        )
        return await self._add_escalated(
            stage, waiting, {u: out.next_up.get(u, []) for u in frontier}, reason
        )

    async def _add_escalated(
        self, stage: StageState, waiting: list[Slot], next_up: dict[str, list[str]], reason: str
    ) -> list[str]:
        people = escalation.escalate(waiting, next_up, self._view.requester, workflow.now())
        if people:
            await self._record(
                EventKind.ESCALATED,
                SYSTEM,
                None,
                {"stage": stage.key, "to": people, "reason": reason},
                notices=[self._notice(u, "escalated", stage=stage.name) for u in people],
            )
        return people

    async def _on_resolve_due(self) -> None:
        """No final decision in time: mark overdue, tell the top, apply the policy's action."""
        self._resolve_fired = True
        v = self._view
        v.overdue = True
        top = await self._top_authority()
        await self._record(
            EventKind.OVERDUE,
            SYSTEM,
            None,
            {"action": self._policy.timers.resolve_action.value, "top_authority": top},
            notices=[self._notice(u, "overdue") for u in sorted({v.requester, *top})],
        )
        stage = active_stage(self._view)
        if stage is None:
            return
        if self._policy.timers.resolve_action is ResolveAction.AUTO_REJECT:
            stage.status = "rejected"
            self._close(Status.REJECTED)
            await self._record(
                EventKind.REJECTED,
                SYSTEM,
                "rejected automatically: no decision in time",
                {"stage": stage.key, "automatic": True},
                notices=[self._notice(v.requester, "reject")],
            )
            return
        waiting = [s for s in stage.slots if s.decision is None]
        fresh = [u for u in top if not any(s.may_act(u) for s in waiting)]
        if fresh:
            await self._add_escalated(
                stage,
                waiting,
                {u: fresh for s in waiting for u in s.escalation_frontier},
                reason="resolve timeout",
            )
        else:
            frontier = sorted({u for s in waiting for u in s.escalation_frontier})
            await self._escalate(stage, waiting, frontier, reason="resolve timeout")

    async def _top_authority(self) -> list[str]:
        """The people of the route's last stage, as the directory has them today."""
        v = self._view
        if not v.stages:
            return []
        last = v.stages[-1]
        if last.slots:
            return sorted({a.user for s in last.slots for a in s.actors})
        slots = await self._resolve_slots(
            last.key, last.mode, last.approvers, "who is the top authority"
        )
        return sorted({a.user for s in slots for a in s.actors})

    async def _on_resubmit_due(self) -> None:
        self._close(Status.EXPIRED)
        await self._record(
            EventKind.EXPIRED,
            SYSTEM,
            "not resubmitted in time",
            notices=[self._notice(self._view.requester, "expired")],
        )

    async def _on_milestone_reminder(self) -> None:
        m = open_milestone(self._view)
        assert m is not None
        m.reminded = True
        await self._record(
            EventKind.MILESTONE_REMINDED,
            SYSTEM,
            None,
            {"milestone": m.name, "due": m.due.isoformat() if m.due else None, "paid": str(m.paid)},
            notices=[self._notice(self._view.requester, "milestone_reminder", milestone=m.title)],
        )

    async def _on_milestone_due(self) -> None:
        m = open_milestone(self._view)
        assert m is not None
        m.status = "lapsed"
        self._close(Status.LAPSED)
        await self._record(
            EventKind.LAPSED,
            SYSTEM,
            f"{m.title} not completed in time: the approval lapsed",
            {
                "milestone": m.name,
                "paid": str(m.paid),
                "required": str(m.required) if m.required is not None else None,
            },
            notices=[self._notice(self._view.requester, "lapsed", milestone=m.title)],
        )

    # ------------------------------------------------------------ helpers

    def _notice(self, recipient: str, template: str, **payload: Any) -> Notice:
        """A notice for the next transition; :meth:`_record` gives it its dedupe key."""
        return Notice(
            recipient=recipient,
            template=template,
            payload={"request_id": self._view.id, "title": self._view.title, **payload},
            dedupe_key="",
        )

    async def _record(
        self,
        kind: EventKind,
        actor: str,
        comment: str | None,
        data: dict[str, Any] | None = None,
        *,
        notices: list[Notice] | None = None,
        on_behalf_of: str | None = None,
    ) -> None:
        """Persist one transition: read-model snapshot + audit row + notices, in order."""
        if self._operator is not None and actor != SYSTEM:
            data = {**(data or {}), "operator": self._operator}
        if kind in _OUTCOMES and self._view.cc:
            notices = [
                *(notices or []),
                *(self._notice(u, "cc_outcome", outcome=kind.value) for u in self._view.cc),
            ]
        self._seq += 1
        # Keyed by the transition's sequence number: unique per transition, and
        # stable across retries of its activity.
        keyed = [
            n.model_copy(
                update={"dedupe_key": f"{self._view.id}:{self._seq}:{n.template}:{n.recipient}"}
            )
            for n in notices or []
        ]
        self._view.current_approvers = current_approvers(self._view)
        event = HistoryEvent(
            seq=self._seq,
            at=workflow.now(),
            kind=kind,
            actor=actor,
            on_behalf_of=on_behalf_of,
            comment=comment,
            data=data or {},
        )
        self._view.history.append(event)
        snapshot = self._view.model_copy(update={"history": [], "stuck": None})
        record = TransitionRecord(view=snapshot, event=event, notices=keyed)
        if not self._batched:
            await self._write(Activities.RECORD_TRANSITION, record, f"record #{self._seq}: {kind}")
            return
        self._pending.append(record)
        if len(self._pending) >= _MAX_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        """Write the transitions recorded since the last flush: one activity, one transaction."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        kinds = ", ".join(r.event.kind.value for r in batch)
        first, last = batch[0].event.seq, batch[-1].event.seq
        span = f"#{first}" if first == last else f"#{first}-{last}"
        await self._write(
            Activities.RECORD_TRANSITIONS, TransitionBatch(records=batch), f"record {span}: {kinds}"
        )

    async def _write(self, activity: str, arg: Any, summary: str) -> None:
        """Write transitions; while that fails, say so loudly and keep retrying."""
        failures = 0
        while True:
            try:
                await workflow.execute_activity(
                    activity,
                    arg,
                    start_to_close_timeout=_ACTIVITY_TIMEOUT,
                    retry_policy=_RECORD_RETRY,
                    summary=summary,
                )
                break
            except ActivityError as err:
                failures += 1
                await self._flag_stuck(err, failures, summary)
                pause = min(_STUCK_RETRY_FIRST * 2 ** (failures - 1), _STUCK_RETRY_MAX)
                await workflow.sleep(pause, summary=f"stuck, retrying: {summary}")
        if self._view.stuck is not None:
            workflow.logger.info(
                "request %s is no longer stuck: %s written", self._view.id, summary
            )
            self._view.stuck = None
            workflow.upsert_search_attributes([sa.STUCK.value_set(False)])
            self._publish()

    async def _flag_stuck(self, err: ActivityError, failures: int, summary: str) -> None:
        cause: BaseException = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        reason = f"{summary}: {cause}"[:1000]
        attempts = failures * (_RECORD_RETRY.maximum_attempts or 1)
        since = self._view.stuck.since if self._view.stuck else workflow.now()
        self._view.stuck = StuckState(since=since, reason=reason, attempts=attempts)
        workflow.logger.error(
            "request %s is stuck after %d attempts: %s", self._view.id, attempts, reason
        )
        workflow.upsert_search_attributes([sa.STUCK.value_set(True)])
        workflow.set_current_details(details(self._view))
        try:
            await workflow.execute_activity(
                Activities.MARK_STUCK,
                MarkStuckInput(request_id=self._view.id, stuck=self._view.stuck),
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_FLAG_RETRY,
                summary="flag: stuck",
            )
        except ActivityError:
            pass  # the database is out of reach: the search attribute and the log say it

    def _settle(self) -> None:
        """The loop is idle: publish state and release the updates that waited for it."""
        v = self._view
        v.current_approvers = current_approvers(self._view)
        for action in self._processed:
            action.done = True
        self._processed.clear()
        self._ready = True
        self._publish()

    def _publish(self) -> None:
        v = self._view
        values = (
            v.status,
            tuple(v.current_approvers),
            v.overdue,
            float(v.amount) if v.amount is not None else None,
        )
        if values != self._last_search_attributes:
            self._last_search_attributes = values
            updates: list[SearchAttributeUpdate[Any]] = [
                sa.REQUEST_STATUS.value_set(v.status),
                sa.CURRENT_APPROVERS.value_set(list(v.current_approvers)),
                sa.OVERDUE.value_set(v.overdue),
                sa.REQUEST_TYPE.value_set(v.type),
                sa.REQUESTER.value_set(v.requester),
            ]
            if v.customer:
                updates.append(sa.CUSTOMER_ID.value_set(v.customer))
            if v.amount is not None:
                updates.append(sa.AMOUNT.value_set(float(v.amount)))
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(details(self._view))

    def _should_continue_as_new(self) -> bool:
        wanted = self._continue_requested or workflow.info().is_continue_as_new_suggested()
        return wanted and not self._queue

    def _carry(self) -> ApprovalInput:
        view = self._view.model_copy(
            update={"history": self._view.history[-_KEEP_EVENTS_ON_CONTINUE:]}
        )
        return self._input.model_copy(
            update={
                "carried": Carried(
                    view=view,
                    seq=self._seq,
                    resolve_fired=self._resolve_fired,
                    nonces=self._nonces,
                )
            }
        )


__all__ = ["ApprovalWorkflow"]
