"""Who becomes eligible when a step is escalated or its holder leaves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.process import Actor, Slot, Via


def escalate(
    waiting: Sequence[Slot], next_up: dict[str, list[str]], requester: str, now: datetime
) -> tuple[list[Slot], list[str]]:
    """Make the people one level up from each slot's frontier eligible on it.

    ``next_up`` maps a user to the people above them. The requester never
    becomes eligible. Each slot's frontier moves up to the people found, so the
    next escalation starts from there. Returns the slots as they become, in the
    order given, and who was added, sorted.
    """
    added: set[str] = set()
    slots: list[Slot] = []
    for slot in waiting:
        actors = list(slot.actors)
        new_frontier: list[str] = []
        for user in slot.escalation_frontier or list(next_up):
            for boss in next_up.get(user, []):
                if boss == requester:
                    continue
                if not any(a.user == boss for a in actors):
                    actors.append(Actor(user=boss, via=Via.ESCALATION, since=now))
                    added.add(boss)
                if boss not in new_frontier:
                    new_frontier.append(boss)
        frontier = tuple(new_frontier) if new_frontier else slot.escalation_frontier
        slots.append(
            slot.model_copy(update={"actors": tuple(actors), "escalation_frontier": frontier})
        )
    return slots, sorted(added)


def hand_over(
    waiting: Sequence[Slot],
    gone: set[str],
    next_up: dict[str, list[str]],
    requester: str,
    now: datetime,
) -> tuple[list[Slot], list[str]]:
    """Take ``gone`` off the slots and make the people above them eligible instead.

    Returns the slots as they become, in the order given, and who was added,
    sorted. A slot whose holders all left and who have nobody above stays without
    actors (the caller records it as unassigned).
    """
    added: set[str] = set()
    slots: list[Slot] = []
    for slot in waiting:
        left = [a for a in slot.actors if a.user in gone]
        if not left:
            slots.append(slot)
            continue
        actors = [a for a in slot.actors if a.user not in gone]
        frontier = [u for u in slot.escalation_frontier if u not in gone]
        for actor in left:
            for boss in next_up.get(actor.user, []):
                if boss == requester or boss in gone:
                    continue
                if not any(a.user == boss for a in actors):
                    actors.append(Actor(user=boss, via=Via.REASSIGNMENT, since=now))
                    added.add(boss)
                if boss not in frontier:
                    frontier.append(boss)
        slots.append(
            slot.model_copy(
                update={"actors": tuple(actors), "escalation_frontier": tuple(frontier)}
            )
        )
    return slots, sorted(added)
