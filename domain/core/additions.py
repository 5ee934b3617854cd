"""People added while a request runs: approvers added to a stage (加签), people copied in (抄送).

Added approvers are slots of their own on the active stage (or, alongside in
``any`` mode, actors on the adder's own slot). A slot that must wait for others
keeps its people :attr:`~domain.process.Slot.queued` and the positions it waits
for; nobody acts on it, is reminded or escalated from it until those are approved,
when :func:`open_turns` makes its people eligible (a new round, a fresh reply timer).
Stages without additions have no such slot, so every rule behaves there as before.
"""

from __future__ import annotations

from domain.constants import Activities
from domain.errors import DomainError, ErrorCode
from domain.policy import AddMode, AddPosition
from domain.process import (
    SYSTEM,
    Actor,
    AddableInput,
    AddableOutput,
    AddApproversInput,
    CcInput,
    EventKind,
    InactiveUsersInput,
    InactiveUsersOutput,
    RequestState,
    Slot,
    StageState,
    Via,
)

from .admission import add_rule
from .effects import Step
from .queries import active_stage
from .steps import Context, Refused, due, due_facts, look_up, notice, put, record, with_stage


def add_approvers(
    ctx: Context, s: RequestState, msg: AddApproversInput, operator: str | None
) -> Step[Refused]:
    """加签: the directory says the people may be added, then the stage takes them in."""
    stage = active_stage(s)
    assert stage is not None  # admitted
    people = list(dict.fromkeys(msg.people))
    found = yield from look_up(
        Activities.ADDABLE_PEOPLE,
        AddableInput(adder=msg.actor, users=people, within=add_rule(ctx.policy, stage.key).within),
        AddableOutput,
        f"who may be added: {stage.name}",
    )
    if found.refused:
        why = "; ".join(f"{u}: {r}" for u, r in sorted(found.refused.items()))
        return s, DomainError(
            ErrorCode.VALIDATION,
            f"cannot add {why}",
            {"field": "people", "refused": dict(sorted(found.refused.items()))},
        )
    now = ctx.now()
    mine = [
        i for i, slot in enumerate(stage.slots) if slot.decision is None and slot.may_act(msg.actor)
    ]
    adder = next(a for i in mine for a in stage.slots[i].actors if a.user == msg.actor)
    added = [Actor(user=u, via=Via.ADDED, since=now) for u in people]
    slots = list(stage.slots)
    first_new = len(slots)

    def new_slots(open_first: bool, waits: tuple[int, ...]) -> None:
        """Append the added people's slots: one for ``any``, one each otherwise."""
        groups = [added] if msg.mode is AddMode.ANY else [[a] for a in added]
        for k, group in enumerate(groups):
            label = f"added by {msg.actor}: {', '.join(a.user for a in group)}"
            in_turn = msg.mode is AddMode.IN_TURN and k > 0
            opens_now = open_first and not in_turn
            slots.append(
                Slot(
                    label=label,
                    actors=tuple(group) if opens_now else (),
                    queued=() if opens_now else tuple(group),
                    waits_for=(len(slots) - 1,) if in_turn else (() if opens_now else waits),
                    escalation_frontier=tuple(a.user for a in group) if opens_now else (),
                    added_by=msg.actor,
                    added_as=msg.position,
                )
            )

    if msg.position is AddPosition.ALONGSIDE and msg.mode is AddMode.ANY:
        # They join the adder's own step: any of them (or the adder) decides it.
        joined = tuple(
            Actor(
                user=a.user, via=Via.ADDED, on_behalf_of=adder.on_behalf_of or msg.actor, since=now
            )
            for a in added
        )
        for i in mine:
            slots[i] = put(
                slots[i],
                actors=(*slots[i].actors, *joined),
                escalation_frontier=(*slots[i].escalation_frontier, *people),
            )
    elif msg.position is AddPosition.ALONGSIDE:
        new_slots(open_first=True, waits=())
    elif msg.position is AddPosition.BEFORE:
        new_slots(open_first=True, waits=())
        last = len(slots) - 1
        waits = (last,) if msg.mode is AddMode.IN_TURN else tuple(range(first_new, len(slots)))
        for i in mine:  # the adder's step waits until those added approved
            slots[i] = put(
                slots[i],
                actors=(),
                queued=slots[i].actors,
                waits_for=waits,
                escalation_frontier=(),
            )
    else:  # after: those added follow once the adder approved
        new_slots(open_first=False, waits=tuple(mine))
    stage = put(stage, slots=tuple(slots))
    s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    stage = put(stage, reply_due=reply_due)
    s = with_stage(s, stage)
    eligible = [a.user for slot in stage.slots[first_new:] for a in slot.actors]
    if msg.position is AddPosition.ALONGSIDE and msg.mode is AddMode.ANY:
        eligible = people
    reply = due_facts(s, "reply", reply_due)
    s = yield from record(
        ctx,
        s,
        EventKind.APPROVERS_ADDED,
        msg.actor,
        msg.comment,
        {
            "stage": stage.key,
            "stage_name": stage.name,
            "people": people,
            "position": msg.position.value,
            "mode": msg.mode.value,
        },
        notices=[
            notice(
                s,
                u,
                "approver_added",
                stage=stage.name,
                by=msg.actor,
                now=u in eligible,
                **(reply if u in eligible else {}),
            )
            for u in people
        ],
        on_behalf_of=adder.on_behalf_of,
        operator=operator,
    )
    return s, None


