"""A pure driver for the process (:mod:`domain.core.machine`): effects answered by plain functions.

:class:`Driver` runs a transition to its end as ``workflows/effects.py`` does, but with
no server: a ``Write`` is collected, a ``LookUp`` is answered by :class:`FakeDirectory`
(built from ``org/demo.yaml`` with the semantics of ``db/directory.py``), a
``Verify`` says yes (or the refusal the test chooses), a ``Pay`` returns a
reference. Each written record is checked as it is written: a public view
without internal fields, whose status is the process's label at that instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from db.directory import OrgFile, read_org_file
from domain import signing
from domain.constants import Activities
from domain.core import machine
from domain.core.additions import addable_refusals
from domain.core.deadlines import Deadline
from domain.core.effects import FlagStuck, LookUp, Patched, Pay, Unflag, Verify, Write
from domain.core.inputs import Handle, Input, Message
from domain.core.machine import Outcome
from domain.core.projection import view_of
from domain.core.steps import Context
from domain.delegation import Edge, covers_type
from domain.errors import DomainError
from domain.policy import ApproverSpec, Policy, StageMode
from domain.process import (
    Actor,
    AddableInput,
    AddableOutput,
    ApprovalInput,
    DelegatesInput,
    DelegatesOutput,
    EscalationInput,
    EscalationOutput,
    InactiveUsersInput,
    InactiveUsersOutput,
    PayoutOutput,
    ReadersInput,
    ReadersOutput,
    RequestState,
    RequestView,
    ResolveAssigneesInput,
    ResolveAssigneesOutput,
    ResolveDetail,
    Slot,
    SlotView,
    StageState,
    StageView,
    TransitionRecord,
    VerifyProofOutput,
)
from domain.requests import validate_fields
from domain.routing import resolve_route
from domain.working_time import BusinessCalendar, DueInput
from tests.support.paths import ROOT

ORG_FILE = ROOT / "org" / "demo.yaml"


INTERNAL_FIELDS = frozenset(
    (set(RequestState.model_fields) - set(RequestView.model_fields))
    | (set(Slot.model_fields) - set(SlotView.model_fields))
    | (set(StageState.model_fields) - set(StageView.model_fields))
)
"""Keys only the process's own state has (``awaiting``, ``escalation_frontier``, ``nonces``)."""


