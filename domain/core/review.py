"""The review: stages opened, decided, transferred, returned, escalated and handed over.

Each function is a step over immutable state (:mod:`domain.core.steps`): it takes
the state, yields the effects (transitions to write, look-ups to make) in the order
the workflow carries them out, and returns the next state. When the route is done,
:mod:`domain.core.aftercare` takes over.
"""

from __future__ import annotations

from typing import Any

from domain.conditions import evaluate
from domain.constants import Activities
from domain.policy import ResolveAction
from domain.process import (
    SYSTEM,
    Actor,
    DecideInput,
    EscalationInput,
    EscalationOutput,
    EventKind,
    InactiveUsersInput,
    InactiveUsersOutput,
    RequestState,
    ResubmitInput,
    Slot,
    StageStatus,
    Status,
    TransferInput,
    Via,
    WithdrawInput,
    stages_of,
)
from domain.requests import condition_values
from domain.routing import resolve_route

from . import additions, admission, aftercare, escalation
from .effects import Patched, Step
from .queries import active_stage, current_approvers, stage_complete
from .queries import outstanding as outstanding_of
from .steps import (
    Context,
    close,
    due,
    due_facts,
    look_up,
    notice,
    people,
    put,
    record,
    resolve_slots,
    with_slots,
    with_stage,
)

TOP_STEPS_IN = "top-authority-steps-in"
"""Change: at the resolve timeout the top authority steps in on a slot with no one left
above its holders. Requests that met that dead end before it replay as they were."""


def submit(ctx: Context, s: RequestState) -> Step[RequestState]:
    """The request arrives: record it, copy people in, open the first stage."""
    if ctx.policy.watch is None:
        s, at = yield from due(s, "resolve", ctx.now(), ctx.policy.timers.resolve)
        s = put(s, resolve_due=at)
    s = yield from record(
        ctx,
        s,
        EventKind.SUBMITTED,
        s.requester,
        s.comment,
        {
            "policy": f"{s.policy_type} v{s.policy_version}",
            "route": [{"stage": st.key, "reason": st.reason} for st in s.stages],
        },
    )
    s = yield from copy_in(ctx, s)
    if ctx.policy.watch is not None:
        return (yield from aftercare.start_watch(ctx, s))
    return (yield from advance(ctx, s, 0))


def copy_in(ctx: Context, s: RequestState) -> Step[RequestState]:
    """CC (抄送): people told at submission and of the outcome, deciding nothing."""
    values = condition_values(s.amount, s.fields)
    specs = tuple(c.who for c in ctx.policy.cc if c.when is None or evaluate(c.when, values))
    if not specs:
        return s
    copied = yield from people(ctx, s, "copied", specs)
    s = put(s, cc=tuple(copied))
    return (
        yield from record(
            ctx,
            s,
            EventKind.CC,
            SYSTEM,
            None,
            {"people": copied},
            notices=[notice(s, u, "cc_submitted") for u in copied],
        )
    )


def advance(ctx: Context, s: RequestState, index: int) -> Step[RequestState]:
    """Activate stage ``index``, or approve when the route is done."""
    if index >= len(s.stages):
        return (yield from aftercare.approve(ctx, s))
    stage = s.stages[index]
    now = ctx.now()
    slots = yield from resolve_slots(
        ctx, s, stage.key, stage.mode, stage.approvers, f"who decides: {stage.name}"
    )
    s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    stage = put(
        stage,
        slots=tuple(
            put(slot, escalation_frontier=tuple(a.user for a in slot.actors)) for slot in slots
        ),
        status=StageStatus.ACTIVE,
        started_at=now,
        reply_due=reply_due,
    )
    s = put(with_stage(s, stage), stage_index=index, status=Status.IN_REVIEW)
    assigned = sorted({a.user for slot in stage.slots for a in slot.actors})
    reply = due_facts(s, "reply", reply_due)
    return (
        yield from record(
            ctx,
            s,
            EventKind.ASSIGNED,
            SYSTEM,
            None,
            {
                "stage": stage.key,
                "stage_name": stage.name,
                "reason": stage.reason,
                "people": assigned,
                "unassigned": [slot.label for slot in stage.slots if not slot.actors],
            },
            notices=[notice(s, u, "assigned", stage=stage.name, **reply) for u in assigned],
        )
    )


