"""Dependencies, as ``Annotated`` aliases: the session, the caller, Temporal, policies.

Everything here reads what the app's lifespan built (:class:`Services`); nothing is
built at import.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.auth import InvalidToken, user_id_from_token
from api.errors import ApiError, unauthenticated, unavailable
from api.oidc import OidcVerifier, ProviderUnavailable
from api.temporal_gateway import TemporalGateway
from common.logs import set_request_user
from common.settings import Settings
from db.directory import DirectoryUser, get_user
from db.models import UserPreferenceRow
from db.request_queries import AUDITOR_ROLE, Viewer
from db.web_sessions import find_session
from domain.errors import ErrorCode
from domain.inbound import InboundError, check_id
from domain.localize import localize_view, stage_name
from domain.policy import Policy
from domain.process import RequestView
from domain.text import DEFAULT_LANGUAGE, LANGUAGES, Language, negotiate
from domain.working_time import BusinessCalendar


@dataclass
class Services:
    """What the lifespan builds and every request shares."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: TemporalGateway
    policies: dict[str, Policy]
    calendar: BusinessCalendar
    """The business calendar (working-time deadlines in previews), as the worker loads it."""
    oidc: OidcVerifier | None = None
    """The company identity provider's access tokens (None: APPROVALS_OIDC_ISSUER unset)."""


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


def get_sessions(services: ServicesDep) -> async_sessionmaker[AsyncSession]:
    return services.sessions


def get_temporal(services: ServicesDep) -> TemporalGateway:
    return services.temporal


def get_policies(services: ServicesDep) -> dict[str, Policy]:
    return services.policies


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler succeeds, else rolled back."""
    async with services.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessions)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
TemporalDep = Annotated[TemporalGateway, Depends(get_temporal)]
PoliciesDep = Annotated[dict[str, Policy], Depends(get_policies)]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        # Printable ASCII: the key is stored and becomes part of a Temporal update id.
        pattern=r"^[\x20-\x7E]+$",
        description=(
            "Send the same key again to get the same result instead of a second one "
            "(1 to 200 printable ASCII characters). A key is the caller's own; reusing it "
            "with another body or action is 409."
        ),
    ),
]
"""The ``Idempotency-Key`` header, as every route that takes one reads it."""


def get_calendar(services: ServicesDep) -> BusinessCalendar:
    return services.calendar


CalendarDep = Annotated[BusinessCalendar, Depends(get_calendar)]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token of the company identity provider (OpenID Connect; the "
    "user is its `APPROVALS_OIDC_USER_CLAIM` claim), or in development a token from "
    "`approvals token USER_ID` (HS256 JWT; `sub` is the user id).",
)

SESSION_COOKIE = "approvals_session"
"""A browser signed in through the company identity provider (api/web/signin.py)."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LOCAL_TOKENS_REFUSED = (
    "this is not an access token of the company identity provider, and locally minted "
    "tokens are refused outside development (APPROVALS_ALLOW_LOCAL_TOKENS=true accepts them)"
)


