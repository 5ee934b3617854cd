"""The open step follows delegations that start or end while it waits (委托/代理).

A step's delegates are found when it opens (:func:`db.directory.resolve_slots`). A
delegation made, ended, starting or ending later is told to the request by a
``directory_changed`` signal naming the delegators (the API, and the delegation pass
for ones that start or end at a set time). The hint proves nothing: the process asks
the directory who delegates to whom now, for this request's type, and makes each
waiting slot say so: delegates in force are added on their principal's behalf,
delegates whose delegation is over are taken off. One hop only: a delegate's own
delegate is never added.
"""

from __future__ import annotations

from datetime import datetime

from domain.constants import Activities
from domain.process import (
    SYSTEM,
    Actor,
    DelegatesInput,
    DelegatesOutput,
    EventKind,
    RequestState,
    Slot,
    Status,
    Via,
)

from .effects import Patched, Step
from .queries import active_stage
from .steps import Context, look_up, notice, record, with_slots, with_stage

DELEGATES_FOLLOW = "delegates-follow-delegations"
"""Patch: a ``directory_changed`` naming delegators re-reads the open step's delegates."""


def follow_delegations(ctx: Context, s: RequestState, delegators: list[str]) -> Step[RequestState]:
    """Make the waiting slots of the open step carry the delegates in force now."""
    stage = active_stage(s)
    if not delegators or stage is None or s.status != Status.IN_REVIEW:
        return s
    waiting = {i: slot for i, slot in enumerate(stage.slots) if slot.waiting}
    principals = sorted(
        {
            a.user
            for slot in waiting.values()
            for a in slot.actors
            if a.via != Via.DELEGATION and a.user != s.requester
        }
    )
    if not principals or not (yield Patched(DELEGATES_FOLLOW)):
        return s
    now = ctx.now()
    found = yield from look_up(
        Activities.ACTIVE_DELEGATES,
        DelegatesInput(principals=principals, request_type=s.type, at=now),
        DelegatesOutput,
        f"who stands in: {stage.name}",
    )
    changed: dict[int, Slot] = {}
    added: list[dict[str, str]] = []
    removed: list[dict[str, str]] = []
    for i, slot in waiting.items():
        actors, plus, minus = _follow(slot, found.delegates, s.requester, now)
        if plus or minus:
            changed[i] = slot.model_copy(update={"actors": actors})
            added += plus
            removed += minus
    if not changed:
        return s
    s = with_stage(s, with_slots(stage, changed))
    return (
        yield from record(
            ctx,
            s,
            EventKind.DELEGATES_CHANGED,
            SYSTEM,
            None,
            {"stage": stage.key, "added": added, "removed": removed},
            notices=[
                notice(s, u, "assigned", stage=stage.name)
                for u in sorted({a["user"] for a in added})
            ],
        )
    )


def _follow(
    slot: Slot, delegates: dict[str, list[str]], requester: str, now: datetime
) -> tuple[tuple[Actor, ...], list[dict[str, str]], list[dict[str, str]]]:
    """The slot's actors with its delegates as ``delegates`` says; who came, who went."""
    own = {a.user: a for a in slot.actors if a.via != Via.DELEGATION}
    wanted: dict[str, str] = {}  # delegate -> principal
    for principal in sorted(u for u in own if u != requester):
        for delegate in delegates.get(principal, []):
            if delegate != requester and delegate not in own:
                wanted.setdefault(delegate, principal)
    actors = dict(own)
    minus: list[dict[str, str]] = []
    for a in slot.actors:
        if a.via != Via.DELEGATION:
            continue
        if a.user in wanted and a.user not in actors:
            actors[a.user] = a  # still in force: kept as it was (its ``since`` too)
        else:
            minus.append({"user": a.user, "on_behalf_of": a.on_behalf_of or ""})
    plus: list[dict[str, str]] = []
    for delegate, principal in sorted(wanted.items()):
        if delegate not in actors:
            actors[delegate] = Actor(
                user=delegate,
                via=Via.DELEGATION,
                on_behalf_of=principal,
                since=now,
            )
            plus.append({"user": delegate, "on_behalf_of": principal})
    return tuple(actors[u] for u in sorted(actors)), plus, minus