def decide(
    ctx: Context, s: RequestState, msg: DecideInput, operator: str | None
) -> Step[RequestState]:
    stage = active_stage(s)
    assert stage is not None  # admitted
    now = ctx.now()
    mine = {
        i: slot
        for i, slot in enumerate(stage.slots)
        if slot.decision is None and slot.may_act(msg.actor)
    }
    on_behalf = next(
        (a.on_behalf_of for slot in mine.values() for a in slot.actors if a.user == msg.actor),
        None,
    )
    data: dict[str, Any] = {"stage": stage.key, "stage_name": stage.name}
    if msg.action == "approve":
        stage = with_slots(
            stage,
            {
                i: put(slot, decision="approve", decided_by=msg.actor, decided_at=now)
                for i, slot in mine.items()
            },
        )
        s = yield from record(
            ctx,
            with_stage(s, stage),
            EventKind.APPROVED,
            msg.actor,
            msg.comment,
            data,
            on_behalf_of=on_behalf,
            operator=operator,
        )
        # Slots added to wait for this approval (加签) open now; none on other stages.
        s = yield from additions.open_turns(ctx, s)
        stage = active_stage(s)
        assert stage is not None
        if not stage_complete(stage):
            return s
        s = with_stage(s, put(stage, status=StageStatus.APPROVED))
        s = yield from record(ctx, s, EventKind.STAGE_COMPLETED, SYSTEM, None, data)
        return (yield from advance(ctx, s, stage.index + 1))
    if msg.action == "reject":
        s = close(ctx, with_stage(s, put(stage, status=StageStatus.REJECTED)), Status.REJECTED)
        return (
            yield from record(
                ctx,
                s,
                EventKind.REJECTED,
                msg.actor,
                msg.comment,
                data,
                notices=[notice(s, s.requester, msg.action)],
                on_behalf_of=on_behalf,
                operator=operator,
            )
        )
    s = put(with_stage(s, put(stage, status=StageStatus.RETURNED)), status=Status.RETURNED)
    s, resubmit_due = yield from due(s, "resubmit", now, ctx.policy.timers.resubmit)
    s = put(s, resubmit_due=resubmit_due)
    return (
        yield from record(
            ctx,
            s,
            EventKind.RETURNED,
            msg.actor,
            msg.comment,
            {**data, "resubmit_due": resubmit_due.isoformat()},
            notices=[notice(s, s.requester, msg.action, **due_facts(s, "resubmit", resubmit_due))],
            on_behalf_of=on_behalf,
            operator=operator,
        )
    )


def transfer(
    ctx: Context, s: RequestState, msg: TransferInput, operator: str | None
) -> Step[RequestState]:
    stage = active_stage(s)
    assert stage is not None  # admitted
    now = ctx.now()
    changed: dict[int, Slot] = {}
    for i, slot in enumerate(stage.slots):
        if slot.decision is not None or not slot.may_act(msg.actor):
            continue
        kept = [a for a in slot.actors if a.user != msg.actor]
        giver = next(a for a in slot.actors if a.user == msg.actor)
        if not any(a.user == msg.to_user for a in kept):
            kept.append(
                Actor(
                    user=msg.to_user,
                    via=Via.TRANSFER,
                    on_behalf_of=giver.on_behalf_of or msg.actor,
                    since=now,
                )
            )
        changed[i] = put(slot, actors=tuple(kept), escalation_frontier=(msg.to_user,))
    s = with_stage(s, with_slots(stage, changed))
    return (
        yield from record(
            ctx,
            s,
            EventKind.TRANSFERRED,
            msg.actor,
            msg.comment,
            {"stage": stage.key, "to_user": msg.to_user},
            notices=[notice(s, msg.to_user, "transferred", stage=stage.name)],
            operator=operator,
        )
    )


def withdraw(
    ctx: Context, s: RequestState, msg: WithdrawInput, operator: str | None
) -> Step[RequestState]:
    notices = [notice(s, u, "withdrawn") for u in current_approvers(s)]
    stage = active_stage(s)
    if stage is not None:
        s = with_stage(s, put(stage, status=StageStatus.CLOSED))
    s = close(ctx, s, Status.WITHDRAWN)
    return (
        yield from record(
            ctx, s, EventKind.WITHDRAWN, msg.actor, msg.comment, notices=notices, operator=operator
        )
    )


def resubmit(
    ctx: Context, s: RequestState, msg: ResubmitInput, operator: str | None
) -> Step[RequestState]:
    amount, fields, route = admission.resubmitted(s, ctx.policy, msg)
    changed = {
        k: True
        for k, old, new in (("amount", s.amount, amount), ("fields", s.fields, fields))
        if old != new
    }
    s = put(
        s,
        amount=amount,
        fields=fields,
        stages=stages_of(route),
        status=Status.IN_REVIEW,
        resubmit_due=None,
        overdue=False,
        stage_index=None,
        resolve_fired=False,
    )
    s, resolve_due = yield from due(s, "resolve", ctx.now(), ctx.policy.timers.resolve)
    s = yield from record(
        ctx,
        put(s, resolve_due=resolve_due),
        EventKind.RESUBMITTED,
        msg.actor,
        msg.comment,
        {"changed": sorted(changed), "stages": [st.key for st in route.stages]},
        operator=operator,
    )
    return (yield from advance(ctx, s, 0))


