"""Delegation rules in pure code: loops, overlap, type scope, who may set one for whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.delegation import (
    DelegationStatus,
    Edge,
    Standing,
    check_new,
    covers_type,
    find_loop,
    may_set_for,
    overlaps,
    status_at,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TYPES = ("contract", "discount", "gift")
PEOPLE = ("a", "b", "c", "d")


def edge(f: str, t: str, start: int = 0, end: int = 10, types: set[str] | None = None) -> Edge:
    return Edge(
        from_=f,
        to=t,
        starts_at=T0 + start * DAY,
        ends_at=T0 + end * DAY,
        types=frozenset(types) if types is not None else None,
    )


def test_a_delegation_back_to_the_delegator_while_both_are_in_force_is_a_loop() -> None:
    assert find_loop([edge("a", "b")], edge("b", "a")) == ["b", "a", "b"]


def test_a_longer_loop_is_named_whole() -> None:
    existing = [edge("a", "b"), edge("b", "c")]
    assert find_loop(existing, edge("c", "a")) == ["c", "a", "b", "c"]


def test_no_loop_when_the_periods_do_not_meet() -> None:
    assert find_loop([edge("a", "b", 0, 5)], edge("b", "a", 5, 10)) is None


def test_no_loop_when_the_types_do_not_meet() -> None:
    existing = [edge("a", "b", types={"contract"})]
    assert find_loop(existing, edge("b", "a", types={"gift"})) is None
    assert find_loop(existing, edge("b", "a", types={"gift", "contract"})) == ["b", "a", "b"]
    assert find_loop(existing, edge("b", "a")) == ["b", "a", "b"]  # all types


def test_a_loop_needs_every_edge_in_force_at_one_moment() -> None:
    # a->b on days 0-4, b->c on days 6-10: never both, so c->a closes nothing.
    existing = [edge("a", "b", 0, 4), edge("b", "c", 6, 10)]
    assert find_loop(existing, edge("c", "a", 0, 10)) is None
    # ...but with b->c from day 3 they meet on day 3.
    existing = [edge("a", "b", 0, 4), edge("b", "c", 3, 10)]
    assert find_loop(existing, edge("c", "a", 0, 10)) == ["c", "a", "b", "c"]


def test_a_delegation_ended_before_it_started_overlaps_nothing() -> None:
    ended_early = edge("a", "b", 5, 2)
    assert not overlaps(ended_early, edge("b", "a", 0, 10))
    assert find_loop([ended_early], edge("b", "a")) is None


def test_type_scope() -> None:
    assert covers_type(None, "gift")
    assert covers_type(frozenset({"gift"}), "gift")
    assert not covers_type(frozenset({"contract"}), "gift")
    assert covers_type(frozenset({"contract"}), None)  # a caller that does not say


def test_who_may_set_a_delegation_for_whom() -> None:
    assert may_set_for("a", False, "a", "m") is Standing.SELF
    assert may_set_for("m", False, "a", "m") is Standing.MANAGER
    assert may_set_for("root", True, "a", "m") is Standing.ADMIN
    assert may_set_for("x", False, "a", "m") is None
    assert may_set_for("grand", False, "a", "m") is None  # only the direct manager


def test_check_new_names_each_bad_field() -> None:
    def fields(**kw: object) -> set[str]:
        args: dict[str, object] = {
            "from_": "a",
            "to": "b",
            "starts_at": T0,
            "ends_at": T0 + DAY,
            "types": None,
            "known_types": TYPES,
            "active_users": PEOPLE,
        }
        args.update(kw)
        return {p.field for p in check_new(**args)}  # type: ignore[arg-type]

    assert fields() == set()
    assert fields(to="ghost") == {"to"}
    assert fields(from_="ghost") == {"from"}
    assert fields(to="a") == {"to"}
    assert fields(ends_at=T0) == {"ends_at"}
    assert fields(ends_at=T0 + 400 * DAY) == {"ends_at"}
    assert fields(types=frozenset({"nope"})) == {"request_types"}
    assert fields(types=frozenset()) == {"request_types"}
    assert fields(types=frozenset({"gift"})) == set()


def test_status_over_time() -> None:
    assert status_at(T0, T0 + DAY, T0 - DAY) is DelegationStatus.SCHEDULED
    assert status_at(T0, T0 + DAY, T0) is DelegationStatus.ACTIVE
    assert status_at(T0, T0 + DAY, T0 + DAY) is DelegationStatus.ENDED
    assert status_at(T0, T0 - DAY, T0 - 2 * DAY) is DelegationStatus.ENDED  # ended early


# ---------------------------------------------------------------- properties

edges = st.builds(
    edge,
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
    st.integers(0, 8),
    st.integers(1, 10),
    st.one_of(st.none(), st.sets(st.sampled_from(TYPES), min_size=1)),
).filter(lambda e: e.from_ != e.to)


def _cycle_at(accepted: list[Edge], t: datetime, kind: str) -> bool:
    graph: dict[str, set[str]] = {}
    for e in accepted:
        if e.active_at(t) and e.covers(kind):
            graph.setdefault(e.from_, set()).add(e.to)
    state: dict[str, int] = {}

    def visit(u: str) -> bool:
        state[u] = 1
        for v in graph.get(u, ()):
            if state.get(v) == 1 or (v not in state and visit(v)):
                return True
        state[u] = 2
        return False

    return any(u not in state and visit(u) for u in list(graph))


GRID = [(T0 + d * DAY + timedelta(hours=h), k) for d in range(11) for h in (0, 12) for k in TYPES]
GRID += [(T0 + d * DAY, "other") for d in range(11)]


@settings(max_examples=300, deadline=None)
@given(st.lists(edges, max_size=12))
def test_delegations_accepted_one_by_one_never_form_a_loop(proposed: list[Edge]) -> None:
    accepted: list[Edge] = []
    for e in proposed:
        loop = find_loop(accepted, e)
        if loop is None:
            accepted.append(e)
        else:
            # A refusal names a real loop: it starts and ends at the new edge's from.
            assert loop[0] == loop[-1] == e.from_ and loop[1] == e.to
            # ...and taking the edge would make a cycle at some moment for some type.
            assert any(_cycle_at([*accepted, e], t, k) for t, k in GRID)
    for t, k in GRID:
        assert not _cycle_at(accepted, t, k)
