"""催办: the requester urges the current approvers of the open stage.

At most once per round of a stage (a stage passed again after a return or a
send-back is a new round) within the policy's ``urge`` interval, counted like the
other durations (working time on the business calendar when it says ``working``).
An urge is a person pushing now: its notices go out at once on every channel the
approvers chose, never held to working hours (:data:`domain.delivery.HELD_KINDS`).
"""

from __future__ import annotations

from datetime import datetime

from domain.constants import Activities
from domain.durations import Span
from domain.process import EventKind, RequestState, UrgeInput, UrgeState
from domain.working_time import Due, DueInput, clock_start

from .effects import Step
from .queries import active_stage, current_approvers
from .steps import Context, due_facts, look_up, notice, put, record


def urge(ctx: Context, s: RequestState, msg: UrgeInput, operator: str | None) -> Step[RequestState]:
    """Tell each current approver, marked urgent; count it; note when it may come again."""
    stage = active_stage(s)
    assert stage is not None  # admitted
    now = ctx.now()
    people = current_approvers(s)
    next_at = yield from next_urge_at(ctx, now)
    count = s.urges + 1
    s = put(
        s,
        urges=count,
        last_urge=UrgeState(
            at=now,
            by=msg.actor,
            stage=stage.index,
            round=stage.started_at,
            people=tuple(people),
            next_at=next_at,
        ),
    )
    reply = due_facts(s, "reply", stage.reply_due)
    return (
        yield from record(
            ctx,
            s,
            EventKind.URGED,
            msg.actor,
            msg.comment,
            {
                "stage": stage.key,
                "stage_name": stage.name,
                "people": people,
                "count": count,
                "next_allowed_at": next_at.isoformat(),
            },
            notices=[
                notice(
                    s,
                    u,
                    "urged",
                    stage=stage.name,
                    by=msg.actor,
                    urgent=True,
                    note=msg.comment or "",
                    **reply,
                )
                for u in people
            ],
            operator=operator,
        )
    )


def next_urge_at(ctx: Context, start: datetime) -> Step[datetime]:
    """When the interval from ``start`` ends: plain arithmetic in calendar time, the
    business calendar (a look-up the history records) in working time."""
    span = ctx.policy.urge.interval
    if not (isinstance(span, Span) and span.working):
        return start + span
    out = yield from look_up(
        Activities.DUE_AT,
        DueInput(start=clock_start(start, span), span=span),
        Due,
        f"urge again from: {span.describe()}",
    )
    return out.at