def reassign_departed(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Take people who left the directory off the active step; their managers step in."""
    stage = active_stage(s)
    if stage is None or s.status != Status.IN_REVIEW:
        return s
    waiting = {i: slot for i, slot in enumerate(stage.slots) if slot.waiting}
    holders = sorted({a.user for slot in waiting.values() for a in slot.actors})
    if not holders:
        return s
    found = yield from look_up(
        Activities.INACTIVE_USERS,
        InactiveUsersInput(users=holders),
        InactiveUsersOutput,
        f"who has left: {stage.name}",
    )
    gone = set(found.inactive)
    if not gone:
        return s
    up = yield from look_up(
        Activities.RESOLVE_ESCALATION,
        EscalationInput(
            request_id=s.id,
            requester=s.requester,
            users=sorted(gone),
            escalation_role=ctx.policy.timers.escalation_role,
            at=ctx.now(),
        ),
        EscalationOutput,
        f"who steps in: {stage.name}",
    )
    slots, added = escalation.hand_over(
        list(waiting.values()), gone, up.next_up, s.requester, ctx.now()
    )
    s = with_stage(s, with_slots(stage, dict(zip(waiting, slots, strict=True))))
    return (
        yield from record(
            ctx,
            s,
            EventKind.REASSIGNED,
            SYSTEM,
            None,
            {
                "stage": stage.key,
                "removed": sorted(gone & set(holders)),
                "added": added,
                "unassigned": [slot.label for slot in slots if not slot.actors],
                "reason": "left the directory",
            },
            notices=[notice(s, u, "assigned", stage=stage.name) for u in added],
        )
    )


# ------------------------------------------------------------------ deadlines


def on_reply_due(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Nobody acted in time: remind the assignees, then escalate one level up."""
    stage = active_stage(s)
    assert stage is not None
    now = ctx.now()
    waiting = [slot for slot in stage.slots if slot.waiting]
    reminded = sorted({a.user for slot in waiting for a in slot.actors})
    reply = due_facts(s, "reply", stage.reply_due)
    s = yield from record(
        ctx,
        s,
        EventKind.REMINDED,
        SYSTEM,
        None,
        {"stage": stage.key, "people": reminded},
        notices=[notice(s, u, "reminder", stage=stage.name, **reply) for u in reminded],
    )
    frontier = sorted({u for slot in waiting for u in slot.escalation_frontier})
    s, added = yield from escalate(ctx, s, frontier, reason="reply timeout")
    stage = active_stage(s)
    assert stage is not None
    escalations = stage.escalations + 1
    if not added or escalations >= ctx.policy.timers.max_escalations:
        reply_due = None  # the top of the chain: nobody further to escalate to
    else:
        s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    return with_stage(s, put(stage, escalations=escalations, reply_due=reply_due))


def escalate(
    ctx: Context, s: RequestState, frontier: list[str], reason: str
) -> Step[tuple[RequestState, list[str]]]:
    """Make the next person up from ``frontier`` eligible on the active stage's open slots."""
    if not frontier:
        return s, []
    stage = active_stage(s)
    assert stage is not None
    out = yield from look_up(
        Activities.RESOLVE_ESCALATION,
        EscalationInput(
            request_id=s.id,
            requester=s.requester,
            users=frontier,
            escalation_role=ctx.policy.timers.escalation_role,
            at=ctx.now(),
        ),
        EscalationOutput,
        f"who is next up: {stage.name}",
    )
    next_up = {u: out.next_up.get(u, []) for u in frontier}
    return (yield from add_escalated(ctx, s, next_up, reason))


def add_escalated(
    ctx: Context, s: RequestState, next_up: dict[str, list[str]], reason: str
) -> Step[tuple[RequestState, list[str]]]:
    stage = active_stage(s)
    assert stage is not None
    waiting = {i: slot for i, slot in enumerate(stage.slots) if slot.waiting}
    slots, added = escalation.escalate(list(waiting.values()), next_up, s.requester, ctx.now())
    s = with_stage(s, with_slots(stage, dict(zip(waiting, slots, strict=True))))
    if added:
        s = yield from record(
            ctx,
            s,
            EventKind.ESCALATED,
            SYSTEM,
            None,
            {"stage": stage.key, "to": added, "reason": reason},
            notices=[notice(s, u, "escalated", stage=stage.name) for u in added],
        )
    return s, added


def on_resolve_due(ctx: Context, s: RequestState) -> Step[RequestState]:
    """No final decision in time: mark overdue, tell the top, apply the policy's action."""
    s = put(s, resolve_fired=True, overdue=True)
    top = yield from top_authority(ctx, s)
    s = yield from record(
        ctx,
        s,
        EventKind.OVERDUE,
        SYSTEM,
        None,
        {"action": ctx.policy.timers.resolve_action.value, "top_authority": top},
        notices=[notice(s, u, "overdue") for u in sorted({s.requester, *top})],
    )
    stage = active_stage(s)
    if stage is None:
        return s
    if ctx.policy.timers.resolve_action is ResolveAction.AUTO_REJECT:
        s = close(ctx, with_stage(s, put(stage, status=StageStatus.REJECTED)), Status.REJECTED)
        return (
            yield from record(
                ctx,
                s,
                EventKind.REJECTED,
                SYSTEM,
                "rejected automatically: no decision in time",
                {"stage": stage.key, "automatic": True},
                notices=[notice(s, s.requester, "reject")],
            )
        )
    waiting = [slot for slot in stage.slots if slot.waiting]
    fresh = [u for u in top if not any(slot.may_act(u) for slot in waiting)]
    if fresh:
        sources = {u for slot in waiting for u in slot.escalation_frontier}
        # A slot whose holders and everyone above them left has no frontier: the top
        # authority steps in there all the same, or nobody could ever decide it.
        if not sources and (yield Patched(TOP_STEPS_IN)):
            sources = {s.requester}
        next_up = {u: fresh for u in sorted(sources)}
        s, _ = yield from add_escalated(ctx, s, next_up, reason="resolve timeout")
    else:
        frontier = sorted({u for slot in waiting for u in slot.escalation_frontier})
        s, _ = yield from escalate(ctx, s, frontier, reason="resolve timeout")
    return s


def top_authority(ctx: Context, s: RequestState) -> Step[list[str]]:
    """The people of the route's last stage, as the directory has them today."""
    if not s.stages:
        return []
    last = s.stages[-1]
    if last.slots:
        return sorted({a.user for slot in last.slots for a in slot.actors})
    slots = yield from resolve_slots(
        ctx, s, last.key, last.mode, last.approvers, "who is the top authority"
    )
    return sorted({a.user for slot in slots for a in slot.actors})


def on_resubmit_due(ctx: Context, s: RequestState) -> Step[RequestState]:
    s = close(ctx, s, Status.EXPIRED)
    return (
        yield from record(
            ctx,
            s,
            EventKind.EXPIRED,
            SYSTEM,
            "not resubmitted in time",
            notices=[notice(s, s.requester, "expired")],
        )
    )


# ------------------------------------------------------------- reviews again


def on_review_due(ctx: Context, s: RequestState) -> Step[RequestState]:
    """A request in force is re-evaluated: a new cycle of the route."""
    cycle = ctx.policy.review_cycle
    assert cycle is not None
    route = resolve_route(ctx.policy, s.amount, s.fields)
    s = put(
        s,
        review_cycle=s.review_cycle + 1,
        next_review=None,
        stages=stages_of(route),
        overdue=False,
        resolve_fired=False,
    )
    s, resolve_due = yield from due(s, "resolve", ctx.now(), ctx.policy.timers.resolve)
    s = yield from record(
        ctx,
        put(s, resolve_due=resolve_due),
        EventKind.REVIEW_STARTED,
        SYSTEM,
        cycle.title,
        {"cycle": s.review_cycle, "stages": [st.key for st in route.stages]},
        notices=[notice(s, s.requester, "review_started")],
    )
    return (yield from advance(ctx, s, 0))


def on_watch_review(ctx: Context, s: RequestState) -> Step[RequestState]:
    """A receivable still unpaid at its review date goes to the route's approvers."""
    assert s.watch is not None
    s = put(s, watch=put(s.watch, next_at=None))
    s, resolve_due = yield from due(s, "resolve", ctx.now(), ctx.policy.timers.resolve)
    s = yield from record(
        ctx,
        put(s, resolve_due=resolve_due),
        EventKind.REVIEW_STARTED,
        SYSTEM,
        "still unpaid: the decision goes to the route's approvers",
        {"outstanding": str(outstanding_of(s))},
    )
    return (yield from advance(ctx, s, 0))
