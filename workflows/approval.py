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

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.constants import WORKFLOW_NAME
    from domain.core import machine
    from domain.core.inputs import DeadlineReached, Input, Submit
    from domain.core.projection import view_of
    from domain.core.steps import Context
    from domain.errors import DomainError
    from domain.process import (
        ApprovalInput,
        RequestState,
        RequestView,
    )
    from workflows.approval_messages import Action, ApprovalMessages
    from workflows.effects import ONE_WRITE, Effects
    from workflows.messages import refusal


NEXT_RUN_UPGRADES = workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE
"""A continued run starts on the current build, not on the one this run is pinned to."""


# Pinned (the versioned worker's default, worker/versioning.py): a run ends on the build it
# started on, whatever a later build changed. Each continue-as-new starts the next run on
# the deployment's current build (a credit line at every review cycle), so a years-long
# process holds a build for one cycle at most, and an operator can move it sooner
# (docs/deploy.md). Patches stay the rule all the same.
@workflow.defn(name=WORKFLOW_NAME)
class ApprovalWorkflow(ApprovalMessages):
    @workflow.init
    def __init__(self, inp: ApprovalInput) -> None:
        self._ctx = Context(inp.policy, workflow.now)
        self._state: RequestState = machine.start(inp, workflow.now())
        self._effects = Effects(self._feed, inp.operator_language, inp.policy)
        self._queue: list[Action] = []
        self._processed: list[Action] = []
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
                    workflow.continue_as_new(
                        machine.carry(inp, self._state),
                        initial_versioning_behavior=NEXT_RUN_UPGRADES,
                    )
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

    async def _take(self, action: Action) -> None:
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


__all__ = ["ApprovalWorkflow"]
