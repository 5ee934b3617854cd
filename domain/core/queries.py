"""Questions about a request's state, asked by every other rule."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from domain.policy import MilestoneSpec, Policy, StageMode
from domain.process import (
    AppliedUpdate,
    MilestoneState,
    MilestoneStatus,
    RequestState,
    StageState,
    StageStatus,
    Status,
)


def money(value: Decimal) -> Decimal:
    """Money to the cent, half up."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def active_stage(view: RequestState) -> StageState | None:
    """The stage waiting for decisions, if any."""
    i = view.stage_index
    if i is None or i >= len(view.stages):
        return None
    stage = view.stages[i]
    return stage if stage.status is StageStatus.ACTIVE else None


def open_milestone(view: RequestState) -> MilestoneState | None:
    return next((m for m in view.milestones if m.status is MilestoneStatus.OPEN), None)


def milestone_spec(policy: Policy, milestone: MilestoneState) -> MilestoneSpec:
    return next(s for s in policy.milestones if s.name == milestone.name)


def current_approvers(view: RequestState) -> list[str]:
    """Who may decide now: everyone on an undecided slot of the active stage."""
    stage = active_stage(view)
    if stage is None or view.status != Status.IN_REVIEW:
        return []
    return sorted({a.user for s in stage.slots if s.decision is None for a in s.actors})


def step_round(view: RequestState, user: str) -> datetime | None:
    """The round of ``user``'s step on the active stage: when they became eligible on it.

    The earliest ``since`` of their entries on its undecided slots, so an escalation
    that adds them elsewhere later keeps the round, while a resubmission (the stage's
    people resolved again), a transfer or a reassignment to them starts a new one.
    None when nothing waits for them.
    """
    stage = active_stage(view)
    if stage is None or view.status != Status.IN_REVIEW:
        return None
    return min(
        (a.since for s in stage.slots if s.decision is None for a in s.actors if a.user == user),
        default=None,
    )


def stage_complete(stage: StageState) -> bool:
    """``any``: one approval is enough; ``all``: every slot approved. Slots people were
    added on (加签) must be approved either way."""
    own = [s for s in stage.slots if s.added_by is None]
    added = all(s.decision == "approve" for s in stage.slots if s.added_by is not None)
    if stage.mode is StageMode.ANY:
        return added and any(s.decision == "approve" for s in own)
    return added and all(s.decision == "approve" for s in own)


def pending_on(stage: StageState) -> set[str]:
    """Everyone a stage still waits for: on its open slots, or queued for their turn."""
    return {a.user for s in stage.slots if s.decision is None for a in (*s.actors, *s.queued)}


def handled(state: RequestState, update_id: str) -> AppliedUpdate | None:
    """How the update with this id ended, if this request's process (any run) handled it."""
    return state.applied.get(update_id)


def outstanding(view: RequestState) -> Decimal | None:
    """What the open milestone still lacks, when it has a required amount."""
    m = open_milestone(view)
    if m is None or m.required is None:
        return None
    return m.required - m.paid
