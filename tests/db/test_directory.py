"""The org file schema, its idempotent loading, and the demo organisation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.policy_store import load_policies
from db.directory import (
    OrgError,
    OrgFile,
    active_delegations,
    get_user,
    load_org_file,
    manager_chain,
    read_org_file,
    users_with_role,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "org" / "demo.yaml"


def _org(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": {"boss": "Boss", "clerk": "Clerk"},
        "users": [
            {"id": "b", "name": "B", "roles": ["boss"]},
            {"id": "c", "name": "C", "roles": ["clerk"], "manager": "b"},
        ],
    }
    data.update(overrides)
    return data


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        OrgFile.model_validate(data)
    return str(caught.value)


# --- schema -------------------------------------------------------------------


def test_unknown_manager_is_named() -> None:
    users = [{"id": "c", "name": "C", "manager": "nobody"}]
    assert "user 'c': manager 'nobody' is not a user" in _problems(_org(users=users))


def test_unknown_role_is_named() -> None:
    users = [{"id": "c", "name": "C", "roles": ["clerk", "pilot"]}]
    assert "user 'c': unknown role 'pilot'" in _problems(_org(users=users))


def test_manager_cycle_is_named() -> None:
    users = [
        {"id": "a", "name": "A", "manager": "c"},
        {"id": "b", "name": "B", "manager": "a"},
        {"id": "c", "name": "C", "manager": "b"},
        {"id": "top", "name": "Top"},
    ]
    assert "manager cycle: a -> c -> b -> a" in _problems(_org(users=users))


def test_own_manager_and_duplicate_ids_are_refused() -> None:
    users = [{"id": "a", "name": "A", "manager": "a"}, {"id": "a", "name": "A2"}]
    problems = _problems(_org(users=users))
    assert "duplicate user ids: ['a']" in problems
    assert "user 'a' is their own manager" in problems


def test_bad_delegations_are_refused() -> None:
    delegations = [
        {
            "from": "b",
            "to": "ghost",
            "starts_at": "2024-01-02T00:00:00Z",
            "ends_at": "2024-01-01T00:00:00Z",
        },
        {
            "from": "c",
            "to": "c",
            "starts_at": "2024-01-01T00:00:00Z",
            "ends_at": "2024-01-02T00:00:00Z",
        },
    ]
    problems = _problems(_org(delegations=delegations))
    assert "'ghost' is not a user" in problems
    assert "ends_at must be after starts_at" in problems
    assert "cannot delegate to themself" in problems


def test_delegation_times_need_an_offset() -> None:
    delegations = [
        {
            "from": "b",
            "to": "c",
            "starts_at": "2024-01-01T00:00:00",
            "ends_at": "2024-01-02T00:00:00Z",
        }
    ]
    assert "timezone" in _problems(_org(delegations=delegations))


def test_read_org_file_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(_org(users=[{"id": "c", "nme": "typo"}])))
    with pytest.raises(OrgError, match=r"org\.yaml: users\.0\.name: Field required"):
        read_org_file(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(OrgError, match="must be a mapping"):
        read_org_file(path)


@pytest.mark.parametrize(
    ("user", "field"),
    [
        ({"id": "c\u0000", "name": "C"}, "users.0.id"),
        ({"id": "c d", "name": "C"}, "users.0.id"),
        ({"id": "c", "name": "C\u0000"}, "users.0.name"),
        ({"id": "c", "name": "C\u0085"}, "users.0.name"),
        ({"id": "c", "name": "C", "email": "c\u0000@x"}, "users.0.email"),
        ({"id": "c", "name": "C", "manager": "b\u0000"}, "users.0.manager"),
    ],
)
def test_org_values_that_become_stored_ids_or_text_are_checked(
    tmp_path: Path, user: dict[str, str], field: str
) -> None:
    # Loaded into PostgreSQL, a NUL would fail the load with a database error.
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(_org(users=[user])), encoding="utf-8")
    with pytest.raises(OrgError, match=rf"org\.yaml: .*{re.escape(field)}: "):
        read_org_file(path)


# --- the demo organisation ------------------------------------------------------


def test_demo_org_has_a_holder_for_every_role_the_policies_name() -> None:
    org = read_org_file(DEMO)
    held = {r for u in org.users for r in u.roles}
    assert held == set(org.roles)  # every role has somebody, no role is unused
    named = set()
    for policy in load_policies(ROOT / "policies").values():
        named |= {a.role for s in policy.stages for a in s.approvers if a.role}
        if policy.timers.escalation_role:
            named.add(policy.timers.escalation_role)
    assert named and named <= held


def test_demo_org_chains_reach_the_general_manager() -> None:
    org = read_org_file(DEMO)
    manager = {u.id: u.manager for u in org.users}
    assert len(org.users) == 28
    for user in org.users:
        if user.id in ("gm_wang", "admin"):
            assert user.manager is None
            continue
        chain = [user.id]
        while manager[chain[-1]] is not None:
            chain.append(manager[chain[-1]])  # type: ignore[arg-type]
        assert chain[-1] == "gm_wang", chain
    assert [u.id for u in org.users if u.is_admin] == ["admin"]


def test_demo_delegation_is_in_the_past() -> None:
    org = read_org_file(DEMO)
    assert org.delegations
    assert all(d.ends_at < datetime.now(UTC) for d in org.delegations)


# --- loading --------------------------------------------------------------------

SNAPSHOT = {
    "users": "SELECT xmin::text, id, name, email, manager_id, is_admin, active FROM users",
    "roles": "SELECT xmin::text, name, title FROM roles",
    "user_roles": "SELECT xmin::text, user_id, role FROM user_roles",
    "delegations": "SELECT xmin::text, id, from_user, to_user, starts_at, ends_at, reason"
    " FROM delegations",
}


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[Any]]:
    # xmin changes whenever a row is rewritten, even with identical values.
    async with sessions() as s:
        return {
            name: sorted(tuple(r) for r in await s.execute(text(sql + " ORDER BY 2, 3")))
            for name, sql in SNAPSHOT.items()
        }


async def test_loading_twice_writes_nothing(
    scratch_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load_org_file(scratch_sessions, DEMO)
    first = await _snapshot(scratch_sessions)
    await load_org_file(scratch_sessions, DEMO)
    assert await _snapshot(scratch_sessions) == first
    assert len(first["users"]) == 28
    assert len(first["roles"]) == 25
    assert len(first["delegations"]) == 1


async def test_removed_users_are_deactivated_and_come_back(
    scratch_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await load_org_file(scratch_sessions, DEMO)
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["users"] = [u for u in data["users"] if u["id"] != "om_yang"]
    for user in data["users"]:
        if user["id"] == "om_wu":  # a change of manager and roles is applied too
            user["manager"] = "dsd_liu"
            user["roles"] = ["office_manager", "order_desk"]
    smaller = tmp_path / "org.yaml"
    smaller.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    await load_org_file(scratch_sessions, smaller)
    async with scratch_sessions() as s:
        gone = await get_user(s, "om_yang")
        assert gone is not None and not gone.active and gone.roles == []
        assert await users_with_role(s, "office_manager") == ["om_wu"]
        assert await users_with_role(s, "order_desk") == ["od_peng", "om_wu"]
        assert await manager_chain(s, "om_wu") == ["dsd_liu", "sd_chen", "gm_wang"]

    await load_org_file(scratch_sessions, DEMO)
    async with scratch_sessions() as s:
        back = await get_user(s, "om_yang")
        assert back is not None and back.active and back.roles == ["office_manager"]
        assert await users_with_role(s, "office_manager") == ["om_wu", "om_yang"]
        assert await users_with_role(s, "order_desk") == ["od_peng"]


async def test_delegations_follow_the_file(
    scratch_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["delegations"] = [
        {
            "from": "fh_gao",
            "to": "fin_he",
            "starts_at": "2030-01-01T00:00:00+08:00",
            "ends_at": "2030-01-10T00:00:00+08:00",
            "reason": "Business trip",
        }
    ]
    other = tmp_path / "org.yaml"
    other.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    await load_org_file(scratch_sessions, DEMO)
    await load_org_file(scratch_sessions, other)
    async with scratch_sessions() as s:
        during = await active_delegations(s, datetime(2030, 1, 5, tzinfo=UTC))
        assert [(d.from_user, d.to_user, d.reason) for d in during] == [
            ("fh_gao", "fin_he", "Business trip")
        ]
        assert await active_delegations(s, datetime(2024, 7, 5, tzinfo=UTC)) == []
        assert await active_delegations(s, datetime(2030, 1, 10, tzinfo=UTC)) == []  # end excluded


async def test_the_org_load_leaves_delegations_made_through_the_api_alone(
    scratch_sessions: async_sessionmaker[AsyncSession],
) -> None:
    from db.delegations import new_row

    await load_org_file(scratch_sessions, DEMO)
    async with scratch_sessions() as s, s.begin():
        s.add(
            new_row(
                from_user="fh_gao",
                to_user="fin_he",
                starts_at=datetime(2030, 2, 1, tzinfo=UTC),
                ends_at=datetime(2030, 2, 5, tzinfo=UTC),
                request_types=["customer_gift"],
                reason="made through the API",
                created_by="fh_gao",
                idempotency_key=None,
            )
        )
    await load_org_file(scratch_sessions, DEMO)  # the file names no such delegation
    async with scratch_sessions() as s:
        at = datetime(2030, 2, 2, tzinfo=UTC)
        found = await active_delegations(s, at)
        assert [(d.from_user, d.to_user, d.request_types) for d in found] == [
            ("fh_gao", "fin_he", ["customer_gift"])
        ]
        # Scoped by request type.
        assert await active_delegations(s, at, "customer_gift") == found
        assert await active_delegations(s, at, "big_customer_contract") == []


async def test_an_invalid_file_writes_nothing(
    scratch_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await load_org_file(scratch_sessions, DEMO)
    before = await _snapshot(scratch_sessions)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_org(users=[{"id": "x", "name": "X", "manager": "y"}])))
    with pytest.raises(OrgError, match="manager 'y' is not a user"):
        await load_org_file(scratch_sessions, bad)
    assert await _snapshot(scratch_sessions) == before


async def test_get_user(scratch_sessions: async_sessionmaker[AsyncSession]) -> None:
    await load_org_file(scratch_sessions, DEMO)
    async with scratch_sessions() as s:
        user = await get_user(s, "fin_he")
        assert user is not None
        assert (user.name, user.email, user.manager_id, user.roles, user.is_admin) == (
            "He (Finance staff)",
            "fin_he@demo.example",
            "fh_gao",
            ["finance_staff"],
            False,
        )
        admin = await get_user(s, "admin")
        assert admin is not None and admin.is_admin and admin.roles == []
        assert await get_user(s, "nobody") is None