@dataclass
class FakeDirectory:
    """The org file as ``db/directory.py`` answers it, with a set of people who left."""

    org: OrgFile
    left: set[str] = field(default_factory=set)
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    """Working-time deadlines (the ``due_at`` look-up): weekends and the default hours."""
    delegations: list[Edge] = field(default_factory=list)
    """Delegations besides the org file's (made through the API), with their type scope."""
    strangers: set[str] = field(default_factory=set)
    """People who may read no request (the ``readers`` look-up); everyone else active may."""

    @classmethod
    def demo(cls) -> FakeDirectory:
        return cls(read_org_file(ORG_FILE))

    # --- who exists -----------------------------------------------------------

    @property
    def everyone(self) -> list[str]:
        return sorted(u.id for u in self.org.users)

    def active(self, user: str) -> bool:
        return user not in self.left and any(u.id == user for u in self.org.users)

    def users_with_role(self, role: str) -> list[str]:
        return sorted(u.id for u in self.org.users if role in u.roles and self.active(u.id))

    def admins(self) -> list[str]:
        return sorted(u.id for u in self.org.users if u.is_admin and self.active(u.id))

    def manager_chain(self, user: str) -> list[str]:
        """The active managers above ``user``, nearest first (leavers are skipped)."""
        manager_of = {u.id: u.manager for u in self.org.users}
        chain: list[str] = []
        current = manager_of.get(user)
        while current is not None:
            if self.active(current):
                chain.append(current)
            current = manager_of.get(current)
        return chain

    def delegates(self, at: datetime, request_type: str | None = None) -> dict[str, list[str]]:
        edges = [Edge(d.from_, d.to, d.starts_at, d.ends_at) for d in self.org.delegations]
        found: dict[str, list[str]] = {}
        for d in sorted([*edges, *self.delegations], key=lambda d: (d.from_, d.to)):
            if (
                d.active_at(at)
                and covers_type(d.types, request_type)
                and self.active(d.from_)
                and self.active(d.to)
                and d.to not in found.get(d.from_, [])
            ):
                found.setdefault(d.from_, []).append(d.to)
        return found

    # --- the activities -------------------------------------------------------

    def resolve_slots(
        self,
        requester: str,
        mode: StageMode,
        approvers: Sequence[ApproverSpec],
        at: datetime,
        request_type: str | None = None,
    ) -> list[Slot]:
        """``db.directory.resolve_slots``: any → one slot, all → one per spec; never the
        requester; delegates added; an empty slot falls back to the requester's manager,
        then to the administrators."""

        def actor(user: str, via: str, on_behalf_of: str | None = None) -> Actor:
            return Actor(user=user, via=via, on_behalf_of=on_behalf_of, since=at)

        def named_by(spec: ApproverSpec) -> list[Actor]:
            if spec.role is not None:
                return [actor(u, f"role:{spec.role}") for u in self.users_with_role(spec.role)]
            if spec.manager is not None:
                chain = self.manager_chain(requester)
                return (
                    [actor(chain[spec.manager - 1], "manager")]
                    if len(chain) >= spec.manager
                    else []
                )
            assert spec.user is not None
            return [actor(spec.user, "user")] if self.active(spec.user) else []

        def finish(found: Iterable[Actor]) -> list[Actor]:
            actors = {a.user: a for a in found if a.user != requester}
            delegates = self.delegates(at, request_type)
            for principal in sorted(actors):
                for delegate in delegates.get(principal, []):
                    if delegate != requester and delegate not in actors:
                        actors[delegate] = actor(delegate, "delegation", on_behalf_of=principal)
            if not actors:
                managers = [m for m in self.manager_chain(requester) if m != requester]
                fallback = managers[:1] or [u for u in self.admins() if u != requester]
                actors = {u: actor(u, "fallback") for u in fallback}
            return [actors[u] for u in sorted(actors)]

        groups: list[tuple[str, list[Actor]]]
        if mode is StageMode.ANY:
            union: dict[str, Actor] = {}
            for spec in approvers:
                for a in named_by(spec):
                    union.setdefault(a.user, a)
            groups = [(" or ".join(s.describe() for s in approvers), list(union.values()))]
        else:
            groups = [(spec.describe(), named_by(spec)) for spec in approvers]
        return [Slot(label=label, actors=finish(found)) for label, found in groups]

    def resolve_detail(
        self,
        requester: str,
        mode: StageMode,
        approvers: Sequence[ApproverSpec],
        at: datetime,
        fallback_role: str | None,
        request_type: str | None = None,
    ) -> ResolveDetail:
        """``db.directory.resolve_detail``: the named people before any rule, the requester
        kept, delegates of the others added; the requester's manager, the administrators
        and the fallback role's holders."""
        delegates = self.delegates(at, request_type)
        named: list[Slot] = []
        for slot in self._groups(requester, mode, approvers, at):
            actors = {a.user: a for a in slot.actors}
            for principal in sorted(u for u in actors if u != requester):
                for delegate in delegates.get(principal, []):
                    if delegate != requester and delegate not in actors:
                        actors[delegate] = Actor(
                            user=delegate, via="delegation", on_behalf_of=principal, since=at
                        )
            named.append(Slot(label=slot.label, actors=tuple(actors[u] for u in sorted(actors))))
        return ResolveDetail(
            named=named,
            manager=next((m for m in self.manager_chain(requester) if m != requester), None),
            admins=self.admins(),
            role_holders=self.users_with_role(fallback_role) if fallback_role else [],
        )

    def _groups(
        self, requester: str, mode: StageMode, approvers: Sequence[ApproverSpec], at: datetime
    ) -> list[Slot]:
        def named_by(spec: ApproverSpec) -> list[Actor]:
            if spec.role is not None:
                return [
                    Actor(user=u, via=f"role:{spec.role}", since=at)
                    for u in self.users_with_role(spec.role)
                ]
            if spec.manager is not None:
                chain = self.manager_chain(requester)
                return (
                    [Actor(user=chain[spec.manager - 1], via="manager", since=at)]
                    if len(chain) >= spec.manager
                    else []
                )
            assert spec.user is not None
            return [Actor(user=spec.user, via="user", since=at)] if self.active(spec.user) else []

        if mode is StageMode.ANY:
            union: dict[str, Actor] = {}
            for spec in approvers:
                for a in named_by(spec):
                    union.setdefault(a.user, a)
            label = " or ".join(s.describe() for s in approvers)
            return [Slot(label=label, actors=tuple(union.values()))]
        return [Slot(label=spec.describe(), actors=tuple(named_by(spec))) for spec in approvers]

    def next_up(
        self, users: list[str], requester: str, escalation_role: str | None
    ) -> dict[str, list[str]]:
        """``db.directory.next_up``: the manager (skipping the requester), plus the role."""
        holders = self.users_with_role(escalation_role) if escalation_role else []
        out: dict[str, list[str]] = {}
        for user in users:
            manager = next((m for m in self.manager_chain(user) if m != requester), None)
            found = [manager] if manager is not None else []
            found += [h for h in holders if h not in found]
            out[user] = [u for u in found if u not in (user, requester)]
        return out

    def answer(self, q: LookUp) -> Any:
        arg = q.arg
        if q.activity == Activities.RESOLVE_ASSIGNEES:
            assert isinstance(arg, ResolveAssigneesInput)
            slots = self.resolve_slots(
                arg.requester, arg.mode, arg.approvers, arg.at, arg.request_type
            )
            detail = (
                self.resolve_detail(
                    arg.requester,
                    arg.mode,
                    arg.approvers,
                    arg.at,
                    arg.fallback_role,
                    arg.request_type,
                )
                if arg.detail
                else None
            )
            return ResolveAssigneesOutput(slots=slots, detail=detail)
        if q.activity == Activities.RESOLVE_ESCALATION:
            assert isinstance(arg, EscalationInput)
            return EscalationOutput(
                next_up=self.next_up(arg.users, arg.requester, arg.escalation_role)
            )
        if q.activity == Activities.DUE_AT:
            assert isinstance(arg, DueInput)
            return self.calendar.due(arg.start, arg.span)
        if q.activity == Activities.INACTIVE_USERS:
            assert isinstance(arg, InactiveUsersInput)
            return InactiveUsersOutput(
                inactive=sorted(u for u in set(arg.users) if not self.active(u))
            )
        if q.activity == Activities.ACTIVE_DELEGATES:
            assert isinstance(arg, DelegatesInput)
            every = self.delegates(arg.at, arg.request_type)
            return DelegatesOutput(
                delegates={p: every[p] for p in sorted(set(arg.principals)) if p in every}
            )
        if q.activity == Activities.READERS:
            assert isinstance(arg, ReadersInput)
            return ReadersOutput(
                unreadable=[u for u in arg.users if not self.active(u) or u in self.strangers]
            )
        if q.activity == Activities.ADDABLE_PEOPLE:
            assert isinstance(arg, AddableInput)
            active = {u for u in arg.users if self.active(u)}
            chains = {u: self.manager_chain(u) for u in {arg.adder, *arg.users}}
            return AddableOutput(
                refused=addable_refusals(arg.adder, arg.users, arg.within, active, chains)
            )
        raise AssertionError(f"unexpected look-up {q.activity}")


