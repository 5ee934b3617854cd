"""Company sign-in: the API takes the access tokens of a real OpenID Connect provider.

The provider is panva's oidc-provider on node (tests/support/oidc.py), signed in to
through its own login form with the authorization-code flow and PKCE: nothing stubbed.
"""

from __future__ import annotations

import httpx
import jwt

from tests.support.oidc import AUDIENCE, OpenIdProvider, sign_in


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