def open_turns(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Open the active stage's held slots whose turn has come (all they wait for approved)."""
    stage = active_stage(s)
    if stage is None:
        return s
    now = ctx.now()
    opened: dict[int, Slot] = {}
    for i, slot in enumerate(stage.slots):
        if slot.decision is None and slot.queued and _turn_came(stage, slot):
            turn = tuple(put(a, since=now) for a in slot.queued)
            opened[i] = put(
                slot,
                actors=turn,
                queued=(),
                waits_for=(),
                escalation_frontier=tuple(a.user for a in turn),
            )
    if not opened:
        return s
    stage = put(stage, slots=tuple(opened.get(i, slot) for i, slot in enumerate(stage.slots)))
    s, reply_due = yield from due(s, "reply", now, ctx.policy.timers.reply)
    stage = put(stage, reply_due=reply_due)
    s = with_stage(s, stage)
    people = sorted({a.user for slot in opened.values() for a in slot.actors})
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
                "reason": "their turn: the people they waited for approved",
                "people": people,
                "unassigned": [],
            },
            notices=[notice(s, u, "assigned", stage=stage.name, **reply) for u in people],
        )
    )


def _turn_came(stage: StageState, slot: Slot) -> bool:
    return all(stage.slots[j].decision == "approve" for j in slot.waits_for)


def add_cc(ctx: Context, s: RequestState, msg: CcInput, operator: str | None) -> Step[Refused]:
    """抄送: people the directory knows as active are copied in and told."""
    people = [u for u in dict.fromkeys(msg.people) if u not in s.cc]
    found = yield from look_up(
        Activities.INACTIVE_USERS,
        InactiveUsersInput(users=people),
        InactiveUsersOutput,
        "who may be copied",
    )
    if found.inactive:
        return s, DomainError(
            ErrorCode.VALIDATION,
            f"not active users: {', '.join(found.inactive)}",
            {"field": "people", "inactive": found.inactive},
        )
    stage = active_stage(s)
    holding = [
        a
        for slot in (stage.slots if stage is not None else ())
        if slot.decision is None
        for a in slot.actors
        if a.user == msg.actor
    ]
    s = put(s, cc=(*s.cc, *people))
    return (
        yield from record(
            ctx,
            s,
            EventKind.CC_ADDED,
            msg.actor,
            msg.comment,
            {"people": people},
            notices=[notice(s, u, "cc_added", by=msg.actor) for u in people],
            # An approver acting for someone (a delegate) copies in on their behalf.
            on_behalf_of=next((a.on_behalf_of for a in holding if a.on_behalf_of), None),
            operator=operator,
        )
    ), None


def addable_refusals(
    adder: str,
    users: list[str],
    within: str,
    active: set[str],
    chains: dict[str, list[str]],
) -> dict[str, str]:
    """Why each of ``users`` may not be added by ``adder`` (the ``addable_people`` look-up).

    ``chains``: the active managers above ``adder`` and each user, nearest first.
    ``reporting_line``: the adder's managers, the people under the adder, their peers.
    """
    refused: dict[str, str] = {}
    mine = chains.get(adder, [])
    for user in users:
        if user not in active:
            refused[user] = "not an active user"
            continue
        if within != "reporting_line":
            continue
        theirs = chains.get(user, [])
        peers = bool(mine) and theirs[:1] == mine[:1]
        if not (user in mine or adder in theirs or peers):
            refused[user] = f"outside the reporting line of {adder}"
    return refused
