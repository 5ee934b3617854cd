"""The company identity provider's access tokens (OpenID Connect), checked against its keys.

The provider is found through ``{issuer}/.well-known/openid-configuration``; its keys
(JWKS) are fetched on first use, kept for ``APPROVALS_OIDC_JWKS_CACHE_SECONDS``, and
fetched again when a token names a key id we do not know (the provider rotated its
keys), at most once per ``APPROVALS_OIDC_JWKS_REFETCH_SECONDS`` so that a stream of
made-up key ids cannot make us hammer the provider.

A token is accepted only if it is signed with an asymmetric algorithm of the allow-list
by one of the provider's keys, names our issuer and our audience and has not expired
(``APPROVALS_OIDC_LEEWAY_SECONDS`` of clock skew). ``none`` and HMAC are refused before
any key is looked at: an HS256 token "signed" with the provider's public key is the
classic forgery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from api.auth import InvalidToken
from common.settings import Settings

log = logging.getLogger("approvals.api.oidc")


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys could not be fetched."""


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier the app's lifespan keeps (None: no issuer set); says how callers sign in."""
    if settings.environment != "development":
        if settings.local_tokens_allowed:
            log.warning(
                "APPROVALS_ALLOW_LOCAL_TOKENS=true: locally minted tokens (approvals token) "
                "are accepted outside development"
            )
        else:
            log.info(
                "locally minted tokens are refused (APPROVALS_ENV=%s); set "
                "APPROVALS_ALLOW_LOCAL_TOKENS=true to accept them",
                settings.environment,
            )
    if not settings.oidc_issuer:
        return None
    http = httpx.AsyncClient(timeout=settings.rpc_timeout_seconds, follow_redirects=False)
    return OidcVerifier(settings, http)


class OidcVerifier:
    """Checks the provider's access tokens; one per app (built in the lifespan)."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.user_claim = settings.oidc_user_claim
        self.algorithms = settings.oidc_accepted_algorithms
        self.leeway = settings.oidc_leeway_seconds
        self.cache_seconds = settings.oidc_jwks_cache_seconds
        self.refetch_seconds = settings.oidc_jwks_refetch_seconds
        self.http = http
        """Also the app's client for the provider's token endpoint (api/web/signin.py)."""
        self._clock = clock
        self._lock = asyncio.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    def is_ours(self, token: str) -> bool:
        """Whether ``token`` claims to come from an identity provider (it has an ``iss``).

        The locally minted tokens carry none. Nothing here is verified yet.
        """
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return isinstance(claims, dict) and "iss" in claims

    async def user_id(self, token: str) -> str:
        """The value of the user claim of a valid access token.

        Raises:
            InvalidToken: with a reason safe to show the caller.
            ProviderUnavailable: the provider's keys could not be fetched.
        """
        claims = await self.verified_claims(token, self.audience)
        return self.user_of(claims)

    def user_of(self, claims: dict[str, Any]) -> str:
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not user:
            raise InvalidToken(f"the token has no {self.user_claim} claim naming the user")
        return user

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            async with self._lock:
                if self._metadata is None:
                    await self._discover()
        assert self._metadata is not None
        return self._metadata

    async def verified_claims(self, token: str, audience: str) -> dict[str, Any]:
        """The claims of ``token`` (an access token, or an ID token for our client id).

        Raises:
            InvalidToken: with a reason safe to show the caller.
            ProviderUnavailable: the provider's keys could not be fetched.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("the token is not valid") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(
                f"the token's signature algorithm is not accepted (accepted: "
                f"{', '.join(self.algorithms)})"
            )
        jwk = await self._key(header.get("kid"))
        if jwk.get("alg", alg) != alg:
            raise InvalidToken("the token's algorithm does not match its key")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("the token was issued by another identity provider") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("the token was issued for another service") from exc
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise InvalidToken("the token is not valid") from exc
        return claims

    async def _key(self, kid: object) -> dict[str, Any]:
        if self._needs_fetch(kid):
            async with self._lock:
                # Another request may have fetched them while this one waited.
                if self._needs_fetch(kid):
                    await self._fetch_keys()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if not isinstance(kid, str) or kid not in self._keys:
            raise InvalidToken("the token is signed with a key the identity provider does not list")
        return self._keys[kid]

    def _needs_fetch(self, kid: object) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        if age >= self.cache_seconds:
            return True
        return kid not in self._keys and age >= self.refetch_seconds

    async def _fetch_keys(self) -> None:
        try:
            if self._metadata is None:
                await self._discover()
            assert self._metadata is not None
            jwks = await self._get_json(str(self._metadata["jwks_uri"]))
        except ProviderUnavailable:
            if self._keys:
                # Keep the keys we have: a provider that is down for a moment has not
                # revoked them; try again after the refetch interval.
                log.warning("the identity provider's keys could not be refreshed")
                self._fetched_at = self._clock()
                return
            raise
        keys = {}
        for jwk in jwks.get("keys", []):
            if (
                isinstance(jwk, dict)
                and isinstance(jwk.get("kid"), str)
                and jwk.get("use", "sig") == "sig"
            ):
                keys[jwk["kid"]] = jwk
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("fetched %d signing keys of the identity provider", len(keys))

    async def _discover(self) -> None:
        metadata = await self._get_json(
            self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        if metadata.get("issuer") != self.issuer:
            raise ProviderUnavailable("the provider's discovery document names another issuer")
        self._metadata = metadata

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = await self.http.get(url)
            resp.raise_for_status()
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {exc.__class__.__name__}") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return body
