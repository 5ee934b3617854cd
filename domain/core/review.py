"""The review: stages opened, decided, transferred, returned, escalated and handed over.

Each function is a step over immutable state (:mod:`domain.core.steps`): it takes
the state, yields the effects (transitions to write, look-ups to make) in the order
the workflow carries them out, and returns the next state. When the route is done,
:mod:`domain.core.aftercare` takes over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.conditions import evaluate
from domain.constants import Activities
from domain.policy import SEND_BACK_TO_REQUESTER, ResolveAction, SendBackResume
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
    ResolveAssigneesInput,
    ResolveAssigneesOutput,
    ResubmitInput,
    SendBackInput,
    SentBack,
    Slot,
    StageState,
    StageStatus,
    Status,
    SupersededDecision,
    TransferInput,
    Via,
    WithdrawInput,
    stages_of,
)
from domain.requests import condition_values
from domain.resolution import Settled, approved_before, settle
from domain.routing import resolve_route

from . import additions, admission, aftercare, discussion, escalation
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
            **discussion.attached(list(s.submitted_files)),
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


def advance(
    ctx: Context, s: RequestState, index: int, template: str = "assigned", **told: Any
) -> Step[RequestState]:
    """Activate stage ``index``, or approve when the route is done.

    Its people are told with the notice ``template`` (``sent_back``: it came back to
    them), whose payload has ``told`` besides the stage and its reply deadline.
    """
    if index >= len(s.stages):
        return (yield from aftercare.approve(ctx, s))
    stage = s.stages[index]
    now = ctx.now()
    settled: list[Settled] = []
    if ctx.policy.resolution.as_always:
        slots = yield from resolve_slots(
            ctx, s, stage.key, stage.mode, stage.approvers, f"who decides: {stage.name}"
        )
    else:
        settled = yield from settle_slots(ctx, s, stage)
        slots = tuple(x.slot for x in settled)
    s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    stage = put(
        stage,
        slots=tuple(
            put(
                slot,
                escalation_frontier=() if slot.automatic else tuple(a.user for a in slot.actors),
            )
            for slot in slots
        ),
        status=StageStatus.ACTIVE,
        started_at=now,
        reply_due=reply_due,
    )
    s = put(with_stage(s, stage), stage_index=index, status=Status.IN_REVIEW)
    open_slots = [slot for slot in stage.slots if slot.decision is None]
    assigned = sorted({a.user for slot in open_slots for a in slot.actors})
    reply = due_facts(s, "reply", reply_due)
    data: dict[str, Any] = {
        "stage": stage.key,
        "stage_name": stage.name,
        "reason": stage.reason,
        "people": assigned,
        "unassigned": [slot.label for slot in open_slots if not slot.actors],
    }
    automatic = [x for x in settled if x.automatic]
    if automatic:
        data["automatic"] = [x.slot.label for x in automatic]
    s = yield from record(
        ctx,
        s,
        EventKind.ASSIGNED,
        SYSTEM,
        None,
        data,
        notices=[notice(s, u, template, stage=stage.name, **reply, **told) for u in assigned],
    )
    if not automatic:
        return s
    return (yield from approve_automatically(ctx, s, stage, automatic))


def settle_slots(ctx: Context, s: RequestState, stage: StageState) -> Step[list[Settled]]:
    """Who decides ``stage``, settled in the core by the policy's ``resolution`` options
    from what the directory names (:func:`domain.resolution.settle`)."""
    rules = ctx.policy.resolution
    at = ctx.now()
    out = yield from look_up(
        Activities.RESOLVE_ASSIGNEES,
        ResolveAssigneesInput(
            request_id=s.id,
            requester=s.requester,
            stage_key=stage.key,
            mode=stage.mode,
            approvers=stage.approvers,
            at=at,
            detail=True,
            fallback_role=rules.empty_slot_role,
            request_type=s.type,
        ),
        ResolveAssigneesOutput,
        f"who decides: {stage.name}",
    )
    assert out.detail is not None  # asked for
    approved = approved_before(s.stages, stage.index, rules.repeated_approver)
    return settle(out.detail, s.requester, rules, at, approved=approved)


def approve_automatically(
    ctx: Context, s: RequestState, stage: StageState, automatic: list[Settled]
) -> Step[RequestState]:
    """Record the slots the policy approved by itself; go on when the stage is done."""
    because = list(dict.fromkeys(x.because for x in automatic))
    data: dict[str, Any] = {"stage": stage.key, "stage_name": stage.name}
    s = yield from record(
        ctx,
        s,
        EventKind.AUTO_APPROVED,
        SYSTEM,
        "; ".join(because),
        {
            **data,
            "slots": [
                {
                    "slot": x.slot.label,
                    "rule": x.applies.value,
                    **({"user": x.user, "at_stage": x.at_stage} if x.user else {}),
                }
                for x in automatic
            ],
        },
        notices=[
            notice(
                s,
                s.requester,
                "auto_approved",
                stage=stage.name,
                rule=automatic[0].applies.value,
                **({"at_stage": automatic[0].at_stage} if automatic[0].at_stage else {}),
            )
        ],
    )
    if not stage_complete(stage):
        return s
    return (yield from complete_stage(ctx, s, stage, data))


def complete_stage(
    ctx: Context, s: RequestState, stage: StageState, data: dict[str, Any]
) -> Step[RequestState]:
    """``stage`` is approved: on to the next stage, or, when it was decided again after a
    send-back under ``jump_back``, straight back to the stage that sent it back (whether
    its people approved it or the policy did, e.g. a step nobody is named for)."""
    s = with_stage(s, put(stage, status=StageStatus.APPROVED))
    following = stage.index + 1
    if s.return_to:
        following = s.return_to[-1]
        s = put(s, return_to=s.return_to[:-1])
        data = {**data, "jumps_back_to": s.stages[following].key}
    s = yield from record(ctx, s, EventKind.STAGE_COMPLETED, SYSTEM, None, data)
    return (yield from advance(ctx, s, following))


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
    # The decision's own event names the files attached to it (ids and hashes only) and
    # says whether it was made in bulk; what follows from it does not.
    decided = {**data, **discussion.attached(msg.attachments)}
    if msg.bulk:
        decided = {**decided, "bulk": True}
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
            decided,
            on_behalf_of=on_behalf,
            operator=operator,
        )
        # Slots added to wait for this approval (加签) open now; none on other stages.
        s = yield from additions.open_turns(ctx, s)
        stage = active_stage(s)
        assert stage is not None
        if not stage_complete(stage):
            return s
        return (yield from complete_stage(ctx, s, stage, data))
    if msg.action == "reject":
        s = close(ctx, with_stage(s, put(stage, status=StageStatus.REJECTED)), Status.REJECTED)
        return (
            yield from record(
                ctx,
                s,
                EventKind.REJECTED,
                msg.actor,
                msg.comment,
                decided,
                notices=[notice(s, s.requester, msg.action)],
                on_behalf_of=on_behalf,
                operator=operator,
            )
        )
    s = put(
        with_stage(s, put(stage, status=StageStatus.RETURNED)),
        status=Status.RETURNED,
        return_to=(),  # a plain return: the resubmission runs the route from its start
    )
    s, resubmit_due = yield from due(s, "resubmit", now, ctx.policy.timers.resubmit)
    s = put(s, resubmit_due=resubmit_due)
    return (
        yield from record(
            ctx,
            s,
            EventKind.RETURNED,
            msg.actor,
            msg.comment,
            {**decided, "resubmit_due": resubmit_due.isoformat()},
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
    same_route = [st.key for st in s.stages] == [st.key for st in route.stages]
    # Sent back to the requester under jump_back: straight back to the stage that sent
    # it, the approvals before it standing, unless the resubmission changed the route.
    jump_to = s.return_to[-1] if s.return_to and same_route else None
    if jump_to is not None:
        stages, return_to = s.stages, s.return_to[:-1]
    else:
        old = s.stages
        if s.return_to:
            old = tuple(supersede(st, ctx.now(), msg.actor, s.seq + 1) for st in old)
        stages, return_to = carry_superseded(old, stages_of(route)), ()
    s = put(
        s,
        amount=amount,
        fields=fields,
        stages=stages,
        return_to=return_to,
        status=Status.IN_REVIEW,
        resubmit_due=None,
        overdue=False,
        stage_index=None,
        resolve_fired=False,
    )
    s, resolve_due = yield from due(s, "resolve", ctx.now(), ctx.policy.timers.resolve)
    data: dict[str, Any] = {"changed": sorted(changed), "stages": [st.key for st in route.stages]}
    if jump_to is not None:
        data["jumps_back_to"] = s.stages[jump_to].key
    s = yield from record(
        ctx,
        put(s, resolve_due=resolve_due),
        EventKind.RESUBMITTED,
        msg.actor,
        msg.comment,
        data,
        operator=operator,
    )
    return (yield from advance(ctx, s, jump_to if jump_to is not None else 0))


# ------------------------------------------------------------- sending back


def send_back(
    ctx: Context, s: RequestState, msg: SendBackInput, operator: str | None
) -> Step[RequestState]:
    """Send the request back to a stage it has passed, or to its requester (退回).

    The stages that decide again keep their decisions as superseded: under ``rerun``
    every stage from the one sent back to up to this one, under ``jump_back`` that
    stage and this one (the ones between stand, and the route comes straight back
    here). A stage sent back to is resolved again (its people as the directory has
    them today) in a new round, with a new reply deadline; the resolve deadline runs
    on. Sent to the requester, the request is returned: they resubmit, or it expires.
    """
    stage = active_stage(s)
    assert stage is not None  # admitted
    target = admission.send_back_target(s, msg)
    now = ctx.now()
    resume = ctx.policy.send_back.resume
    jump = resume is SendBackResume.JUMP_BACK
    seq = s.seq + 1  # the sent_back event's
    first = 0 if target is None else target
    again = sorted({first, stage.index}) if jump else list(range(first, stage.index + 1))
    if jump and target is None:
        again = [stage.index]
    stages = list(s.stages)
    for i in again:
        stages[i] = supersede(stages[i], now, msg.actor, seq)
    to = stages[target] if target is not None else None
    s = put(
        s,
        stages=tuple(stages),
        sent_back=SentBack(
            by=msg.actor,
            at=now,
            event_seq=seq,
            from_stage=stage.index,
            from_key=stage.key,
            to_stage=target,
            to_key=to.key if to is not None else None,
            resume=resume,
        ),
        return_to=(*s.return_to, stage.index) if jump else s.return_to,
    )
    data: dict[str, Any] = {
        "stage": stage.key,
        "stage_name": stage.name,
        "from_stage": stage.key,
        "to_stage": to.key if to is not None else SEND_BACK_TO_REQUESTER,
        "to_stage_name": to.name if to is not None else None,
        "resume": resume.value,
        "decide_again": [stages[i].key for i in again],
    }
    on_behalf = _on_behalf(stage, msg.actor)
    if to is None:
        s = with_stage(s, put(s.stages[stage.index], status=StageStatus.RETURNED))
        s, resubmit_due = yield from due(
            put(s, status=Status.RETURNED), "resubmit", now, ctx.policy.timers.resubmit
        )
        s = put(s, resubmit_due=resubmit_due)
        return (
            yield from record(
                ctx,
                s,
                EventKind.SENT_BACK,
                msg.actor,
                msg.comment,
                {**data, "resubmit_due": resubmit_due.isoformat()},
                notices=[
                    notice(s, s.requester, "return", **due_facts(s, "resubmit", resubmit_due))
                ],
                on_behalf_of=on_behalf,
                operator=operator,
            )
        )
    s = yield from record(
        ctx,
        s,
        EventKind.SENT_BACK,
        msg.actor,
        msg.comment,
        data,
        on_behalf_of=on_behalf,
        operator=operator,
    )
    assert s.seq == seq
    return (yield from advance(ctx, s, to.index, "sent_back", from_stage=stage.name))


def _on_behalf(stage: StageState, actor: str) -> str | None:
    """Whom ``actor`` acts for on the stage's open slots (a delegate's principal)."""
    return next(
        (
            a.on_behalf_of
            for slot in stage.slots
            if slot.decision is None
            for a in slot.actors
            if a.user == actor
        ),
        None,
    )


def supersede(stage: StageState, at: datetime, by: str, seq: int) -> StageState:
    """``stage`` to be decided again: not started, its decisions kept as superseded."""
    gone = tuple(
        SupersededDecision(
            label=slot.label,
            decision=slot.decision,
            decided_by=slot.decided_by or "",
            decided_at=slot.decided_at,
            superseded_at=at,
            superseded_by=by,
            event_seq=seq,
        )
        for slot in stage.slots
        if slot.decision is not None
    )
    return put(
        stage,
        status=StageStatus.PENDING,
        slots=(),
        started_at=None,
        reply_due=None,
        escalations=0,
        superseded=(*stage.superseded, *gone),
    )


def carry_superseded(
    old: tuple[StageState, ...], new: tuple[StageState, ...]
) -> tuple[StageState, ...]:
    """The stages of a route resolved again, each keeping the superseded decisions its
    key had (none for a request never sent back: the route as resolved)."""
    kept = {st.key: st.superseded for st in old if st.superseded}
    return tuple(put(st, superseded=kept[st.key]) if st.key in kept else st for st in new)


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
