"""Company sign-in: the API takes the access tokens of a real OpenID Connect provider.

The provider is panva's oidc-provider on node (tests/support/oidc.py), signed in to
through its own login form with the authorization-code flow and PKCE: nothing stubbed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import InvalidToken, issue_token
from api.oidc import OidcVerifier
from common.settings import Settings
from db.models import UserRow
from tests.support.api import make_settings, running, temporal_target
from tests.support.oidc import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_AUDIENCE,
    SHORT_CLIENT_ID,
    OpenIdProvider,
    log_in,
    sign_in,
)
from tests.support.pages import Page, assert_strict
from tests.support.servers import closed_port


def test_the_provider_serves_discovery_jwks_and_jwt_access_tokens(
    oidc_provider: OpenIdProvider,
) -> None:
    discovery = httpx.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == oidc_provider.issuer
    jwks = httpx.get(discovery["jwks_uri"]).json()
    assert [k["kid"] for k in jwks["keys"]] == [oidc_provider.jwk["kid"]]
    assert all("d" not in k for k in jwks["keys"])

    token = sign_in(oidc_provider, "li")["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == oidc_provider.jwk["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == AUDIENCE
    assert claims["preferred_username"] == "am_li"


@pytest.fixture(scope="module")
def oidc_settings(
    pg_url: str, temporal_local: WorkflowEnvironment, oidc_provider: OpenIdProvider
) -> Settings:
    return make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_OIDC_ISSUER=oidc_provider.issuer,
        APPROVALS_OIDC_AUDIENCE=AUDIENCE,
        APPROVALS_OIDC_CLIENT_ID=CLIENT_ID,
        APPROVALS_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        APPROVALS_OIDC_LEEWAY_SECONDS=0,
        # Where the provider sends the browser back: the ASGI client's base URL.
        APPROVALS_PUBLIC_BASE_URL="http://api",
        # Every unknown kid refetches here; the rate limit has a test of its own.
        APPROVALS_OIDC_JWKS_REFETCH_SECONDS=0,
    )


@pytest.fixture(scope="module")
async def oidc_api(oidc_settings: Settings, demo_org: None) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(oidc_settings)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_401(resp: httpx.Response, *words: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    error = resp.json()["error"]
    assert error["code"] == "unauthenticated"
    for word in words:
        assert word in error["message"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(op: OpenIdProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": op.issuer,
        "aud": AUDIENCE,
        "sub": "acct-li",
        "preferred_username": "am_li",
        "iat": now,
        "exp": now + 300,
    }
    return {**claims, **changes}


def _signed_by_op(op: OpenIdProvider, **changes: Any) -> str:
    """A token the provider's own key signs, with claims the provider would never issue."""
    return jwt.encode(
        _claims(op, **changes), op.key, algorithm=op.jwk["alg"], headers={"kid": op.jwk["kid"]}
    )


async def test_a_provider_token_is_the_directory_user_its_claim_names(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = sign_in(oidc_provider, "li")["access_token"]
    resp = await oidc_api.get("/v1/me", headers=_bearer(token))
    assert resp.status_code == 200, resp.text
    # The provider's subject is "acct-li"; the directory user is the claim's "am_li".
    assert resp.json()["id"] == "am_li"


async def test_a_token_for_another_audience_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = sign_in(oidc_provider, "li", resource=OTHER_AUDIENCE)["access_token"]
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(token)), "another service")


async def test_a_token_from_another_issuer_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = _signed_by_op(oidc_provider, iss="https://evil.example")
    resp = await oidc_api.get("/v1/me", headers=_bearer(token))
    _assert_401(resp, "another identity provider")


async def test_an_expired_provider_token_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = sign_in(oidc_provider, "li", client_id=SHORT_CLIENT_ID)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1
    await asyncio.sleep(max(0.0, claims["exp"] - time.time()) + 1.1)
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(token)), "expired")


