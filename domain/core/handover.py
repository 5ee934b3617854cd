"""An administrator reassigns a pending step: whatever the directory says, with a reason.

The holder named is taken off every undecided slot of the open stage they hold; the
new holder takes their place there (an active user; the requester only where the
policy lets requesters approve their own step), with a fresh reply timer for the
stage and a notice with decision links. The old holder is told, without links.
"""

from __future__ import annotations

from domain.constants import Activities
from domain.errors import DomainError, ErrorCode
from domain.process import (
    Actor,
    EventKind,
    InactiveUsersInput,
    InactiveUsersOutput,
    ReassignInput,
    RequestState,
    Slot,
    Via,
)

from .effects import Step
from .queries import active_stage
from .steps import (
    Context,
    Refused,
    due,
    due_facts,
    look_up,
    notice,
    put,
    record,
    with_slots,
    with_stage,
)


def reassign(
    ctx: Context, s: RequestState, msg: ReassignInput, operator: str | None
) -> Step[Refused]:
    """Move ``msg.from_user``'s pending step to ``msg.to_user``; refused if not active."""
    stage = active_stage(s)
    assert stage is not None  # admitted
    found = yield from look_up(
        Activities.INACTIVE_USERS,
        InactiveUsersInput(users=[msg.to_user]),
        InactiveUsersOutput,
        f"who may take over: {stage.name}",
    )
    if found.inactive:
        return s, DomainError(
            ErrorCode.VALIDATION,
            f"{msg.to_user} is not an active user",
            {"field": "to_user", "inactive": found.inactive},
        )
    now = ctx.now()
    changed: dict[int, Slot] = {}
    for i, slot in enumerate(stage.slots):
        if slot.decision is not None or not slot.may_act(msg.from_user):
            continue
        kept = [a for a in slot.actors if a.user != msg.from_user]
        if not any(a.user == msg.to_user for a in kept):
            kept.append(Actor(user=msg.to_user, via=Via.ADMIN, since=now))
        frontier = tuple(u for u in slot.escalation_frontier if u != msg.from_user)
        changed[i] = put(
            slot,
            actors=tuple(kept),
            escalation_frontier=tuple(dict.fromkeys((*frontier, msg.to_user))),
        )
    stage = with_slots(stage, changed)
    s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    stage = put(stage, reply_due=reply_due)
    s = with_stage(s, stage)
    reply = due_facts(s, "reply", reply_due)
    s = yield from record(
        ctx,
        s,
        EventKind.REASSIGNED,
        msg.actor,
        msg.comment,
        {
            "stage": stage.key,
            "stage_name": stage.name,
            "from": msg.from_user,
            "to": msg.to_user,
            "removed": [msg.from_user],
            "added": [msg.to_user],
            "unassigned": [],
            "reason": "reassigned by an administrator",
        },
        notices=[
            notice(s, msg.to_user, "reassigned_to", stage=stage.name, by=msg.actor, **reply),
            notice(s, msg.from_user, "reassigned_away", stage=stage.name, by=msg.actor),
        ],
        operator=operator,
    )
    return s, None
