"""Delegation (委托/代理): the pure rules.

A delegation lets ``to`` act for ``from_`` while ``starts_at <= t < ends_at``, for
every request type (``types is None``) or for those named. The rules here decide
who may set one for whom, whether a new one is well formed, and whether it would
close a loop. They know nothing of the database: the API gathers the facts
(:class:`Edge` values, the caller's standing) and asks.

How chains resolve: **one hop only**. A step's slot gets the active delegates of
the people the stage names, never a delegate's own delegate. A→B and B→C in force
at once mean B's steps may be decided by C, and A's by B; C does not act for A.
Loops are refused all the same (:func:`find_loop`), because a loop A→B, B→A says
nothing sensible (each is away and stands in for the other) and one hop of it
would put both on each other's steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

MAX_SPAN = timedelta(days=366)
"""The longest delegation: an absence, not a permanent transfer of authority."""

_OTHER_TYPE = "\x00any other type"
"""A request type no delegation names: stands for every type not listed anywhere."""


class DelegationSource(StrEnum):
    """Where a delegation comes from: the org file (read-only here) or the API."""

    ORG = "org"
    API = "api"


@dataclass(frozen=True)
class Edge:
    """One delegation as the rules see it: who for whom, when, for which types."""

    from_: str
    to: str
    starts_at: datetime
    ends_at: datetime
    types: frozenset[str] | None = None
    """The request types it covers; None for all."""

    def active_at(self, t: datetime) -> bool:
        return self.starts_at <= t < self.ends_at

    def covers(self, request_type: str) -> bool:
        return self.types is None or request_type in self.types


def overlaps(a: Edge, b: Edge) -> bool:
    """Whether ``a`` and ``b`` are both in force at some moment for some request type."""
    if a.ends_at <= a.starts_at or b.ends_at <= b.starts_at:
        return False  # ended before it started: never in force
    if not (a.starts_at < b.ends_at and b.starts_at < a.ends_at):
        return False
    if a.types is None or b.types is None:
        return True
    return bool(a.types & b.types)


def covers_type(types: frozenset[str] | None, request_type: str | None) -> bool:
    """Whether a delegation for ``types`` applies to a request of ``request_type``.

    ``request_type`` None (a caller that does not say) counts every delegation.
    """
    return types is None or request_type is None or request_type in types


def find_loop(existing: Iterable[Edge], new: Edge) -> list[str] | None:
    """The loop ``new`` would close, as ``[a, b, ..., a]``, or None.

    A loop is a cycle of delegations all in force at one moment for one request
    type. Only those moments and types need trying where the set of edges in force
    changes: the start of each edge that overlaps ``new`` (within ``new``'s
    period), and each type named by ``new`` or by an overlapping edge, plus one
    type nobody names.
    """
    if new.from_ == new.to:
        return [new.from_, new.from_]
    relevant = [e for e in existing if overlaps(e, new)]
    moments = sorted(
        {new.starts_at} | {e.starts_at for e in relevant if new.starts_at < e.starts_at}
    )
    if new.types is not None:
        kinds = sorted(new.types)
    else:
        kinds = sorted({t for e in relevant if e.types is not None for t in e.types})
        kinds.append(_OTHER_TYPE)
    for t in moments:
        for kind in kinds:
            graph: dict[str, list[str]] = {}
            for e in relevant:
                if e.active_at(t) and e.covers(kind):
                    graph.setdefault(e.from_, []).append(e.to)
            path = _path(graph, new.to, new.from_)
            if path is not None:
                return [new.from_, *path]
    return None


def _path(graph: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A path from ``start`` to ``goal`` in ``graph`` (both ends included), or None."""
    seen = {start}
    stack: list[list[str]] = [[start]]
    while stack:
        path = stack.pop()
        if path[-1] == goal:
            return path
        for nxt in sorted(graph.get(path[-1], ()), reverse=True):
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


def loop_text(loop: Sequence[str]) -> str:
    return " -> ".join(loop)


class Standing(StrEnum):
    """Why the caller may set a delegation for ``from``."""

    SELF = "self"
    MANAGER = "manager"
    ADMIN = "admin"


def may_set_for(
    actor: str, actor_is_admin: bool, principal: str, principal_manager: str | None
) -> Standing | None:
    """Whether ``actor`` may set (or end) a delegation whose ``from`` is ``principal``.

    Themself; their direct reports (a manager covers for an absent report);
    anyone, as an administrator (people who left). None: they may not.
    """
    if actor == principal:
        return Standing.SELF
    if principal_manager is not None and principal_manager == actor:
        return Standing.MANAGER
    if actor_is_admin:
        return Standing.ADMIN
    return None


@dataclass(frozen=True)
class Problem:
    """A field of a new delegation that is wrong, and why."""

    field: str
    message: str


def check_new(
    *,
    from_: str,
    to: str,
    starts_at: datetime,
    ends_at: datetime,
    types: frozenset[str] | None,
    known_types: Iterable[str],
    active_users: Iterable[str],
) -> list[Problem]:
    """What is wrong with a new delegation (empty: nothing)."""
    problems: list[Problem] = []
    active = set(active_users)
    if from_ not in active:
        problems.append(Problem("from", f"{from_!r} is not an active user"))
    if to not in active:
        problems.append(Problem("to", f"{to!r} is not an active user"))
    elif to == from_:
        problems.append(Problem("to", "a user cannot delegate to themself"))
    if ends_at <= starts_at:
        problems.append(Problem("ends_at", "must be after starts_at"))
    elif ends_at - starts_at > MAX_SPAN:
        problems.append(Problem("ends_at", f"at most {MAX_SPAN.days} days after starts_at"))
    if types is not None:
        unknown = sorted(types - set(known_types))
        if unknown:
            problems.append(Problem("request_types", f"unknown request types: {unknown}"))
        elif not types:
            problems.append(Problem("request_types", "name at least one type, or say all"))
    return problems


class DelegationStatus(StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ENDED = "ended"


def status_at(starts_at: datetime, ends_at: datetime, now: datetime) -> DelegationStatus:
    if ends_at <= now or ends_at <= starts_at:
        return DelegationStatus.ENDED
    if now < starts_at:
        return DelegationStatus.SCHEDULED
    return DelegationStatus.ACTIVE
