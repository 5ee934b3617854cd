"""Who may decide a stage (resolve_assignees) and who is next up (resolve_escalation)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from temporalio.testing import ActivityEnvironment

from activities.approvals import ApprovalActivities
from common.policy_store import load_policies
from domain.policy import ApproverSpec, Resolution, StageMode
from domain.process import EscalationInput, ResolveAssigneesInput, ResolveDetail, Slot
from domain.resolution import settle
from tests.support.paths import ROOT

POLICIES = load_policies(ROOT / "policies")

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ON_LEAVE = datetime(2024, 7, 5, 10, 0, tzinfo=timezone(timedelta(hours=8)))  # sd_chen -> dsd_liu


async def _slots(
    acts: ApprovalActivities,
    requester: str,
    mode: StageMode,
    *specs: ApproverSpec,
    at: datetime = NOW,
) -> list[Slot]:
    out = await ActivityEnvironment().run(
        acts.resolve_assignees,
        ResolveAssigneesInput(
            request_id=str(uuid.uuid4()),
            requester=requester,
            stage_key="stage",
            mode=mode,
            approvers=specs,
            at=at,
        ),
    )
    return out.slots


def _who(slot: Slot) -> list[tuple[str, str, str | None]]:
    return [(a.user, a.via, a.on_behalf_of) for a in slot.actors]


def role(name: str) -> ApproverSpec:
    return ApproverSpec(role=name)


async def test_any_is_one_slot_with_everyone_any_spec_names(acts: ApprovalActivities) -> None:
    specs = (role("operations_manager"), role("purchasing_manager"), role("merchant_manager"))
    [slot] = await _slots(acts, "am_li", StageMode.ANY, *specs)
    assert slot.label == (
        "role operations_manager or role purchasing_manager or role merchant_manager"
    )
    assert _who(slot) == [
        ("mm_hu", "role:merchant_manager", None),
        ("opm_guo", "role:operations_manager", None),
        ("pm_luo", "role:purchasing_manager", None),
    ]
    assert all(a.since == NOW for a in slot.actors)
    assert slot.decision is None


async def test_all_is_one_slot_per_spec(acts: ApprovalActivities) -> None:
    specs = (role("operations_manager"), role("purchasing_manager"), role("merchant_manager"))
    slots = await _slots(acts, "am_li", StageMode.ALL, *specs)
    assert [(s.label, _who(s)) for s in slots] == [
        ("role operations_manager", [("opm_guo", "role:operations_manager", None)]),
        ("role purchasing_manager", [("pm_luo", "role:purchasing_manager", None)]),
        ("role merchant_manager", [("mm_hu", "role:merchant_manager", None)]),
    ]


async def test_manager_and_user_specs(acts: ApprovalActivities) -> None:
    slots = await _slots(
        acts,
        "am_li",
        StageMode.ALL,
        ApproverSpec(manager=1),
        ApproverSpec(manager=3),
        ApproverSpec(user="fh_gao"),
    )
    assert [_who(s) for s in slots] == [
        [("sh_zhou", "manager", None)],
        [("sd_chen", "manager", None)],
        [("fh_gao", "user", None)],
    ]
    assert [s.label for s in slots] == [
        "the requester's manager",
        "the requester's manager, 3 levels up",
        "user fh_gao",
    ]


async def test_requester_never_approves_their_own_request(acts: ApprovalActivities) -> None:
    [slot] = await _slots(acts, "om_wu", StageMode.ANY, role("office_manager"))
    assert _who(slot) == [("om_yang", "role:office_manager", None)]
    [slot] = await _slots(acts, "am_li", StageMode.ANY, role("office_manager"))
    assert _who(slot) == [
        ("om_wu", "role:office_manager", None),
        ("om_yang", "role:office_manager", None),
    ]


async def test_sole_holder_requesting_falls_back_to_their_manager(
    acts: ApprovalActivities,
) -> None:
    [slot] = await _slots(acts, "sh_zhou", StageMode.ANY, role("sales_head"))
    assert _who(slot) == [("dsd_liu", "fallback", None)]


async def test_top_of_the_chain_falls_back_to_the_administrators(
    acts: ApprovalActivities,
) -> None:
    [slot] = await _slots(acts, "gm_wang", StageMode.ANY, role("general_manager"))
    assert _who(slot) == [("admin", "fallback", None)]


async def test_nobody_found_falls_back_per_slot(acts: ApprovalActivities) -> None:
    # A manager level beyond the chain and an unknown user: each slot falls back alone.
    slots = await _slots(
        acts,
        "am_li",
        StageMode.ALL,
        ApproverSpec(manager=9),
        ApproverSpec(user="ghost"),
        role("finance_head"),
    )
    assert [_who(s) for s in slots] == [
        [("sh_zhou", "fallback", None)],
        [("sh_zhou", "fallback", None)],
        [("fh_gao", "role:finance_head", None)],
    ]


async def test_active_delegation_adds_the_delegate(acts: ApprovalActivities) -> None:
    [slot] = await _slots(acts, "am_li", StageMode.ANY, role("sales_director"), at=ON_LEAVE)
    assert _who(slot) == [
        ("dsd_liu", "delegation", "sd_chen"),
        ("sd_chen", "role:sales_director", None),
    ]


async def test_expired_delegation_adds_nobody(acts: ApprovalActivities) -> None:
    [slot] = await _slots(acts, "am_li", StageMode.ANY, role("sales_director"))
    assert _who(slot) == [("sd_chen", "role:sales_director", None)]
    ended = datetime(2024, 7, 15, tzinfo=timezone(timedelta(hours=8)))  # ends_at is exclusive
    [slot] = await _slots(acts, "am_li", StageMode.ANY, role("sales_director"), at=ended)
    assert _who(slot) == [("sd_chen", "role:sales_director", None)]


async def test_delegate_who_is_the_requester_or_already_an_actor_is_not_added(
    acts: ApprovalActivities,
) -> None:
    [slot] = await _slots(acts, "dsd_liu", StageMode.ANY, role("sales_director"), at=ON_LEAVE)
    assert _who(slot) == [("sd_chen", "role:sales_director", None)]
    [slot] = await _slots(
        acts,
        "am_li",
        StageMode.ANY,
        role("sales_director"),
        role("deputy_sales_director"),
        at=ON_LEAVE,
    )
    assert _who(slot) == [
        ("dsd_liu", "role:deputy_sales_director", None),
        ("sd_chen", "role:sales_director", None),
    ]


async def test_requester_on_leave_does_not_bring_in_their_own_delegate(
    acts: ApprovalActivities,
) -> None:
    # dsd_liu acts for sd_chen, and sd_chen may not approve his own request: neither may
    # his delegate. The slot is empty, so it falls back to sd_chen's manager.
    [slot] = await _slots(acts, "sd_chen", StageMode.ANY, role("sales_director"), at=ON_LEAVE)
    assert _who(slot) == [("gm_wang", "fallback", None)]


# --- escalation -------------------------------------------------------------------


async def _next_up(
    acts: ApprovalActivities, requester: str, users: list[str], role_: str | None = None
) -> dict[str, list[str]]:
    out = await ActivityEnvironment().run(
        acts.resolve_escalation,
        EscalationInput(
            request_id=str(uuid.uuid4()),
            requester=requester,
            users=users,
            escalation_role=role_,
            at=datetime.now(UTC),
        ),
    )
    return out.next_up


async def test_escalation_goes_up_the_chain_and_stops_at_the_top(
    acts: ApprovalActivities,
) -> None:
    assert await _next_up(
        acts, "am_sun", ["om_wu", "sh_zhou", "dsd_liu", "sd_chen", "gm_wang"]
    ) == {
        "om_wu": ["sh_zhou"],
        "sh_zhou": ["dsd_liu"],
        "dsd_liu": ["sd_chen"],
        "sd_chen": ["gm_wang"],
        "gm_wang": [],
    }


async def test_escalation_skips_the_requester(acts: ApprovalActivities) -> None:
    assert await _next_up(acts, "sh_zhou", ["om_yang"]) == {"om_yang": ["dsd_liu"]}


async def test_escalation_role_is_added_without_the_user_or_requester(
    acts: ApprovalActivities,
) -> None:
    up = await _next_up(acts, "am_li", ["dsd_liu", "sd_chen", "gm_wang"], "general_manager")
    assert up == {"dsd_liu": ["sd_chen", "gm_wang"], "sd_chen": ["gm_wang"], "gm_wang": []}
    assert await _next_up(acts, "gm_wang", ["sd_chen"], "general_manager") == {"sd_chen": []}


async def _detail(
    acts: ApprovalActivities, requester: str, mode: StageMode, specs: tuple[ApproverSpec, ...]
) -> tuple[list[Slot], ResolveDetail]:
    out = await ActivityEnvironment().run(
        acts.resolve_assignees,
        ResolveAssigneesInput(
            request_id=str(uuid.uuid4()),
            requester=requester,
            stage_key="stage",
            mode=mode,
            approvers=specs,
            at=ON_LEAVE,
            detail=True,
            fallback_role="finance_head",
        ),
    )
    assert out.detail is not None
    return out.slots, out.detail


async def test_the_detail_settled_without_options_is_what_the_directory_always_answered(
    acts: ApprovalActivities,
) -> None:
    """``domain.resolution.settle`` over the real directory's detail: the same slots, on
    every shipped policy's stages, for requesters at every level (sd_chen on leave)."""
    stages = [(s.mode, s.approvers) for p in POLICIES.values() for s in p.stages]
    stages += [
        (StageMode.ANY, (role("board"),)),
        (StageMode.ALL, (role("account_manager"), ApproverSpec(user="am_li"), role("board"))),
    ]
    for requester in ("am_li", "sh_zhou", "dsd_liu", "gm_wang", "fin_he", "admin"):
        for mode, specs in stages:
            slots, detail = await _detail(acts, requester, mode, specs)
            settled = settle(detail, requester, Resolution(), ON_LEAVE)
            assert [x.slot for x in settled] == slots, (requester, specs)


async def test_the_detail_keeps_the_requester_and_names_the_fallbacks(
    acts: ApprovalActivities,
) -> None:
    _, detail = await _detail(acts, "am_li", StageMode.ANY, (role("account_manager"),))
    assert [a.user for a in detail.named[0].actors] == ["am_li", "am_sun"]
    assert detail.manager == "sh_zhou"
    assert detail.admins == ["admin"]
    assert detail.role_holders == ["fh_gao"]
    # sd_chen on leave: dsd_liu acts for them, as in the slots.
    _, detail = await _detail(acts, "am_li", StageMode.ANY, (role("sales_director"),))
    assert [(a.user, a.on_behalf_of) for a in detail.named[0].actors] == [
        ("dsd_liu", "sd_chen"),
        ("sd_chen", None),
    ]
