"""Bearer tokens: who may call the API at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import issue_token, user_id_from_token
from common.settings import Settings
from db.models import UserRow
from tests.support.api import Auth


def _assert_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    body = resp.json()
    assert body["error"]["code"] == "unauthenticated"
    assert body["error"]["message"]


def test_issued_token_names_the_user_and_expires_per_settings(settings: Settings) -> None:
    token = issue_token(settings, "am_li")
    assert user_id_from_token(settings, token) == "am_li"
    claims = jwt.decode(token, settings.token_secret, algorithms=["HS256"])
    ttl = claims["exp"] - claims["iat"]
    assert ttl == settings.token_ttl_hours * 3600


async def test_missing_token_is_401(api: httpx.AsyncClient) -> None:
    _assert_401(await api.get("/v1/policies"))
    _assert_401(await api.get("/v1/inbox"))
    _assert_401(await api.post("/v1/requests", json={}))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Bearer ",
        "Basic YW1fbGk6cGFzcw==",
    ],
)
async def test_malformed_authorization_is_401(api: httpx.AsyncClient, header: str) -> None:
    _assert_401(await api.get("/v1/policies", headers={"Authorization": header}))


async def test_token_signed_with_another_secret_is_401(api: httpx.AsyncClient) -> None:
    forged = jwt.encode(
        {"sub": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)},
        "some-other-secret-some-other-secret!!",
        algorithm="HS256",
    )
    _assert_401(await api.get("/v1/policies", headers={"Authorization": f"Bearer {forged}"}))


async def test_expired_token_is_401(api: httpx.AsyncClient, settings: Settings) -> None:
    expired = jwt.encode(
        {"sub": "am_li", "exp": datetime.now(UTC) - timedelta(seconds=5)},
        settings.token_secret,
        algorithm="HS256",
    )
    resp = await api.get("/v1/policies", headers={"Authorization": f"Bearer {expired}"})
    _assert_401(resp)
    assert "expired" in resp.json()["error"]["message"]


async def test_token_without_expiry_is_401(api: httpx.AsyncClient, settings: Settings) -> None:
    forever = jwt.encode({"sub": "am_li"}, settings.token_secret, algorithm="HS256")
    _assert_401(await api.get("/v1/policies", headers={"Authorization": f"Bearer {forever}"}))


async def test_unsigned_token_is_401(api: httpx.AsyncClient) -> None:
    unsigned = jwt.encode(
        {"sub": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)}, "", algorithm="none"
    )
    _assert_401(await api.get("/v1/policies", headers={"Authorization": f"Bearer {unsigned}"}))


async def test_unknown_user_is_401(api: httpx.AsyncClient, auth: Auth) -> None:
    _assert_401(await api.get("/v1/policies", headers=auth("nobody_here")))


async def test_inactive_user_is_401(
    api: httpx.AsyncClient, auth: Auth, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with db_sessions() as s, s.begin():
        if await s.get(UserRow, "left_company") is None:
            s.add(UserRow(id="left_company", name="Former employee", active=False))
    _assert_401(await api.get("/v1/policies", headers=auth("left_company")))


async def test_valid_token_of_an_active_user_is_accepted(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    resp = await api.get("/v1/policies", headers=auth("am_li"))
    assert resp.status_code == 200, resp.text