async def test_an_unsigned_token_naming_the_provider_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": oidc_provider.jwk["kid"]}
    token = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(oidc_provider)).encode())}."
    )
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(token)), "algorithm")


async def test_hs256_signed_with_the_providers_public_key_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    """The classic confusion: the public key's bytes used as an HMAC secret."""
    public_pem = oidc_provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with httpx.AsyncClient() as op:
        jwks = (await op.get(f"{oidc_provider.issuer}/jwks")).content
    header = {"alg": "HS256", "typ": "JWT", "kid": oidc_provider.jwk["kid"]}
    body = _claims(oidc_provider)
    for secret in (public_pem, jwks):
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
        _assert_401(await oidc_api.get("/v1/me", headers=_bearer(token)), "algorithm")


async def test_a_tampered_provider_token_is_401(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = sign_in(oidc_provider, "li")["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["preferred_username"] = "admin"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(forged)), "not valid")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(f"{header}.{payload}.{flipped}")))


async def test_someone_unknown_to_the_directory_is_403_with_a_clear_error(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    token = sign_in(oidc_provider, "stranger")["access_token"]
    resp = await oidc_api.get("/v1/me", headers=_bearer(token))
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert error["code"] == "forbidden"
    assert "directory" in error["message"]
    assert error["details"] == {"user_claim": "preferred_username", "user": "nobody_here"}


async def test_an_inactive_directory_user_is_403(
    oidc_api: httpx.AsyncClient,
    oidc_provider: OpenIdProvider,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions.begin() as session:
        if await session.get(UserRow, "oidc_leaver") is None:
            session.add(UserRow(id="oidc_leaver", name="Left", active=False))
    token = sign_in(oidc_provider, "leaver")["access_token"]
    resp = await oidc_api.get("/v1/me", headers=_bearer(token))
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["details"]["user"] == "oidc_leaver"


async def test_after_key_rotation_the_new_key_is_fetched_and_the_old_one_refused(
    oidc_api: httpx.AsyncClient, oidc_provider: OpenIdProvider
) -> None:
    old = sign_in(oidc_provider, "li")["access_token"]
    assert (await oidc_api.get("/v1/me", headers=_bearer(old))).status_code == 200
    oidc_provider.rotate()
    new = sign_in(oidc_provider, "li")["access_token"]
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    resp = await oidc_api.get("/v1/me", headers=_bearer(new))
    assert resp.status_code == 200, resp.text
    _assert_401(await oidc_api.get("/v1/me", headers=_bearer(old)), "key")


async def test_an_unknown_kid_refetches_the_keys_at_most_once_per_interval(
    oidc_settings: Settings, oidc_provider: OpenIdProvider
) -> None:
    now = [1000.0]
    settings = oidc_settings.model_copy(update={"oidc_jwks_refetch_seconds": 10.0})
    verifier = OidcVerifier(settings, httpx.AsyncClient(), clock=lambda: now[0])
    try:
        assert await verifier.user_id(sign_in(oidc_provider, "li")["access_token"]) == "am_li"
        oidc_provider.rotate()
        rotated = sign_in(oidc_provider, "li")["access_token"]
        now[0] += 5
        with pytest.raises(InvalidToken, match="key"):
            await verifier.user_id(rotated)
        now[0] += 5
        assert await verifier.user_id(rotated) == "am_li"
    finally:
        await verifier.aclose()


async def test_the_provider_down_before_any_key_is_fetched_is_503(
    oidc_settings: Settings, demo_org: None
) -> None:
    settings = oidc_settings.model_copy(update={"oidc_issuer": f"http://127.0.0.1:{closed_port()}"})
    async with running(create_app(settings)) as client:
        token = jwt.encode(
            {"iss": settings.oidc_issuer, "aud": AUDIENCE, "exp": int(time.time()) + 60},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        resp = await client.get("/v1/me", headers=_bearer(token))
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize("allow", [None, "false"])
async def test_production_refuses_local_tokens_unless_enabled(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None, allow: str | None
) -> None:
    extra = {"APPROVALS_ALLOW_LOCAL_TOKENS": allow} if allow else {}
    settings = make_settings(pg_url, temporal_target(temporal_local), **PRODUCTION, **extra)
    assert not settings.local_tokens_allowed
    async with running(create_app(settings)) as client:
        resp = await client.get("/v1/me", headers=_bearer(issue_token(settings, "am_li")))
    _assert_401(resp, "APPROVALS_ALLOW_LOCAL_TOKENS")


async def test_production_accepts_local_tokens_when_enabled(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None
) -> None:
    settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        **PRODUCTION,
        APPROVALS_ALLOW_LOCAL_TOKENS="true",
    )
    async with running(create_app(settings)) as client:
        resp = await client.get("/v1/me", headers=_bearer(issue_token(settings, "am_li")))
    assert resp.status_code == 200, resp.text


def test_development_refuses_local_tokens_when_told_to(pg_url: str) -> None:
    settings = make_settings(pg_url, "localhost:1", APPROVALS_ALLOW_LOCAL_TOKENS="false")
    assert not settings.local_tokens_allowed
    assert make_settings(pg_url, "localhost:1").local_tokens_allowed


@pytest.mark.parametrize("algorithms", ["HS256", "RS256,none", ""])
def test_settings_refuse_symmetric_or_no_algorithms(algorithms: str) -> None:
    with pytest.raises(ValidationError, match="APPROVALS_OIDC_ALGORITHMS"):
        Settings(
            APPROVALS_OIDC_ISSUER="http://127.0.0.1:1",
            APPROVALS_OIDC_AUDIENCE=AUDIENCE,
            APPROVALS_OIDC_ALGORITHMS=algorithms,
        )


def test_settings_want_an_audience_with_an_issuer() -> None:
    with pytest.raises(ValidationError, match="APPROVALS_OIDC_AUDIENCE"):
        Settings(APPROVALS_OIDC_ISSUER="http://127.0.0.1:1")


# --- the web pages' sign-in: authorization code with PKCE, a session, CSRF


async def _browser_signs_in(
    api: httpx.AsyncClient, op: OpenIdProvider, login: str, next_path: str = "/inbox"
) -> httpx.Response:
    """The callback's answer after ``login`` signs in at the provider, as a browser would."""
    start = await api.get("/auth/login", params={"next": next_path})
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{op.issuer}/auth?")
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["code_challenge"][0]
    assert sent["redirect_uri"] == ["http://api/auth/callback"]
    with httpx.Client(timeout=10) as browser_at_op:
        back = log_in(browser_at_op, start.headers["location"], login)
    return await api.get(back)


async def test_the_web_signs_in_with_code_and_pkce_into_a_session(
    oidc_settings: Settings, oidc_provider: OpenIdProvider, demo_org: None
) -> None:
    async with running(create_app(oidc_settings)) as api:
        done = await _browser_signs_in(api, oidc_provider, "li", "/inbox#request=r-1")
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/inbox#request=r-1"
        cookie = next(c for c in done.headers.get_list("set-cookie") if "approvals_session=" in c)
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # development: plain http on localhost

        me = await api.get("/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["id"] == "am_li"
        session = (await api.get("/auth/session")).json()
        assert session["signed_in"] is True and session["user_id"] == "am_li"

        # The cookie alone never changes anything: the session's CSRF token must come too.
        forged = await api.post("/v1/requests", json={})
        assert forged.status_code == 403, forged.text
        assert "X-CSRF-Token" in forged.json()["error"]["message"]
        wrong = await api.post("/v1/requests", json={}, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        checked = await api.post(
            "/v1/requests", json={}, headers={"X-CSRF-Token": session["csrf_token"]}
        )
        assert checked.status_code == 422, checked.text  # past the sign-in, to the body

        assert (await api.post("/auth/logout")).status_code == 403
        copy = api.cookies["approvals_session"]
        out = await api.post("/auth/logout", headers={"X-CSRF-Token": session["csrf_token"]})
        assert out.status_code == 204
        # The browser drops the cookie; a copy of it is of no use any more either.
        assert "approvals_session" not in api.cookies
        _assert_401(await api.get("/v1/me"))
        replayed = await api.get("/v1/me", headers={"Cookie": f"approvals_session={copy}"})
        _assert_401(replayed, "sign in again")


async def test_someone_unknown_to_the_directory_gets_a_page_not_a_500(
    oidc_settings: Settings, oidc_provider: OpenIdProvider, demo_org: None
) -> None:
    async with running(create_app(oidc_settings)) as api:
        api.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
        page = await _browser_signs_in(api, oidc_provider, "stranger")
        assert page.status_code == 403
        assert page.headers["content-type"].startswith("text/html")
        assert "nobody_here" in page.text and "管理员" in page.text
        assert_strict(page.headers, Page(page.text))  # the CSP of every other page
        assert "approvals_session" not in page.headers.get("set-cookie", "")
        assert (await api.get("/auth/session")).json()["signed_in"] is False


async def test_a_callback_that_is_not_this_browsers_sign_in_is_refused_with_a_page(
    oidc_settings: Settings, demo_org: None
) -> None:
    async with running(create_app(oidc_settings)) as api:
        start = await api.get("/auth/login")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        wrong_state = await api.get("/auth/callback", params={"code": "c", "state": state + "x"})
        assert wrong_state.status_code == 400
        assert "this sign-in" in wrong_state.text
        start = await api.get("/auth/login")  # a refusal ends the attempt: start again
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        bad_code = await api.get("/auth/callback", params={"code": "made-up", "state": state})
        assert bad_code.status_code == 400
        assert "refused the code" in bad_code.text
        denied = await api.get("/auth/callback", params={"error": "access_denied"})
        assert denied.status_code == 400 and "access_denied" in denied.text
    async with running(create_app(oidc_settings)) as fresh_browser:
        no_cookie = await fresh_browser.get("/auth/callback", params={"code": "c", "state": state})
        assert no_cookie.status_code == 400


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/", "/\\evil"])
async def test_sign_in_only_returns_to_this_site(
    oidc_settings: Settings, oidc_provider: OpenIdProvider, demo_org: None, next_path: str
) -> None:
    async with running(create_app(oidc_settings)) as api:
        done = await _browser_signs_in(api, oidc_provider, "li", next_path)
        assert done.headers["location"] == "/inbox"


async def test_session_cookies_are_secure_outside_development(
    pg_url: str, temporal_local: WorkflowEnvironment, oidc_provider: OpenIdProvider
) -> None:
    settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        **{**PRODUCTION, "APPROVALS_PUBLIC_BASE_URL": "http://api"},
        APPROVALS_OIDC_ISSUER="https://id.example.com",
        APPROVALS_OIDC_AUDIENCE=AUDIENCE,
        APPROVALS_OIDC_CLIENT_ID=CLIENT_ID,
    )
    settings = settings.model_copy(update={"oidc_issuer": oidc_provider.issuer})
    async with running(create_app(settings)) as api:
        start = await api.get("/auth/login")
    cookie = start.headers["set-cookie"]
    assert "approvals_login=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


async def test_without_company_sign_in_the_login_route_says_so(api: httpx.AsyncClient) -> None:
    resp = await api.get("/auth/login")
    assert resp.status_code == 404
    assert "APPROVALS_OIDC_ISSUER" in resp.json()["error"]["message"]
    session = await api.get("/auth/session")
    assert session.json() == {"signed_in": False, "sign_in_url": None}


PRODUCTION = {
    "APPROVALS_ENV": "production",
    "APPROVALS_TOKEN_SECRET": "production-token-secret-0123456789abcdef",
    "APPROVALS_SIGNING_SECRET": "production-signing-secret-0123456789abcdef",
    "APPROVALS_PUBLIC_BASE_URL": "https://approvals.example.com",
    "APPROVALS_PAYLOAD_KEYS": "prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
}
