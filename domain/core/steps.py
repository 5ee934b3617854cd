"""What every step of the process shares: its context, recording a transition, deadlines.

A step is a generator over immutable state (:data:`~domain.core.effects.Step`): it
takes a :class:`~domain.process.RequestState`, yields effects, is sent their
results and returns the next state. Nothing is changed in place: a change is a
new value, built with :func:`put` and the small helpers below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.constants import Activities
from domain.durations import Span
from domain.errors import DomainError
from domain.policy import ApproverSpec, Policy, StageMode
from domain.process import (
    SYSTEM,
    DueKind,
    DueNote,
    EventKind,
    HistoryEvent,
    MilestoneState,
    Notice,
    RequestState,
    ResolveAssigneesInput,
    ResolveAssigneesOutput,
    Slot,
    StageState,
    Status,
)
from domain.working_time import Due, DueInput, clock_start

from .effects import LookUp, Step, Write

Refused = tuple[RequestState, DomainError | None]
"""What a route action leaves: the new state, and the refusal if a look-up refused it."""

OUTCOMES = frozenset(
    {
        EventKind.REQUEST_APPROVED,
        EventKind.REJECTED,
        EventKind.WITHDRAWN,
        EventKind.LAPSED,
        EventKind.EXPIRED,
        EventKind.COMPLETED,
        EventKind.SETTLED,
        EventKind.REVOKED,
    }
)
"""Transitions the people copied (CC) are told of."""

_R = TypeVar("_R", bound=BaseModel)
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Context:
    """What a step reads besides the state: the request's policy and the clock.

    Args:
        policy: the policy snapshot the request was submitted under.
        now: the current instant; the workflow passes ``workflow.now``, which moves
            on while a step waits for an effect's result.
    """

    policy: Policy
    now: Callable[[], datetime]


# ------------------------------------------------------------- new values


def put(value: _M, **changes: Any) -> _M:
    """``value`` with ``changes``: a new value, the old one untouched."""
    return value.model_copy(update=changes)


def with_stage(s: RequestState, stage: StageState) -> RequestState:
    """``s`` with ``stage`` in its place."""
    stages = list(s.stages)
    stages[stage.index] = stage
    return put(s, stages=tuple(stages))


def with_slots(stage: StageState, slots: dict[int, Slot]) -> StageState:
    """``stage`` with the slots at these positions replaced."""
    return put(stage, slots=tuple(slots.get(i, slot) for i, slot in enumerate(stage.slots)))


def with_milestone(s: RequestState, milestone: MilestoneState) -> RequestState:
    """``s`` with ``milestone`` in place of the one of its name."""
    return put(
        s, milestones=tuple(milestone if m.name == milestone.name else m for m in s.milestones)
    )


def close(ctx: Context, s: RequestState, status: Status) -> RequestState:
    return put(s, status=status, closed_at=ctx.now())


# ------------------------------------------------------------ transitions


def notice(s: RequestState, recipient: str, template: str, **payload: Any) -> Notice:
    """A notice for the next transition; :func:`record` gives it its dedupe key."""
    return Notice(
        recipient=recipient,
        template=template,
        payload={"request_id": s.id, "title": s.title, **payload},
        dedupe_key="",
    )


def record(
    ctx: Context,
    s: RequestState,
    kind: EventKind,
    actor: str,
    comment: str | None,
    data: dict[str, Any] | None = None,
    *,
    notices: list[Notice] | None = None,
    on_behalf_of: str | None = None,
    operator: str | None = None,
) -> Step[RequestState]:
    """One transition: the audit event, its notices and the state after it, written.

    ``operator``: who vouched for the message that ``actor`` sent (an operator acting
    on someone's behalf), recorded with the event.
    """
    if operator is not None and actor != SYSTEM:
        data = {**(data or {}), "operator": operator}
    if kind in OUTCOMES and s.cc:
        notices = [
            *(notices or []),
            *(notice(s, u, "cc_outcome", outcome=kind.value) for u in s.cc),
        ]
    seq = s.seq + 1
    # Keyed by the transition's sequence number: unique per transition, and
    # stable across retries of its activity.
    keyed = [
        n.model_copy(update={"dedupe_key": f"{s.id}:{seq}:{n.template}:{n.recipient}"})
        for n in notices or []
    ]
    event = HistoryEvent(
        seq=seq,
        at=ctx.now(),
        kind=kind,
        actor=actor,
        on_behalf_of=on_behalf_of,
        comment=comment,
        data=data or {},
    )
    s = put(s, seq=seq, history=(*s.history, event))
    yield Write(event, keyed, s)
    return s


# ---------------------------------------------------------------- look-ups


def look_up(activity: str, arg: BaseModel, result_type: type[_R], summary: str) -> Step[_R]:
    out = yield LookUp(activity, arg, result_type, summary)
    assert isinstance(out, result_type)
    return out


def resolve_slots(
    ctx: Context,
    s: RequestState,
    key: str,
    mode: StageMode,
    approvers: tuple[ApproverSpec, ...],
    summary: str,
) -> Step[tuple[Slot, ...]]:
    """Who the directory names for ``approvers`` now (the requester never among them)."""
    out = yield from look_up(
        Activities.RESOLVE_ASSIGNEES,
        ResolveAssigneesInput(
            request_id=s.id,
            requester=s.requester,
            stage_key=key,
            mode=mode,
            approvers=approvers,
            at=ctx.now(),
            request_type=s.type,
        ),
        ResolveAssigneesOutput,
        summary,
    )
    return tuple(out.slots)


def people(
    ctx: Context, s: RequestState, key: str, approvers: tuple[ApproverSpec, ...]
) -> Step[list[str]]:
    """Everyone ``approvers`` names today; the requester only where named as such."""
    named = {s.requester} if any(a.requester for a in approvers) else set()
    others = tuple(a for a in approvers if not a.requester)
    if not others:
        return sorted(named)
    slots = yield from resolve_slots(ctx, s, key, StageMode.ANY, others, f"who is {key}")
    return sorted(named | {a.user for slot in slots for a in slot.actors})


# --------------------------------------------------------------- deadlines


def due(
    s: RequestState, kind: DueKind, start: datetime, span: timedelta
) -> Step[tuple[RequestState, datetime]]:
    """When a deadline of ``span`` from ``start`` falls, and ``s`` with its note.

    Calendar time is plain arithmetic (no effect, so no command: the histories of
    calendar-time requests are unchanged). Working time is asked of the business
    calendar through a look-up whose answer the history records, so a calendar
    updated later never changes this request's replay; the note says how it was
    counted (and whether provisionally) for the API, the inbox and the notices.
    """
    if not (isinstance(span, Span) and span.working):
        if kind in s.working_time:
            s = put(s, working_time={k: n for k, n in s.working_time.items() if k != kind})
        return s, start + span
    # Counted in whole minutes, as people read deadlines (the preview counts alike).
    out = yield from look_up(
        Activities.DUE_AT,
        DueInput(start=clock_start(start, span), span=span),
        Due,
        f"{kind} due: {span.describe()}",
    )
    note = DueNote(at=out.at, span=span.describe(), provisional=out.provisional)
    return put(s, working_time={**s.working_time, kind: note}), out.at


def due_facts(s: RequestState, kind: DueKind, at: datetime | None) -> dict[str, Any]:
    """What a notice says of a deadline: its instant and how it was counted."""
    if at is None:
        return {}
    note = s.working_time.get(kind)
    if note is None or note.at != at:
        return {"due": at.isoformat()}
    return {"due": at.isoformat(), "working_time": note.span, "provisional": note.provisional}
