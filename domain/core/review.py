"""The review: stages opened, decided, transferred, returned, escalated and handed over.

Each function is a step of :class:`~domain.core.machine.Process`: it changes the
state and yields the effects (transitions to write, look-ups to make) in the
order the workflow carries them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    MilestoneInput,
    ResubmitInput,
    Slot,
    StageState,
    StageStatus,
    Status,
    TransferInput,
    WithdrawInput,
    stages_of,
)
from domain.requests import condition_values

from . import admission, aftercare, escalation
from .effects import Patched, Step
from .queries import active_stage, current_approvers, stage_complete

if TYPE_CHECKING:
    from .machine import Message, Process

TOP_STEPS_IN = "top-authority-steps-in"
"""Change: at the resolve timeout the top authority steps in on a slot with no one left
above its holders. Requests that met that dead end before it replay as they were."""


def submit(p: Process) -> Step[None]:
    v = p.view
    if p.policy.watch is None:
        v.resolve_due = yield from p.due("resolve", p.now(), p.policy.timers.resolve)
    yield from p.record(
        EventKind.SUBMITTED,
        v.requester,
        v.comment,
        {
            "policy": f"{v.policy_type} v{v.policy_version}",
            "route": [{"stage": s.key, "reason": s.reason} for s in v.stages],
        },
    )
    yield from copy_in(p)
    if p.policy.watch is not None:
        yield from aftercare.start_watch(p)
        return
    yield from advance(p, 0)


def copy_in(p: Process) -> Step[None]:
    """CC (抄送): people told at submission and of the outcome, deciding nothing."""
    values = condition_values(p.view.amount, p.view.fields)
    specs = tuple(c.who for c in p.policy.cc if c.when is None or evaluate(c.when, values))
    if not specs:
        return
    p.view.cc = yield from p.people("copied", specs)
    yield from p.record(
        EventKind.CC,
        SYSTEM,
        None,
        {"people": p.view.cc},
        notices=[p.notice(u, "cc_submitted") for u in p.view.cc],
    )


def apply(p: Process, msg: Message) -> Step[None]:
    """Apply an admitted message."""
    if isinstance(msg, DecideInput):
        yield from decide(p, msg)
    elif isinstance(msg, TransferInput):
        yield from transfer(p, msg)
    elif isinstance(msg, ResubmitInput):
        yield from resubmit(p, msg)
    elif isinstance(msg, WithdrawInput):
        yield from withdraw(p, msg)
    elif isinstance(msg, MilestoneInput):
        yield from aftercare.record_milestone(p, msg)


def advance(p: Process, index: int) -> Step[None]:
    """Activate stage ``index``, or approve when the route is done."""
    v = p.view
    if index >= len(v.stages):
        yield from aftercare.approve(p)
        return
    stage = v.stages[index]
    now = p.now()
    stage.slots = yield from p.resolve_slots(
        stage.key, stage.mode, stage.approvers, f"who decides: {stage.name}"
    )
    for slot in stage.slots:
        slot.escalation_frontier = [a.user for a in slot.actors]
    stage.status = StageStatus.ACTIVE
    stage.started_at = now
    stage.reply_due = yield from p.due("reply", now, p.policy.timers.reply)
    v.stage_index = index
    v.status = Status.IN_REVIEW
    people = sorted({a.user for s in stage.slots for a in s.actors})
    reply = p.due_facts("reply", stage.reply_due)
    yield from p.record(
        EventKind.ASSIGNED,
        SYSTEM,
        None,
        {
            "stage": stage.key,
            "stage_name": stage.name,
            "reason": stage.reason,
            "people": people,
            "unassigned": [s.label for s in stage.slots if not s.actors],
        },
        notices=[p.notice(u, "assigned", stage=stage.name, **reply) for u in people],
    )


def decide(p: Process, msg: DecideInput) -> Step[None]:
    stage = active_stage(p.view)
    assert stage is not None  # admitted
    now = p.now()
    mine = [s for s in stage.slots if s.decision is None and s.may_act(msg.actor)]
    on_behalf = next((a.on_behalf_of for s in mine for a in s.actors if a.user == msg.actor), None)
    data: dict[str, Any] = {"stage": stage.key, "stage_name": stage.name}
    if msg.action == "approve":
        for slot in mine:
            slot.decision = "approve"
            slot.decided_by = msg.actor
            slot.decided_at = now
        yield from p.record(
            EventKind.APPROVED, msg.actor, msg.comment, data, on_behalf_of=on_behalf
        )
        if stage_complete(stage):
            stage.status = StageStatus.APPROVED
            yield from p.record(EventKind.STAGE_COMPLETED, SYSTEM, None, data)
            yield from advance(p, stage.index + 1)
        return
    if msg.action == "reject":
        requester_notice = [p.notice(p.view.requester, msg.action)]
        stage.status = StageStatus.REJECTED
        p.close(Status.REJECTED)
        yield from p.record(
            EventKind.REJECTED,
            msg.actor,
            msg.comment,
            data,
            notices=requester_notice,
            on_behalf_of=on_behalf,
        )
        return
    stage.status = StageStatus.RETURNED
    p.view.status = Status.RETURNED
    p.view.resubmit_due = yield from p.due("resubmit", now, p.policy.timers.resubmit)
    requester_notice = [
        p.notice(p.view.requester, msg.action, **p.due_facts("resubmit", p.view.resubmit_due))
    ]
    yield from p.record(
        EventKind.RETURNED,
        msg.actor,
        msg.comment,
        {**data, "resubmit_due": p.view.resubmit_due.isoformat()},
        notices=requester_notice,
        on_behalf_of=on_behalf,
    )


def transfer(p: Process, msg: TransferInput) -> Step[None]:
    stage = active_stage(p.view)
    assert stage is not None  # admitted
    now = p.now()
    for slot in stage.slots:
        if slot.decision is not None or not slot.may_act(msg.actor):
            continue
        kept = [a for a in slot.actors if a.user != msg.actor]
        giver = next(a for a in slot.actors if a.user == msg.actor)
        if not any(a.user == msg.to_user for a in kept):
            kept.append(
                Actor(
                    user=msg.to_user,
                    via="transfer",
                    on_behalf_of=giver.on_behalf_of or msg.actor,
                    since=now,
                )
            )
        slot.actors = kept
        slot.escalation_frontier = [msg.to_user]
    yield from p.record(
        EventKind.TRANSFERRED,
        msg.actor,
        msg.comment,
        {"stage": stage.key, "to_user": msg.to_user},
        notices=[p.notice(msg.to_user, "transferred", stage=stage.name)],
    )


def withdraw(p: Process, msg: WithdrawInput) -> Step[None]:
    stage = active_stage(p.view)
    notices = [p.notice(u, "withdrawn") for u in current_approvers(p.view)]
    if stage is not None:
        stage.status = StageStatus.CLOSED
    p.close(Status.WITHDRAWN)
    yield from p.record(EventKind.WITHDRAWN, msg.actor, msg.comment, notices=notices)


def resubmit(p: Process, msg: ResubmitInput) -> Step[None]:
    amount, fields, route = admission.resubmitted(p.view, p.policy, msg)
    v = p.view
    changed = {
        k: True
        for k, old, new in (("amount", v.amount, amount), ("fields", v.fields, fields))
        if old != new
    }
    v.amount, v.fields = amount, fields
    v.stages = stages_of(route)
    v.status = Status.IN_REVIEW
    v.resubmit_due = None
    v.overdue = False
    v.stage_index = None
    v.resolve_due = yield from p.due("resolve", p.now(), p.policy.timers.resolve)
    p.resolve_fired = False
    yield from p.record(
        EventKind.RESUBMITTED,
        msg.actor,
        msg.comment,
        {"changed": sorted(changed), "stages": [s.key for s in route.stages]},
    )
    yield from advance(p, 0)


def reassign_departed(p: Process) -> Step[None]:
    """Take people who left the directory off the active step; their managers step in."""
    v = p.view
    stage = active_stage(v)
    if stage is None or v.status != Status.IN_REVIEW:
        return
    waiting = [s for s in stage.slots if s.decision is None]
    holders = sorted({a.user for s in waiting for a in s.actors})
    if not holders:
        return
    found = yield from p.look_up(
        Activities.INACTIVE_USERS,
        InactiveUsersInput(users=holders),
        InactiveUsersOutput,
        f"who has left: {stage.name}",
    )
    gone = set(found.inactive)
    if not gone:
        return
    up = yield from p.look_up(
        Activities.RESOLVE_ESCALATION,
        EscalationInput(
            request_id=v.id,
            requester=v.requester,
            users=sorted(gone),
            escalation_role=p.policy.timers.escalation_role,
            at=p.now(),
        ),
        EscalationOutput,
        f"who steps in: {stage.name}",
    )
    added = escalation.hand_over(waiting, gone, up.next_up, v.requester, p.now())
    yield from p.record(
        EventKind.REASSIGNED,
        SYSTEM,
        None,
        {
            "stage": stage.key,
            "removed": sorted(gone & set(holders)),
            "added": sorted(added),
            "unassigned": [s.label for s in waiting if not s.actors],
            "reason": "left the directory",
        },
        notices=[p.notice(u, "assigned", stage=stage.name) for u in sorted(added)],
    )


# ------------------------------------------------------------------ deadlines


def on_reply_due(p: Process) -> Step[None]:
    """Nobody acted in time: remind the assignees, then escalate one level up."""
    stage = active_stage(p.view)
    assert stage is not None
    now = p.now()
    waiting = [s for s in stage.slots if s.decision is None]
    reminded = sorted({a.user for s in waiting for a in s.actors})
    yield from p.record(
        EventKind.REMINDED,
        SYSTEM,
        None,
        {"stage": stage.key, "people": reminded},
        notices=[
            p.notice(u, "reminder", stage=stage.name, **p.due_facts("reply", stage.reply_due))
            for u in reminded
        ],
    )
    frontier = sorted({u for s in waiting for u in s.escalation_frontier})
    added = yield from escalate(p, stage, waiting, frontier, reason="reply timeout")
    stage.escalations += 1
    if not added or stage.escalations >= p.policy.timers.max_escalations:
        stage.reply_due = None  # the top of the chain: nobody further to escalate to
    else:
        stage.reply_due = yield from p.due("reply", now, p.policy.timers.reply)


def escalate(
    p: Process, stage: StageState, waiting: list[Slot], frontier: list[str], reason: str
) -> Step[list[str]]:
    """Make the next person up from ``frontier`` eligible on ``waiting`` slots."""
    if not frontier:
        return []
    out = yield from p.look_up(
        Activities.RESOLVE_ESCALATION,
        EscalationInput(
            request_id=p.view.id,
            requester=p.view.requester,
            users=frontier,
            escalation_role=p.policy.timers.escalation_role,
            at=p.now(),
        ),
        EscalationOutput,
        f"who is next up: {stage.name}",
    )
    return (
        yield from add_escalated(
            p, stage, waiting, {u: out.next_up.get(u, []) for u in frontier}, reason
        )
    )


def add_escalated(
    p: Process,
    stage: StageState,
    waiting: list[Slot],
    next_up: dict[str, list[str]],
    reason: str,
) -> Step[list[str]]:
    people = escalation.escalate(waiting, next_up, p.view.requester, p.now())
    if people:
        yield from p.record(
            EventKind.ESCALATED,
            SYSTEM,
            None,
            {"stage": stage.key, "to": people, "reason": reason},
            notices=[p.notice(u, "escalated", stage=stage.name) for u in people],
        )
    return people


def on_resolve_due(p: Process) -> Step[None]:
    """No final decision in time: mark overdue, tell the top, apply the policy's action."""
    p.resolve_fired = True
    v = p.view
    v.overdue = True
    top = yield from top_authority(p)
    yield from p.record(
        EventKind.OVERDUE,
        SYSTEM,
        None,
        {"action": p.policy.timers.resolve_action.value, "top_authority": top},
        notices=[p.notice(u, "overdue") for u in sorted({v.requester, *top})],
    )
    stage = active_stage(v)
    if stage is None:
        return
    if p.policy.timers.resolve_action is ResolveAction.AUTO_REJECT:
        stage.status = StageStatus.REJECTED
        p.close(Status.REJECTED)
        yield from p.record(
            EventKind.REJECTED,
            SYSTEM,
            "rejected automatically: no decision in time",
            {"stage": stage.key, "automatic": True},
            notices=[p.notice(v.requester, "reject")],
        )
        return
    waiting = [s for s in stage.slots if s.decision is None]
    fresh = [u for u in top if not any(s.may_act(u) for s in waiting)]
    if fresh:
        sources = {u for s in waiting for u in s.escalation_frontier}
        # A slot whose holders and everyone above them left has no frontier: the top
        # authority steps in there all the same, or nobody could ever decide it.
        if not sources and (yield Patched(TOP_STEPS_IN)):
            sources = {v.requester}
        yield from add_escalated(
            p, stage, waiting, {u: fresh for u in sorted(sources)}, reason="resolve timeout"
        )
    else:
        frontier = sorted({u for s in waiting for u in s.escalation_frontier})
        yield from escalate(p, stage, waiting, frontier, reason="resolve timeout")


def top_authority(p: Process) -> Step[list[str]]:
    """The people of the route's last stage, as the directory has them today."""
    v = p.view
    if not v.stages:
        return []
    last = v.stages[-1]
    if last.slots:
        return sorted({a.user for s in last.slots for a in s.actors})
    slots = yield from p.resolve_slots(
        last.key, last.mode, last.approvers, "who is the top authority"
    )
    return sorted({a.user for s in slots for a in s.actors})


def on_resubmit_due(p: Process) -> Step[None]:
    p.close(Status.EXPIRED)
    yield from p.record(
        EventKind.EXPIRED,
        SYSTEM,
        "not resubmitted in time",
        notices=[p.notice(p.view.requester, "expired")],
    )
