"""Who becomes eligible when a step is escalated or its holder leaves."""

from __future__ import annotations

from datetime import datetime

from domain.process import Actor, Slot


def escalate(
    waiting: list[Slot], next_up: dict[str, list[str]], requester: str, now: datetime
) -> list[str]:
    """Make the people one level up from each slot's frontier eligible on it.

    ``next_up`` maps a user to the people above them. The requester never
    becomes eligible. Each slot's frontier moves up to the people found, so the
    next escalation starts from there. Returns who was added, sorted.
    """
    added: set[str] = set()
    for slot in waiting:
        new_frontier: list[str] = []
        for user in slot.escalation_frontier or list(next_up):
            for boss in next_up.get(user, []):
                if boss == requester:
                    continue
                if not slot.may_act(boss):
                    slot.actors.append(Actor(user=boss, via="escalation", since=now))
                    added.add(boss)
                if boss not in new_frontier:
                    new_frontier.append(boss)
        if new_frontier:
            slot.escalation_frontier = new_frontier
    return sorted(added)


def hand_over(
    waiting: list[Slot],
    gone: set[str],
    next_up: dict[str, list[str]],
    requester: str,
    now: datetime,
) -> list[str]:
    """Take ``gone`` off the slots and make the people above them eligible instead.

    Returns who was added, sorted. A slot whose holders all left and who have
    nobody above stays without actors (the caller records it as unassigned).
    """
    added: set[str] = set()
    for slot in waiting:
        left = [a for a in slot.actors if a.user in gone]
        if not left:
            continue
        slot.actors = [a for a in slot.actors if a.user not in gone]
        frontier = [u for u in slot.escalation_frontier if u not in gone]
        for actor in left:
            for boss in next_up.get(actor.user, []):
                if boss == requester or boss in gone:
                    continue
                if not slot.may_act(boss):
                    slot.actors.append(Actor(user=boss, via="reassignment", since=now))
                    added.add(boss)
                if boss not in frontier:
                    frontier.append(boss)
        slot.escalation_frontier = frontier
    return sorted(added)