def internal_keys(data: Any) -> set[str]:
    """Internal field names anywhere in a dumped snapshot."""
    if isinstance(data, dict):
        found = {k for k in data if k in INTERNAL_FIELDS}
        for value in data.values():
            found |= internal_keys(value)
        return found
    if isinstance(data, list):
        return set().union(*(internal_keys(v) for v in data)) if data else set()
    return set()


@dataclass
class Driver:
    """Runs transitions of one request to their end, answering their effects."""

    directory: FakeDirectory
    records: list[TransitionRecord] = field(default_factory=list)
    refuse_proof: str | None = None
    """When set, every ``Verify`` answers with this reason (a forged proof); otherwise
    only a proof older than ``signing.MAX_AGE`` is refused."""
    payouts: list[str] = field(default_factory=list)
    paid_out: list[Decimal | None] = field(default_factory=list)
    """The amount of each payout made, in order."""
    patched: bool = True
    """How every ``Patched`` is answered: True as for a request on today's code, False
    as while replaying a history the older rules made."""
    flags: list[FlagStuck | Unflag] = field(default_factory=list)

    def run(self, ctx: Context, state: RequestState, inp: Input) -> Outcome:
        """Like the workflow's shell: a transition's writes go out together when it ends,
        with the read-model of the state it returned."""
        before = state.model_dump()
        step = machine.transition(ctx, state, inp)
        result: Any = None
        written: list[TransitionRecord] = []
        while True:
            try:
                effect = step.send(result)
            except StopIteration as done:
                outcome: Outcome = done.value
                assert state.model_dump() == before, "the transition changed its state in place"
                if written:
                    view = view_of(outcome.state, history=False)
                    self._check_written(outcome.state, view)
                    self.records.extend(r.model_copy(update={"view": view}) for r in written)
                return outcome
            if isinstance(effect, Write):
                assert effect.state.seq == effect.event.seq
                written.append(TransitionRecord(event=effect.event, notices=effect.notices))
                result = None
                continue
            result = self._carry_out(ctx, effect)

    def _carry_out(self, ctx: Context, effect: Any) -> Any:
        if isinstance(effect, LookUp):
            out = self.directory.answer(effect)
            assert isinstance(out, effect.result_type)
            return out
        if isinstance(effect, Verify):
            proof = effect.arg.proof
            if self.refuse_proof is None and proof is not None:
                if ctx.now() - proof.issued_at > signing.MAX_AGE:
                    return VerifyProofOutput(reason="the proof has expired")
            return VerifyProofOutput(reason=self.refuse_proof)
        if isinstance(effect, Patched):
            return self.patched
        if isinstance(effect, Pay):
            assert effect.arg.idempotency_key not in self.payouts, "paid twice"
            self.payouts.append(effect.arg.idempotency_key)
            self.paid_out.append(effect.arg.amount)
            return PayoutOutput(reference=f"PO-{len(self.payouts)}")
        if isinstance(effect, FlagStuck | Unflag):
            self.flags.append(effect)
            return None
        raise AssertionError(f"unknown effect {effect!r}")

    @staticmethod
    def _check_written(state: RequestState, view: RequestView) -> None:
        assert type(view) is RequestView, type(view)
        assert not internal_keys(view.model_dump()), internal_keys(view.model_dump())
        assert view.history == []
        assert view.status == state.label, (view.status, state.label)


