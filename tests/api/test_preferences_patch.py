"""``PATCH /v1/me/preferences``: only what the body carries becomes the user's own; the rest
keeps following the org file and the defaults. ``GET /v1/me`` says which locale is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.directory import load_org_file
from db.models import UserPreferenceRow
from db.preferences import get_preferences, set_preferences, update_preferences
from notify.preferences import Preferences, PreferencesPatch
from tests.api.test_preferences import json_values
from tests.support.api import Auth

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("channels", "locale", "time_zone")
DEFAULTS = {"channels": ["email"], "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
USER = "smm_xie"  # no preferences in the org file, none set by other tests

channels = st.lists(st.sampled_from(["email", "dingtalk", "wecom", "feishu"]), unique=True)
locales = st.sampled_from(["zh-CN", "en"])
zones = st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "UTC", "America/New_York"])
valid_patches = st.fixed_dictionaries(
    {}, optional={"channels": channels, "locale": locales, "time_zone": zones}
)
# What a row may hold before: nothing, or values (each maybe NULL) of which some are the user's.
rows = st.none() | st.fixed_dictionaries(
    {
        "channels": st.none() | channels,
        "locale": st.none() | locales,
        "time_zone": st.none() | zones,
        "user_fields": st.lists(st.sampled_from(FIELDS), unique=True).map(sorted),
    }
)


async def _row(sessions: async_sessionmaker[AsyncSession], user: str) -> dict[str, Any] | None:
    async with sessions() as s:
        found = (
            (
                await s.execute(
                    select(UserPreferenceRow.__table__).where(UserPreferenceRow.user_id == user)
                )
            )
            .mappings()
            .one_or_none()
        )
    return dict(found) if found is not None else None


async def _put_row(
    sessions: async_sessionmaker[AsyncSession], user: str, row: dict[str, Any] | None
) -> None:
    async with sessions.begin() as s:
        await s.execute(delete(UserPreferenceRow).where(UserPreferenceRow.user_id == user))
        if row is not None:
            source = "user" if row.get("user_fields") else "org"
            await s.execute(
                insert(UserPreferenceRow),
                [{"source": source, **row, "user_id": user}],
            )


@pytest.fixture
async def as_found(db_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """The test user's row afterwards as the test found it (the database is the session's)."""
    before = await _row(db_sessions, USER)
    try:
        yield
    finally:
        await _put_row(db_sessions, USER, before)


@pytest.mark.usefixtures("as_found")
async def test_patch_saves_only_what_it_carries(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _put_row(db_sessions, USER, None)
    me = await api.get("/v1/me", headers=auth(USER))
    assert me.json()["locale"] is None
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json={"locale": "en"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {**DEFAULTS, "locale": "en"}
    row = await _row(db_sessions, USER)
    assert row is not None
    # only the locale is the user's; the rest still follows the defaults
    assert (row["channels"], row["locale"], row["time_zone"]) == (None, "en", None)
    assert row["user_fields"] == ["locale"]
    assert (await api.get("/v1/me", headers=auth(USER))).json()["locale"] == "en"
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json={"channels": []})
    assert resp.json() == {**DEFAULTS, "channels": [], "locale": "en"}
    assert (await api.get("/v1/me/preferences", headers=auth(USER))).json() == resp.json()
    row = await _row(db_sessions, USER)
    assert row is not None
    assert (row["time_zone"], row["user_fields"]) == (None, ["channels", "locale"])
    # an empty body changes nothing
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json={})
    assert resp.status_code == 200
    assert resp.json() == {**DEFAULTS, "channels": [], "locale": "en"}


@pytest.mark.usefixtures("as_found")
async def test_an_empty_patch_saves_no_row(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _put_row(db_sessions, USER, None)
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json={})
    assert (resp.status_code, resp.json()) == (200, DEFAULTS)
    assert await _row(db_sessions, USER) is None


async def test_me_says_the_org_files_locale_is_saved(api: httpx.AsyncClient, auth: Auth) -> None:
    assert (await api.get("/v1/me", headers=auth("am_li"))).json()["locale"] == "en"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["sms"]}, "channels.0"),
        ({"channels": ["email", "email"]}, "channels"),
        ({"channels": "email"}, "channels"),
        ({"locale": "fr"}, "locale"),
        ({"locale": None}, "locale"),
        ({"channels": None}, "channels"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "Asia/Shanghai\x00"}, "time_zone"),
        ({"time_zone": None}, "time_zone"),
        ({"colour": "blue"}, "colour"),
        ({"locale": "en", "colour": "blue"}, "colour"),
    ],
)
@pytest.mark.usefixtures("as_found")
async def test_bad_patches_are_422_naming_the_field_and_change_nothing(
    api: httpx.AsyncClient,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    await _put_row(db_sessions, USER, None)
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert await _row(db_sessions, USER) is None


async def test_patch_needs_a_token_and_a_json_object(api: httpx.AsyncClient, auth: Auth) -> None:
    assert (await api.patch("/v1/me/preferences", json={})).status_code == 401
    bodies: list[Any] = [[], "en", 1]
    for body in bodies:
        resp = await api.patch("/v1/me/preferences", headers=auth(USER), json=body)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "validation_error"


@given(body=st.dictionaries(st.sampled_from([*FIELDS, "colour", ""]), json_values, max_size=4))
def test_any_patch_is_accepted_as_given_or_refused_naming_each_wrong_field(
    body: dict[str, Any],
) -> None:
    try:
        patch = PreferencesPatch.model_validate(body)
    except ValidationError as exc:
        named = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        assert named, exc
        assert named <= set(body)
        return
    given_ = patch.given()
    assert set(given_) == set(body)
    # what is accepted is what a whole PUT would accept for those fields
    assert Preferences.model_validate({**DEFAULTS, **given_}).model_dump() == {
        **DEFAULTS,
        **given_,
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=rows, body=valid_patches)
@pytest.mark.usefixtures("as_found")
async def test_any_valid_patch_leaves_the_other_fields_as_they_were(
    api: httpx.AsyncClient,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
    before: dict[str, Any] | None,
    body: dict[str, Any],
) -> None:
    await _put_row(db_sessions, USER, before)
    shown = (await api.get("/v1/me/preferences", headers=auth(USER))).json()
    resp = await api.patch("/v1/me/preferences", headers=auth(USER), json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {**shown, **body}
    assert (await api.get("/v1/me/preferences", headers=auth(USER))).json() == {**shown, **body}
    row = await _row(db_sessions, USER)
    if before is None and not body:
        assert row is None
        return
    assert row is not None
    for field in FIELDS:
        stored = body[field] if field in body else (before or {}).get(field)
        assert row[field] == stored, field
    owned = set(before["user_fields"]) if before else set()
    assert row["user_fields"] == sorted(owned | set(body))
    me = (await api.get("/v1/me", headers=auth(USER))).json()
    assert me["locale"] == row["locale"]


async def test_what_a_patch_left_out_follows_the_org_file(
    scratch_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    org = ROOT / "org" / "demo.yaml"
    await load_org_file(scratch_sessions, org)  # am_li: locale en, time zone Asia/Shanghai
    async with scratch_sessions.begin() as s:
        await update_preferences(s, "am_li", {"channels": ["feishu"]})
        await update_preferences(s, "sd_chen", {"locale": "en"})  # no org preferences
        await set_preferences(s, "dsd_liu", Preferences(channels=["wecom"], locale="en"))
    changed = tmp_path / "org.yaml"
    changed.write_text(
        org.read_text("utf-8")
        .replace("locale: en, time_zone: Asia/Shanghai", "locale: zh-CN, time_zone: UTC")
        .replace("channels: [email], locale: zh-CN}", "channels: [dingtalk], locale: zh-CN}"),
        "utf-8",
    )
    await load_org_file(scratch_sessions, changed)

    async def prefs(user: str) -> tuple[list[Any], str, str]:
        async with scratch_sessions() as s:
            p = await get_preferences(s, user, "zh-CN", "Asia/Shanghai")
        return (list(p.channels), p.locale, p.time_zone)

    # the org's new values where the user chose nothing; the user's own where they did
    assert await prefs("am_li") == (["feishu"], "zh-CN", "UTC")
    assert await prefs("sd_chen") == (["email"], "en", "Asia/Shanghai")
    assert await prefs("dsd_liu") == (["wecom"], "en", "Asia/Shanghai")
    # the user then chooses the locale too: a later reload keeps it
    async with scratch_sessions.begin() as s:
        await update_preferences(s, "am_li", {"locale": "en"})
    await load_org_file(scratch_sessions, changed)
    assert await prefs("am_li") == (["feishu"], "en", "UTC")
    # an org file that states no preferences: the defaults where the user chose nothing
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        changed.read_text("utf-8")
        .replace(", locale: zh-CN, time_zone: UTC", "")
        .replace(", channels: [dingtalk], locale: zh-CN}", "}"),
        "utf-8",
    )
    await load_org_file(scratch_sessions, plain)
    assert await prefs("am_li") == (["feishu"], "en", "Asia/Shanghai")
    assert await prefs("sd_chen") == (["email"], "en", "Asia/Shanghai")
    assert await prefs("dsd_liu") == (["wecom"], "en", "Asia/Shanghai")
    async with scratch_sessions() as s:
        owned = dict(
            (
                await s.execute(
                    select(UserPreferenceRow.user_id, UserPreferenceRow.user_fields).where(
                        UserPreferenceRow.user_id.in_(["am_li", "sd_chen", "dsd_liu"])
                    )
                )
            ).all()
        )
    assert owned == {
        "am_li": ["channels", "locale"],
        "sd_chen": ["locale"],
        "dsd_liu": ["channels", "locale", "time_zone"],
    }
