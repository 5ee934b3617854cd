"""The floor: a bare Temporal workflow of the same shape as one approval request.

What it keeps of a request: started with an input, told it is ready once its
first step ran, then two updates (stage 1 approve, stage 2 approve); one
no-op remote activity per step (the start, each update), and each update
answers only after its activity has completed, as the approval workflow's
updates answer after the transition is written. What it leaves out: the
database, the API, policies, proofs, timers, search-attribute upserts.

So its figures are what Temporal itself costs on this machine for this shape:
how close the project gets to them is the question the benchmark asks.

Workflow module rules apply (stdlib and ``temporalio`` only); the no-op
activity lives here too because it imports nothing and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

FLOOR_WORKFLOW_NAME = "BenchFloorWorkflow"
FLOOR_STEP_ACTIVITY = "bench_floor_step"
FLOOR_READY = "floor_ready"
FLOOR_DECIDE = "floor_decide"

STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@dataclass
class FloorInput:
    request_id: str


@dataclass
class FloorStep:
    request_id: str
    step: str


@dataclass
class FloorDecision:
    actor: str
    stage: int


@dataclass
class FloorState:
    """What an update answers: the stage now open (0 when none) and the status."""

    stage: int
    status: str


@activity.defn(name=FLOOR_STEP_ACTIVITY)
async def floor_step(step: FloorStep) -> None:
    """Stands in for writing a transition: a round trip through the task queue, no work."""


@workflow.defn(name=FLOOR_WORKFLOW_NAME)
class FloorWorkflow:
    @workflow.init
    def __init__(self, inp: FloorInput) -> None:
        self._request_id = inp.request_id
        self._stage = 0
        self._status = "submitted"
        self._busy = False

    @workflow.run
    async def run(self, inp: FloorInput) -> FloorState:
        await self._step("submitted")
        self._stage, self._status = 1, "in_review"
        await workflow.wait_condition(
            lambda: self._status == "approved" and workflow.all_handlers_finished()
        )
        return self._state()

    @workflow.update(name=FLOOR_READY)
    async def ready(self) -> FloorState:
        """Answers once the first step ran, like the approval workflow's ``ready``."""
        await workflow.wait_condition(lambda: self._stage > 0 or self._status == "approved")
        return self._state()

    @workflow.update(name=FLOOR_DECIDE)
    async def decide(self, inp: FloorDecision) -> FloorState:
        self._busy = True
        try:
            await self._step(f"approve_stage{inp.stage}")
        finally:
            self._busy = False
        if inp.stage == 2:
            self._stage, self._status = 0, "approved"
        else:
            self._stage = inp.stage + 1
        return self._state()

    @decide.validator
    def _validate_decide(self, inp: FloorDecision) -> None:
        # As cheap as the approval workflow's validator is meant to be: refuse at once
        # a decision for a stage that is not open, or while another one is applied.
        if self._busy or inp.stage != self._stage:
            raise ApplicationError(
                f"stage {inp.stage} is not open (open: {self._stage})",
                type="invalid_state",
                non_retryable=True,
            )

    async def _step(self, step: str) -> None:
        await workflow.execute_activity(
            floor_step,
            FloorStep(self._request_id, step),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
            summary=step,
        )

    def _state(self) -> FloorState:
        return FloorState(stage=self._stage, status=self._status)
