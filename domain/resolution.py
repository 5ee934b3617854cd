"""Who decides a step: the policy's ``resolution`` rules over what the directory named.

Pure: the directory's answer (:class:`~domain.process.ResolveDetail`) comes in, the
slots the step waits on come out, each with how it was settled. The same function
serves the process (a step becoming active), the submission (``empty_slot: refuse``)
and the route preview, so the three never disagree. Under a policy without
``resolution`` options it settles a step exactly as ``db.directory.resolve_slots``
always has (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import DomainError, ErrorCode
from domain.policy import EmptySlot, RepeatedApprover, RequesterApprover, Resolution
from domain.process import SYSTEM, Actor, ResolveDetail, Slot, StageState, Via
from domain.routing import RouteStage


class Applies(StrEnum):
    """Which rule settled a slot (the preview shows it; an automatic one is recorded)."""

    NAMED = "named"
    """The people the policy names decide."""
    REQUESTER_DECIDES = "requester_decides"
    REQUESTER_SKIPPED = "requester_skipped"
    TO_MANAGER = "to_manager"
    """The requester was the only one named: their manager decides."""
    FALLBACK = "fallback"
    """Nobody named: the requester's manager, else the administrators."""
    ADMINISTRATORS = "administrators"
    FALLBACK_ROLE = "fallback_role"
    EMPTY_SKIPPED = "empty_skipped"
    REFUSED = "refused"
    """Nobody named, and the policy refuses such a submission."""
    UNASSIGNED = "unassigned"
    """Nobody at all: the step waits until the timers escalate it."""
    REPEATED = "repeated"
    """Someone on it already approved an earlier stage: approved automatically."""


AUTOMATIC = frozenset({Applies.REQUESTER_SKIPPED, Applies.EMPTY_SKIPPED, Applies.REPEATED})


@dataclass(frozen=True)
class Settled:
    slot: Slot
    applies: Applies
    because: str = ""
    """For an automatic approval: why, in words the audit and the inbox show."""
    user: str | None = None
    """For a repeated approver: who approved before."""
    at_stage: str | None = None
    """For a repeated approver: the stage they approved (its name)."""

    @property
    def automatic(self) -> bool:
        return self.applies in AUTOMATIC


def approved_before(
    stages: tuple[StageState, ...], index: int, rule: RepeatedApprover
) -> dict[str, str]:
    """Who approved a stage before ``index``, and the name of the stage.

    A repeated approver's automatic approval counts as theirs (a run of stages of one
    person goes by itself after the first); a skipped step (``system``) counts for nobody.

    ``skip``: any earlier stage (the nearest one named); ``skip_adjacent``: the stage
    just before only; ``decide_again``: nobody.
    """
    if rule is RepeatedApprover.DECIDE_AGAIN or index == 0:
        return {}
    earlier = stages[:index] if rule is RepeatedApprover.SKIP else stages[index - 1 : index]
    found: dict[str, str] = {}
    for stage in earlier:
        for slot in stage.slots:
            if slot.decision == "approve" and slot.decided_by not in (None, SYSTEM):
                assert slot.decided_by is not None
                found[slot.decided_by] = stage.name
    return found


def settle(
    detail: ResolveDetail,
    requester: str,
    rules: Resolution,
    at: datetime,
    *,
    approved: Mapping[str, str] | None = None,
    submitting: bool = False,
) -> list[Settled]:
    """Each slot of a step with the people who decide it, or approved automatically.

    Args:
        detail: what the directory named for the step, and its fallbacks.
        requester: the request's requester.
        rules: the policy's ``resolution`` options.
        at: when the step resolves (the ``since`` of people it adds).
        approved: who approved an earlier stage, and which (:func:`approved_before`).
        submitting: at submission, an empty slot under ``empty_slot: refuse`` is
            :attr:`Applies.REFUSED`; later it falls back as ``fallback`` does.
    """
    return [
        _repeated(_one(named, detail, requester, rules, at, submitting), approved or {}, at)
        for named in detail.named
    ]


