"""Company sign-in for the web pages: the authorization-code flow with PKCE.

``GET /auth/login`` sends the browser to the identity provider with a fresh ``state``,
``nonce`` and PKCE challenge (kept, signed, in a short-lived HttpOnly cookie for
``/auth`` only); ``GET /auth/callback`` checks ``state``, trades the code for tokens at
the provider's token endpoint (with the client secret and the PKCE verifier), checks
the ID token (signature, issuer, audience = our client id, expiry, ``nonce``), takes
the directory user from its ``APPROVALS_OIDC_USER_CLAIM`` claim and opens a
server-side session (:mod:`db.web_sessions`): the ``approvals_session`` cookie is
HttpOnly, SameSite=Lax, and Secure outside development.

A session signs the pages' API calls in (``api.deps.current_user``); every call that
changes something must carry the session's CSRF token in ``X-CSRF-Token``, which the
page reads from ``GET /auth/session``. ``POST /auth/logout`` ends the session.

Someone the directory does not know gets a page saying so, in zh-CN and en, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import InvalidToken
from api.deps import CSRF_HEADER, SESSION_COOKIE, Services, ServicesDep, SessionDep
from api.errors import ApiError, not_found
from api.oidc import OidcVerifier, ProviderUnavailable
from api.web import links
from api.web.router import render_page
from common.settings import Settings
from db.directory import get_user
from db.web_sessions import end_expired, end_session, find_session, open_session
from domain.errors import ErrorCode
from domain.inbound import InboundError, check_id

log = logging.getLogger("approvals.api.signin")

router = APIRouter(include_in_schema=False)

LOGIN_PATH = "/auth/login"
CALLBACK_PATH = "/auth/callback"
LOGIN_COOKIE = "approvals_login"
LOGIN_SECONDS = 600
"""How long a sign-in at the provider may take before the callback refuses it."""

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "unknown_title": "Not a user of approvals",
        "unknown": "You signed in as {user}, but the approvals directory has no active "
        "user of that name. Ask an administrator to add you, then sign in again.",
        "failed_title": "Sign-in did not work",
        "failed": "The sign-in could not be completed ({reason}). Please try again.",
        "again": "Sign in again",
        "no_oidc": "Company sign-in is not configured on this server.",
    },
    "zh-CN": {
        "unknown_title": "不是审批系统的用户",
        "unknown": "您已用 {user} 登录，但审批系统的通讯录中没有这个有效用户。"
        "请联系管理员添加后再登录。",
        "failed_title": "登录未完成",
        "failed": "登录无法完成（{reason}）。请重试。",
        "again": "重新登录",
        "no_oidc": "此服务器未配置企业账号登录。",
    },
}


def _lang(request: Request) -> str:
    return links.pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"))


def message_page(lang: str, status: int, title_key: str, message: str) -> HTMLResponse:
    """Why the sign-in did not work, with the headers (and CSP) of every other page."""
    t = TEXT[lang]
    return render_page(
        "auth/message.html",
        status=status,
        # It follows the provider's redirect: never keep it in a cache, never index it.
        headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"},
        lang=lang,
        styles=["act.css"],
        scripts=[],
        heading=t[title_key],
        message=message,
        again=t["again"],
        login_path=LOGIN_PATH,
    )


def _page(request: Request, status: int, title_key: str, message: str) -> Response:
    return message_page(_lang(request), status, title_key, message)


def _failed(request: Request, reason: str) -> Response:
    page = _page(request, 400, "failed_title", TEXT[_lang(request)]["failed"].format(reason=reason))
    page.delete_cookie(LOGIN_COOKIE, path="/auth")
    return page


def _secure(settings: Settings) -> bool:
    return settings.environment != "development"


def _redirect_uri(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def _login_key(settings: Settings) -> bytes:
    # Its own key, derived: a login cookie is never mistaken for any other signed thing.
    return hmac.new(settings.signing_secret.encode(), b"web-login-cookie", "sha256").digest()


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never another origin (``//host``, ``/\\host``)."""
    if not value or len(value) > 500 or not value.startswith("/"):
        return "/inbox"
    if value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\\"):
        return "/inbox"
    return value


def _verifier(services: Services) -> OidcVerifier:
    oidc = services.oidc
    if oidc is None or not services.settings.oidc_client_id:
        raise not_found("company sign-in (APPROVALS_OIDC_ISSUER and APPROVALS_OIDC_CLIENT_ID)")
    return oidc