async def current_user(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> DirectoryUser:
    """The active directory user the bearer token names (else the browser's session).

    A session (cookie) must send its CSRF token in ``X-CSRF-Token`` on every request
    that may change something: the cookie alone, which another site can make the
    browser send, is never enough.

    Raises:
        ApiError: 401 with ``WWW-Authenticate: Bearer`` for a missing, invalid or
            expired token, or a local token where they are refused; 403 for a valid
            token of the identity provider whose user is not an active user of the
            directory; 503 if the identity provider's keys cannot be fetched.
    """
    user = await _authenticated(request, services, session, credentials)
    set_request_user(user.id)  # named in the request's log lines from now on
    return user


async def _authenticated(
    request: Request,
    services: Services,
    session: AsyncSession,
    credentials: HTTPAuthorizationCredentials | None,
) -> DirectoryUser:
    if credentials is None or not credentials.credentials:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return await _session_user(request, session, cookie)
        raise unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
    token = credentials.credentials
    if services.oidc is not None and services.oidc.is_ours(token):
        return await _provider_user(services.oidc, session, token)
    if not services.settings.local_tokens_allowed:
        raise unauthenticated(LOCAL_TOKENS_REFUSED)
    try:
        user_id = user_id_from_token(services.settings, token)
    except InvalidToken as exc:
        raise unauthenticated(str(exc)) from exc
    user = await get_user(session, user_id)
    if user is None or not user.active:
        raise unauthenticated("the token's user is not an active user of the directory")
    return user


async def _session_user(request: Request, session: AsyncSession, cookie: str) -> DirectoryUser:
    found = await find_session(session, cookie)
    if found is None:
        raise unauthenticated("your sign-in has ended: sign in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, found.csrf_token):
            raise ApiError(
                403,
                ErrorCode.FORBIDDEN.value,
                f"a signed-in page must send its {CSRF_HEADER} (from GET /auth/session)",
            )
    user = await get_user(session, found.user_id)
    if user is None or not user.active:
        raise unauthenticated("the session's user is not an active user of the directory")
    return user


async def _provider_user(oidc: OidcVerifier, session: AsyncSession, token: str) -> DirectoryUser:
    try:
        name = await oidc.user_id(token)
    except InvalidToken as exc:
        raise unauthenticated(str(exc)) from exc
    except ProviderUnavailable as exc:
        raise unavailable("the company identity provider cannot be reached; try again") from exc
    try:
        user = await get_user(session, check_id(name))
    except InboundError:
        user = None
    if user is None or not user.active:
        raise ApiError(
            403,
            ErrorCode.FORBIDDEN.value,
            "you are signed in, but not as an active user of the approvals directory: "
            "ask an administrator to add you",
            {"user_claim": oidc.user_claim, "user": name[:200]},
        )
    return user


CurrentUser = Annotated[DirectoryUser, Depends(current_user)]


def viewer_of(user: DirectoryUser) -> Viewer:
    """Admins and auditors see every request; others what they take part in."""
    return Viewer(user_id=user.id, sees_all=user.is_admin or AUDITOR_ROLE in user.roles)


async def reader_language(
    user: CurrentUser,
    session: SessionDep,
    request: Request,
    response: Response,
) -> Language:
    """The caller's language: their saved preference, else ``Accept-Language``, else en.

    Sets ``Content-Language`` (and ``Vary: Accept-Language``) on the answer. The header
    is read from the request, not declared: any value is understood (an unknown one as
    none), so it can never be refused, and no 422 appears in the documentation for it.
    """
    row = await session.get(UserPreferenceRow, user.id)
    saved = row.locale if row is not None else None
    heard = negotiate(request.headers.get("accept-language")) or DEFAULT_LANGUAGE
    lang: Language = next((x for x in LANGUAGES if x == saved), heard)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language"
    return lang


LanguageDep = Annotated[Language, Depends(reader_language)]


@dataclass(frozen=True)
class Reader:
    """Who reads an answer: their language, and the policies its texts come from.

    Every answer that carries a request (its view, an inbox row) goes through here, so
    each endpoint speaks the caller's language the same way.
    """

    lang: Language
    policies: Mapping[str, Policy]

    def view(self, view: RequestView) -> RequestView:
        """``view`` with its type title, stage names, reasons and labels in :attr:`lang`."""
        return localize_view(view, self.policies.get(view.policy_type), self.lang)

    def stage_name(self, policy_type: str, key: str, name: str) -> str:
        """A stage's name in :attr:`lang` (``name``, as stored, if the policy has it not)."""
        return stage_name(self.policies.get(policy_type), key, name, self.lang)


def reader(lang: LanguageDep, policies: PoliciesDep) -> Reader:
    return Reader(lang=lang, policies=policies)


ReaderDep = Annotated[Reader, Depends(reader)]