class Request:
    """One request's process run the way the workflow runs it: the shell's one state
    variable, replaced only by what the process returns."""

    def __init__(self, inp: ApprovalInput, clock: Callable[[], datetime], driver: Driver) -> None:
        self.input = inp
        self.ctx = Context(inp.policy, clock)
        self.state = machine.start(inp, clock())
        self.driver = driver

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    @property
    def finished(self) -> bool:
        return self.state.finished

    def feed(self, inp: Input) -> DomainError | None:
        outcome = self.driver.run(self.ctx, self.state, inp)
        self.state = outcome.state
        return outcome.refusal

    def next_deadline(self) -> Deadline | None:
        return machine.deadline(self.state, self.policy)

    def carry(self) -> ApprovalInput:
        """The next run's input, as Temporal passes it (through JSON)."""
        return ApprovalInput.model_validate_json(
            machine.carry(self.input, self.state).model_dump_json()
        )


def approval_input(
    policy: Policy, amount: Decimal | None, fields: dict[str, Any], requester: str = "am_li"
) -> ApprovalInput:
    """What the API would start ``policy``'s workflow with for this submission."""
    norm = validate_fields(policy, amount, fields)
    return ApprovalInput(
        request_id="r-1",
        requester=requester,
        title="A request",
        amount=amount,
        fields=norm,
        policy=policy,
        route=resolve_route(policy, amount, norm),
    )


class Clock:
    """A clock the test moves: the process reads the time only through it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def accepted(p: Request, msg: Message) -> None:
    """``msg`` sent as an update is applied."""
    refusal = p.feed(Handle(msg, from_signal=False))
    assert refusal is None, refusal


def refused(p: Request, msg: Message) -> DomainError:
    """``msg`` sent as an update is refused, and nothing is written."""
    seq = p.state.seq
    refusal = p.feed(Handle(msg, from_signal=False))
    assert refusal is not None
    assert p.state.seq == seq  # a refused update writes nothing
    return refusal


__all__ = [
    "Clock",
    "Driver",
    "FakeDirectory",
    "Request",
    "accepted",
    "approval_input",
    "internal_keys",
    "refused",
]