def _one(
    named: Slot,
    detail: ResolveDetail,
    requester: str,
    rules: Resolution,
    at: datetime,
    submitting: bool,
) -> Settled:
    def fallback(users: list[str]) -> tuple[Actor, ...]:
        return tuple(
            Actor(user=u, via=Via.FALLBACK, since=at) for u in sorted(set(users) - {requester})
        )

    actors = tuple(sorted(named.actors, key=lambda a: a.user))
    others = tuple(a for a in actors if a.user != requester)
    if len(others) < len(actors):  # the requester is named
        if rules.requester_approver is RequesterApprover.SKIP:
            return _automatic(
                named,
                at,
                Applies.REQUESTER_SKIPPED,
                "approved automatically: the requester is an approver of this step",
            )
        if rules.requester_approver is RequesterApprover.SELF:
            return Settled(put_actors(named, actors), Applies.REQUESTER_DECIDES)
        if not others and detail.manager not in (None, requester):
            assert detail.manager is not None
            return Settled(put_actors(named, fallback([detail.manager])), Applies.TO_MANAGER)
    if others:
        return Settled(put_actors(named, others), Applies.NAMED)
    rule = rules.empty_slot
    if rule is EmptySlot.SKIP:
        return _automatic(
            named,
            at,
            Applies.EMPTY_SKIPPED,
            "approved automatically: nobody is named for this step",
        )
    if rule is EmptySlot.REFUSE and submitting:
        return Settled(put_actors(named, ()), Applies.REFUSED)
    candidates: list[tuple[Applies, list[str]]] = []
    if rule is EmptySlot.ROLE:
        candidates.append((Applies.FALLBACK_ROLE, detail.role_holders))
    if rule in (EmptySlot.FALLBACK, EmptySlot.REFUSE):
        candidates.append((Applies.FALLBACK, [detail.manager] if detail.manager else []))
        candidates.append((Applies.FALLBACK, detail.admins))
    else:
        candidates.append((Applies.ADMINISTRATORS, detail.admins))
    for applies, users in candidates:
        people = fallback(users)
        if people:
            return Settled(put_actors(named, people), applies)
    return Settled(put_actors(named, ()), Applies.UNASSIGNED)


def _repeated(settled: Settled, approved: Mapping[str, str], at: datetime) -> Settled:
    if settled.automatic or not approved:
        return settled
    before = [a.user for a in settled.slot.actors if a.user in approved]
    if not before:
        return settled
    user = before[0]
    stage = approved[user]
    return Settled(
        put(
            settled.slot,
            decision="approve",
            decided_by=user,
            decided_at=at,
            automatic=_why(stage),
        ),
        Applies.REPEATED,
        _why(stage),
        user=user,
        at_stage=stage,
    )


def _why(stage: str) -> str:
    return f"approved automatically: already approved at stage {stage}"


def _automatic(named: Slot, at: datetime, applies: Applies, because: str) -> Settled:
    slot = put(
        named, actors=(), decision="approve", decided_by=SYSTEM, decided_at=at, automatic=because
    )
    return Settled(slot, applies, because)


def put_actors(slot: Slot, actors: tuple[Actor, ...]) -> Slot:
    return put(slot, actors=actors)


def put(slot: Slot, **changes: object) -> Slot:
    return slot.model_copy(update=changes)


def refuse_empty_steps(
    stages: list[tuple[RouteStage, ResolveDetail]],
    requester: str,
    rules: Resolution,
    at: datetime,
) -> None:
    """Under ``empty_slot: refuse``, refuse a submission whose route has a step nobody
    is named for (after the requester rule), naming the first and listing them all.

    Raises:
        DomainError: NO_APPROVER (422) with ``stage``, ``slot`` and ``steps``.
    """
    if rules.empty_slot is not EmptySlot.REFUSE:
        return
    empty = [
        {"stage": stage.key, "stage_name": stage.name, "slot": x.slot.label}
        for stage, detail in stages
        for x in settle(detail, requester, rules, at, submitting=True)
        if x.applies is Applies.REFUSED
    ]
    if empty:
        first = empty[0]
        raise DomainError(
            ErrorCode.NO_APPROVER,
            f"nobody can decide the step {first['stage_name']!r} ({first['slot']}): "
            "this request type refuses a request with such a step",
            {"stage": first["stage"], "slot": first["slot"], "steps": empty},
        )
