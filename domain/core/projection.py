"""What people see of a request: its state projected onto :class:`~domain.process.RequestView`.

The view is the API's answer, the read-model's row and the query's result. It is
computed from the state, never kept: the status as its label (``awaiting_deposit``),
who may decide now, the notes of the deadlines that still apply; the process's
own bookkeeping (escalation frontiers, nonces, update outcomes) stays out.
"""

from __future__ import annotations

from datetime import datetime

from domain.process import (
    DueKind,
    DueNote,
    MilestoneStatus,
    RequestState,
    RequestView,
    StageStatus,
)

from .queries import current_approvers

_NOT_SHOWN = frozenset(RequestState.model_fields) - frozenset(RequestView.model_fields) | {
    "status",
    "working_time",
}


def view_of(s: RequestState, *, history: bool = True) -> RequestView:
    """The view people may see; without history (nor the stuck flag) for the read-model,
    whose history is the audit table and whose flag is written on its own."""
    hidden = _NOT_SHOWN if history else _NOT_SHOWN | {"history", "stuck"}
    notes = current_working_time(s)
    return RequestView.model_validate(
        {
            **s.model_dump(exclude=set(hidden)),
            "status": s.label,
            "current_approvers": current_approvers(s),
            "working_time": notes,
            "provisional": any(n.provisional for n in notes.values()),
            "version": s.seq,
        }
    )


def current_working_time(s: RequestState) -> dict[DueKind, DueNote]:
    """The notes of deadlines that still apply, as the view's instants show them."""
    stage = (
        s.stages[s.stage_index]
        if s.stage_index is not None and s.stage_index < len(s.stages)
        else None
    )
    milestone = next((m for m in s.milestones if m.status is MilestoneStatus.OPEN), None)
    current: dict[DueKind, datetime | None] = {
        "reply": stage.reply_due if stage and stage.status is StageStatus.ACTIVE else None,
        "resolve": s.resolve_due,
        "resubmit": s.resubmit_due,
        "milestone": milestone.due if milestone else None,
    }
    return {k: n for k, n in s.working_time.items() if n.at == current.get(k)}
