"""Preferences: what ``PUT /v1/me/preferences`` accepts (a property over any JSON), the API's
answers, the org file's values, and that a reload of the org file keeps the user's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from common.settings import Settings
from db.directory import load_org_file
from db.models import UserPreferenceRow
from db.preferences import get_preferences, set_preferences
from notify.fanout import Recipient, plan
from notify.preferences import OUTBOUND_KINDS, Preferences
from tests.support.api import Auth, running

ROOT = Path(__file__).resolve().parents[2]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "channels": st.one_of(
            st.lists(st.sampled_from(["email", "dingtalk", "wecom", "feishu", "sms", ""])),
            json_values,
        ),
        "locale": st.sampled_from(["zh-CN", "en", "fr", "zh-cn", ""]) | json_values,
        "time_zone": st.sampled_from(
            ["Asia/Shanghai", "Europe/Berlin", "UTC", "Mars/Olympus", "../../etc/passwd", ""]
        )
        | st.text(),
    },
) | st.dictionaries(st.text(max_size=12), json_values, max_size=3)


@given(body=bodies)
def test_any_body_is_accepted_whole_or_refused_naming_each_wrong_field(
    body: dict[str, Any],
) -> None:
    try:
        prefs = Preferences.model_validate(body)
    except ValidationError as exc:
        named = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        assert named, exc
        assert named <= {"channels", "locale", "time_zone"} | set(body)
        return
    assert set(prefs.channels) <= {"email", "dingtalk", "wecom", "feishu"}
    assert len(set(prefs.channels)) == len(prefs.channels)
    assert prefs.locale in ("zh-CN", "en")
    # what was accepted is carried unchanged (a stored value reads back the same)
    assert Preferences.model_validate(prefs.model_dump()) == prefs


@given(
    kind=st.text(max_size=20) | st.sampled_from(sorted(OUTBOUND_KINDS)),
    channels=st.lists(st.sampled_from(["email", "dingtalk", "wecom", "feishu"]), unique=True),
    email=st.none() | st.just("x@y.example"),
)
def test_fan_out_never_fails_and_every_unreachable_channel_says_why(
    kind: str, channels: list[str], email: str | None
) -> None:
    planned = plan(kind, Recipient("u1", email, True), channels, [], {"wecom"})
    if kind not in OUTBOUND_KINDS:
        assert planned == []
        return
    assert [p.channel for p in planned] == channels
    for p in planned:
        if p.status == "skipped":
            assert p.reason
        else:
            assert p.channel == "wecom" or (p.channel == "email" and email)


async def test_get_shows_defaults_then_what_put_stored(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/me/preferences", headers=auth("om_wu"))
    assert resp.status_code == 200
    assert resp.json() == {"channels": ["email"], "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
    body = {"channels": ["wecom", "email"], "locale": "en", "time_zone": "Europe/Berlin"}
    resp = await api.put("/v1/me/preferences", headers=auth("om_wu"), json=body)
    assert resp.status_code == 200, resp.text
    assert (await api.get("/v1/me/preferences", headers=auth("om_wu"))).json() == body
    resp = await api.put("/v1/me/preferences", headers=auth("om_wu"), json={"channels": []})
    assert resp.json() == {"channels": [], "locale": "zh-CN", "time_zone": "Asia/Shanghai"}


async def test_the_org_file_states_preferences(api: httpx.AsyncClient, auth: Auth) -> None:
    resp = await api.get("/v1/me/preferences", headers=auth("am_li"))
    assert resp.json() == {"channels": ["email"], "locale": "en", "time_zone": "Asia/Shanghai"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["sms"]}, "channels.0"),
        ({"channels": ["email", "email"]}, "channels"),
        ({"locale": "fr"}, "locale"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "Asia/Shanghai\x00"}, "time_zone"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_preferences_are_422_naming_the_field(
    api: httpx.AsyncClient, auth: Auth, body: dict[str, Any], field: str
) -> None:
    resp = await api.put("/v1/me/preferences", headers=auth("om_yang"), json=body)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == [field]


async def test_preferences_need_a_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/me/preferences")).status_code == 401
    assert (await api.put("/v1/me/preferences", json={})).status_code == 401


async def test_reloading_the_org_file_keeps_what_the_user_chose(
    scratch_sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    org = ROOT / "org" / "demo.yaml"
    await load_org_file(scratch_sessions, org)
    async with scratch_sessions() as s:
        assert (await get_preferences(s, "am_li", "zh-CN", "UTC")).locale == "en"
    async with scratch_sessions.begin() as s:
        await set_preferences(s, "dsd_liu", Preferences(channels=["feishu"], locale="en"))
    changed = tmp_path / "org.yaml"
    changed.write_text(
        org.read_text("utf-8").replace("locale: en, time_zone: Asia/Shanghai", "locale: zh-CN"),
        "utf-8",
    )
    await load_org_file(scratch_sessions, changed)
    async with scratch_sessions() as s:
        mine = await get_preferences(s, "dsd_liu", "zh-CN", "UTC")
        assert (mine.channels, mine.locale) == (["feishu"], "en")
        assert (await get_preferences(s, "am_li", "zh-CN", "UTC")).locale == "zh-CN"
    # an org file without any preferences (the old format) still loads
    plain = tmp_path / "plain.yaml"
    plain.write_text(changed.read_text("utf-8").replace(", locale: zh-CN", ""), "utf-8")
    await load_org_file(scratch_sessions, plain)
    async with scratch_sessions() as s:
        assert (await get_preferences(s, "am_li", "zh-CN", "UTC")).locale == "zh-CN"
        assert (await get_preferences(s, "dsd_liu", "zh-CN", "UTC")).channels == ["feishu"]


async def test_a_put_that_leaves_a_field_out_gets_the_deployments_default(
    settings: Settings,
    demo_org: None,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Not the model's own defaults (zh-CN, Asia/Shanghai): the deployment's, as GET
    answers them for what nobody chose."""
    berlin = settings.model_copy(
        update={"default_locale": "en", "default_time_zone": "Europe/Berlin"}
    )
    try:
        await _put_with_defaults_left_out(berlin, auth)
    finally:  # cd_xu chose nothing in the shared database: so he stays
        async with db_sessions() as s:
            await s.execute(delete(UserPreferenceRow).where(UserPreferenceRow.user_id == "cd_xu"))
            await s.commit()


async def _put_with_defaults_left_out(berlin: Settings, auth: Auth) -> None:
    async with running(create_app(berlin)) as client:
        r = await client.put(
            "/v1/me/preferences", json={"channels": ["email"]}, headers=auth("cd_xu")
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"channels": ["email"], "locale": "en", "time_zone": "Europe/Berlin"}
        r = await client.get("/v1/me/preferences", headers=auth("cd_xu"))
        assert r.json() == {"channels": ["email"], "locale": "en", "time_zone": "Europe/Berlin"}
        # What the body names is kept as given.
        whole = {"channels": [], "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
        r = await client.put("/v1/me/preferences", json=whole, headers=auth("cd_xu"))
        assert r.json() == whole
