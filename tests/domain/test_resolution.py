"""Who decides a step under the policy's ``resolution`` options, decided in the pure core.

Repeated approvers, the requester named as an approver and steps nobody is named for:
the directory answers what it names (``ResolveDetail``), :func:`domain.resolution.settle`
decides, and the process records an automatic approval as an ``auto_approved`` event.
A policy without the options settles every step exactly as the directory always did.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.policy_store import load_policies
from domain.core.details import details
from domain.core.inputs import Handle, Submit
from domain.core.queries import active_stage, current_approvers
from domain.policy import Policy, Resolution, StageMode, policy_from_mapping
from domain.process import (
    SYSTEM,
    DecideInput,
    EventKind,
    HistoryEvent,
    StageStatus,
    Status,
)
from domain.resolution import Applies, settle
from tests.support.machine_driver import Driver, FakeDirectory, Request, approval_input

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REQUESTERS = ("am_li", "sh_zhou", "dsd_liu", "gm_wang", "fin_he", "csc_tang", "admin")


def policy(stages: list[dict[str, Any]], **resolution: Any) -> Policy:
    data: dict[str, Any] = {
        "type": "route_test",
        "version": 1,
        "title": "Route test",
        "amount": {"required": False},
        "stages": [
            {"key": f"s{i + 1}", "name": f"Stage {i + 1}", **stage}
            for i, stage in enumerate(stages)
        ],
    }
    if resolution:
        data["resolution"] = resolution
    return policy_from_mapping(data)


def start(p: Policy, requester: str = "am_li", directory: FakeDirectory | None = None) -> Request:
    clock = iter(T0 + timedelta(seconds=i) for i in range(10_000))
    now = [T0]

    def tick() -> datetime:
        now[0] = next(clock)
        return now[0]

    r = Request(
        approval_input(p, None, {}, requester=requester),
        tick,
        Driver(directory or FakeDirectory.demo()),
    )
    r.feed(Submit())
    return r


def approve(r: Request, user: str) -> None:
    refusal = r.feed(Handle(DecideInput(actor=user, action="approve"), from_signal=False))
    assert refusal is None, refusal


def events(r: Request, kind: EventKind) -> list[HistoryEvent]:
    return [e for e in r.state.history if e.kind is kind]


def stage_of(r: Request) -> str | None:
    stage = active_stage(r.state)
    return stage.key if stage is not None else None


# --- today's behaviour is the default -----------------------------------------------


def every_stage() -> Iterator[tuple[str, StageMode, Any]]:
    for p in POLICIES.values():
        for stage in p.stages:
            yield p.type, stage.mode, stage.approvers
    yield "edge", StageMode.ANY, policy([{"approvers": [{"role": "board"}]}]).stages[0].approvers
    yield (
        "edge",
        StageMode.ALL,
        policy([{"approvers": [{"role": "account_manager"}, {"user": "am_li"}], "mode": "all"}])
        .stages[0]
        .approvers,
    )


@pytest.mark.parametrize("requester", REQUESTERS)
def test_without_the_options_every_step_settles_as_the_directory_always_resolved_it(
    requester: str,
) -> None:
    directory = FakeDirectory.demo()
    for _, mode, approvers in every_stage():
        today = directory.resolve_slots(requester, mode, approvers, T0)
        detail = directory.resolve_detail(requester, mode, approvers, T0, None)
        settled = settle(detail, requester, Resolution(), T0)
        assert [x.slot for x in settled] == today
        assert not any(x.automatic for x in settled)


def test_a_policy_without_the_options_makes_the_look_up_it_always_made() -> None:
    r = start(policy([{"approvers": [{"manager": 1}]}, {"approvers": [{"role": "sales_head"}]}]))
    assert r.policy.resolution.as_always
    approve(r, "sh_zhou")
    assert stage_of(r) == "s2"  # sh_zhou decides again
    assert current_approvers(r.state) == ["sh_zhou"]
    assert not events(r, EventKind.AUTO_APPROVED)
    assigned = events(r, EventKind.ASSIGNED)
    assert all("automatic" not in e.data for e in assigned)


def test_the_options_are_optional_and_checked() -> None:
    assert policy([{"approvers": [{"manager": 1}]}]).resolution == Resolution()
    for bad in (
        {"empty_slot": "role"},
        {"empty_slot": "skip", "empty_slot_role": "finance_head"},
        {"repeated_approver": "sometimes"},
        {"unknown": True},
    ):
        with pytest.raises(ValidationError):
            policy([{"approvers": [{"manager": 1}]}], **bad)


# --- repeated approvers -------------------------------------------------------------

REPEATS: list[dict[str, Any]] = [
    {"approvers": [{"manager": 1}]},  # sh_zhou
    {"approvers": [{"role": "sales_director"}]},  # sd_chen
    {"approvers": [{"role": "sales_head"}]},  # sh_zhou again
    {"approvers": [{"role": "sales_director"}]},  # sd_chen again, just after
]


def test_an_approver_who_approved_an_earlier_stage_is_approved_automatically() -> None:
    r = start(policy(REPEATS, repeated_approver="skip"))
    approve(r, "sh_zhou")
    approve(r, "sd_chen")
    # s3 (sh_zhou, approved s1) and s4 (sd_chen, approved s2) go by themselves.
    assert r.state.status is Status.APPROVED
    auto = events(r, EventKind.AUTO_APPROVED)
    assert [e.data["stage"] for e in auto] == ["s3", "s4"]
    assert auto[0].actor == SYSTEM
    assert auto[0].comment == "approved automatically: already approved at stage Stage 1"
    assert auto[0].data["slots"] == [
        {"slot": "role sales_head", "rule": "repeated", "user": "sh_zhou", "at_stage": "Stage 1"}
    ]
    s3 = r.state.stages[2]
    assert s3.status is StageStatus.APPROVED
    assert s3.slots[0].decided_by == "sh_zhou"  # their approval at s1 stands for s3
    assert s3.slots[0].automatic == auto[0].comment
    notices = [n for rec in r.driver.records for n in rec.notices if n.template == "auto_approved"]
    assert {n.recipient for n in notices} == {"am_li"}
    # Nobody was asked twice.
    assigned = [e.data["people"] for e in events(r, EventKind.ASSIGNED)]
    assert assigned == [["sh_zhou"], ["sd_chen"], [], []]


def test_adjacent_only_skips_an_approver_of_the_stage_just_before() -> None:
    stages: list[dict[str, Any]] = [
        {"approvers": [{"manager": 1}]},  # sh_zhou
        {"approvers": [{"role": "sales_head"}]},  # sh_zhou, just after: skipped
        {"approvers": [{"user": "sh_zhou"}]},  # and again: skipped (a run of them)
        {"approvers": [{"role": "sales_director"}]},  # sd_chen
        {"approvers": [{"role": "sales_head"}]},  # sh_zhou, not just after: asked
    ]
    r = start(policy(stages, repeated_approver="skip_adjacent"))
    approve(r, "sh_zhou")
    assert stage_of(r) == "s4"
    assert [e.data["stage"] for e in events(r, EventKind.AUTO_APPROVED)] == ["s2", "s3"]
    assert r.state.stages[1].slots[0].decided_by == "sh_zhou"  # their approval stands
    approve(r, "sd_chen")
    assert stage_of(r) == "s5"
    assert current_approvers(r.state) == ["sh_zhou"]
    r = start(policy(stages, repeated_approver="skip"))
    approve(r, "sh_zhou")
    approve(r, "sd_chen")
    assert r.state.status is Status.APPROVED


def test_by_default_a_repeated_approver_decides_again() -> None:
    r = start(policy(REPEATS))
    for user in ("sh_zhou", "sd_chen", "sh_zhou", "sd_chen"):
        assert current_approvers(r.state) == [user]
        approve(r, user)
    assert r.state.status is Status.APPROVED


# --- the requester named as an approver ---------------------------------------------

SELF: list[dict[str, Any]] = [{"approvers": [{"role": "sales_head"}]}]  # sh_zhou alone
SHARED: list[dict[str, Any]] = [{"approvers": [{"role": "account_manager"}]}]  # am_li and am_sun


def test_by_default_the_requester_named_alone_goes_to_their_manager() -> None:
    r = start(policy(SELF), requester="sh_zhou")
    assert current_approvers(r.state) == ["dsd_liu"]
    r = start(policy(SELF, requester_approver="manager"), requester="sh_zhou")
    assert current_approvers(r.state) == ["dsd_liu"]
    assert events(r, EventKind.ASSIGNED)[-1].data["people"] == ["dsd_liu"]


def test_by_default_the_requester_is_taken_off_a_step_others_share() -> None:
    for r in (start(policy(SHARED)), start(policy(SHARED, requester_approver="manager"))):
        assert current_approvers(r.state) == ["am_sun"]


def test_the_requester_may_approve_their_own_step_when_the_policy_says_so() -> None:
    r = start(policy(SELF, requester_approver="self"), requester="sh_zhou")
    assert current_approvers(r.state) == ["sh_zhou"]
    approve(r, "sh_zhou")
    assert r.state.status is Status.APPROVED
    r = start(policy(SHARED, requester_approver="self"))
    assert current_approvers(r.state) == ["am_li", "am_sun"]


def test_a_step_naming_the_requester_is_skipped_when_the_policy_says_so() -> None:
    p = policy([*SELF, {"approvers": [{"role": "sales_director"}]}], requester_approver="skip")
    r = start(p, requester="sh_zhou")
    assert stage_of(r) == "s2"
    assert current_approvers(r.state) == ["sd_chen"]
    (auto,) = events(r, EventKind.AUTO_APPROVED)
    assert auto.comment == "approved automatically: the requester is an approver of this step"
    assert auto.data["slots"] == [{"slot": "role sales_head", "rule": "requester_skipped"}]
    # Someone else's request through the same step is not skipped.
    r = start(p, requester="am_li")
    assert current_approvers(r.state) == ["sh_zhou"]


# --- a step the policy names nobody for ---------------------------------------------

EMPTY: list[dict[str, Any]] = [
    {"approvers": [{"role": "board"}]},
    {"approvers": [{"role": "sales_director"}]},
]


@pytest.mark.parametrize(
    ("options", "people"),
    [
        ({}, ["sh_zhou"]),  # today: the requester's manager
        ({"empty_slot": "fallback"}, ["sh_zhou"]),
        ({"empty_slot": "refuse"}, ["sh_zhou"]),  # after submission: as today
        ({"empty_slot": "administrators"}, ["admin"]),
        ({"empty_slot": "role", "empty_slot_role": "finance_head"}, ["fh_gao"]),
        ({"empty_slot": "role", "empty_slot_role": "board"}, ["admin"]),
    ],
)
def test_a_step_nobody_is_named_for_goes_where_the_policy_says(
    options: dict[str, str], people: list[str]
) -> None:
    r = start(policy(EMPTY, **options))
    assert stage_of(r) == "s1"
    assert current_approvers(r.state) == people
    assert events(r, EventKind.ASSIGNED)[-1].data["unassigned"] == []


def test_a_step_nobody_is_named_for_is_skipped_with_a_record() -> None:
    r = start(policy(EMPTY, empty_slot="skip"))
    assert stage_of(r) == "s2"
    (auto,) = events(r, EventKind.AUTO_APPROVED)
    assert auto.comment == "approved automatically: nobody is named for this step"
    assert auto.data["slots"] == [{"slot": "role board", "rule": "empty_skipped"}]
    assert "Approved automatically: *Stage 1* (nobody is named for this step)" in details(r.state)


def test_at_submission_refuse_names_the_empty_slot() -> None:
    directory = FakeDirectory.demo()
    p = policy(
        [{"approvers": [{"role": "sales_head"}, {"role": "board"}], "mode": "all"}],
        empty_slot="refuse",
    )
    approvers = p.stages[0].approvers
    detail = directory.resolve_detail("am_li", StageMode.ALL, approvers, T0, None)
    settled = settle(detail, "am_li", p.resolution, T0, submitting=True)
    assert [(x.slot.label, x.applies) for x in settled] == [
        ("role sales_head", Applies.NAMED),
        ("role board", Applies.REFUSED),
    ]


def test_an_all_stage_waits_for_the_slots_not_approved_automatically() -> None:
    p = policy(
        [{"approvers": [{"role": "sales_head"}, {"role": "board"}], "mode": "all"}],
        empty_slot="skip",
    )
    r = start(p)
    stage = active_stage(r.state)
    assert stage is not None and stage.key == "s1"
    assert [s.decision for s in stage.slots] == [None, "approve"]
    assert current_approvers(r.state) == ["sh_zhou"]
    assert events(r, EventKind.ASSIGNED)[-1].data["automatic"] == ["role board"]
    approve(r, "sh_zhou")
    assert r.state.status is Status.APPROVED


def test_nobody_at_all_leaves_the_step_unassigned_as_today() -> None:
    directory = FakeDirectory.demo()
    directory.left |= {"sh_zhou", "dsd_liu", "sd_chen", "gm_wang", "admin"}
    r = start(policy(EMPTY, empty_slot="administrators"), directory=directory)
    assert current_approvers(r.state) == []
    assert events(r, EventKind.ASSIGNED)[-1].data["unassigned"] == ["role board"]