@router.get(LOGIN_PATH, summary="Sign in with the company identity provider")
async def login(
    services: ServicesDep, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    oidc = _verifier(services)
    settings = services.settings
    try:
        metadata = await oidc.metadata()
    except ProviderUnavailable as exc:
        raise ApiError(
            503,
            ErrorCode.UNAVAILABLE.value,
            "the company identity provider cannot be reached; try again",
            headers={"Retry-After": "5"},
        ) from exc
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    code_verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": _redirect_uri(settings),
            "scope": settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    pending = jwt.encode(
        {
            "state": state,
            "nonce": nonce,
            "verifier": code_verifier,
            "next": _safe_next(next_path),
            "exp": int(time.time()) + LOGIN_SECONDS,
        },
        _login_key(settings),
        algorithm="HS256",
    )
    response = RedirectResponse(f"{metadata['authorization_endpoint']}?{query}", status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        pending,
        max_age=LOGIN_SECONDS,
        path="/auth",
        httponly=True,
        secure=_secure(settings),
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(CALLBACK_PATH, summary="Where the identity provider sends the browser back")
async def callback(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    oidc = _verifier(services)
    settings = services.settings
    params = request.query_params
    if params.get("error"):
        # The provider's own words (e.g. access_denied): short, and no secret.
        return _failed(request, params["error"][:100])
    try:
        pending = jwt.decode(
            request.cookies.get(LOGIN_COOKIE, ""), _login_key(settings), algorithms=["HS256"]
        )
    except jwt.InvalidTokenError:
        return _failed(request, "the sign-in took too long or was started in another browser")
    if not hmac.compare_digest(str(pending.get("state")), params.get("state", "")):
        return _failed(request, "the answer does not belong to this sign-in")
    code = params.get("code", "")
    if not code or len(code) > 2000:
        return _failed(request, "the provider sent no code")
    try:
        tokens = await _trade(oidc, settings, code, str(pending["verifier"]))
        claims = await oidc.verified_claims(tokens["id_token"], settings.oidc_client_id)
        if not hmac.compare_digest(str(claims.get("nonce")), str(pending["nonce"])):
            raise InvalidToken("the ID token belongs to another sign-in")
        name = oidc.user_of(claims)
    except (ProviderUnavailable, InvalidToken, KeyError) as exc:
        log.warning("company sign-in failed: %s", exc.__class__.__name__)
        reason = str(exc) if isinstance(exc, InvalidToken) else "the provider's answer"
        return _failed(request, reason)
    try:
        user = await get_user(session, check_id(name))
    except InboundError:
        user = None
    if user is None or not user.active:
        page = _page(
            request, 403, "unknown_title", TEXT[_lang(request)]["unknown"].format(user=name[:200])
        )
        page.delete_cookie(LOGIN_COOKIE, path="/auth")
        return page
    await end_expired(session)
    token = await open_session(session, user.id, timedelta(hours=settings.session_hours))
    response = RedirectResponse(_safe_next(str(pending.get("next"))), status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/auth")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        secure=_secure(settings),
        samesite="lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def _trade(oidc: OidcVerifier, settings: Settings, code: str, verifier: str) -> Any:
    """The provider's token response for ``code`` (client secret and PKCE verifier)."""
    metadata = await oidc.metadata()
    try:
        resp = await oidc.http.post(
            str(metadata["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": _redirect_uri(settings),
                "code_verifier": verifier,
            },
            auth=(settings.oidc_client_id, settings.oidc_client_secret or ""),
            headers={"Accept": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("token endpoint") from exc
    if resp.status_code != 200:
        raise InvalidToken(f"the provider refused the code (HTTP {resp.status_code})")
    try:
        return resp.json()
    except ValueError as exc:
        raise ProviderUnavailable("token endpoint: not JSON") from exc


@router.get("/auth/session", summary="The browser's session: who, and its CSRF token")
async def current_session(
    request: Request, services: ServicesDep, session: SessionDep
) -> JSONResponse:
    """Always 200 (a page asks before anyone signed in; a 401 would be a console error)."""
    found = await find_session(session, request.cookies.get(SESSION_COOKIE, ""))
    offered = services.oidc is not None and bool(services.settings.oidc_client_id)
    body: dict[str, Any] = {"signed_in": False, "sign_in_url": LOGIN_PATH if offered else None}
    if found is not None:
        body |= {
            "signed_in": True,
            "user_id": found.user_id,
            "csrf_token": found.csrf_token,
            "expires_at": found.expires_at.isoformat(),
        }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/auth/logout", summary="Sign out: end the browser's session", status_code=204)
async def logout(
    request: Request,
    session: SessionDep,
    csrf: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await find_session(session, token)
    if found is not None:
        if not csrf or not hmac.compare_digest(csrf, found.csrf_token):
            raise ApiError(
                403, ErrorCode.FORBIDDEN.value, f"sign-out needs the session's {CSRF_HEADER}"
            )
        await end_session(session, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
