"""A real OpenID Connect provider for the tests: panva's oidc-provider on node.

``OpenIdProvider`` writes the provider's config (users, a client, signing keys), starts
``node tools/oidc/provider.mjs`` on a free port and stops it; ``rotate()`` restarts it on
the same port with a new key. ``sign_in`` drives the authorization-code flow with PKCE
through the provider's own login form, the way a browser would, and returns its tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.paths import ROOT
from tests.support.servers import closed_port

OP_DIR = ROOT / "tools" / "oidc"
AUDIENCE = "https://approvals.test/api"
OTHER_AUDIENCE = "https://other-service.test/api"
CLIENT_ID = "approvals-web"
SHORT_CLIENT_ID = "short-lived"
"""A client whose access tokens live one second (the expiry test)."""
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
REDIRECT_URI = "http://api/auth/callback"
PASSWORD = "test-password"


def new_key(kty: str = "EC") -> tuple[Any, dict[str, Any]]:
    """A fresh signing key: (the private key object, its private JWK with a new kid)."""
    key: Any
    if kty == "EC":
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(key))
        jwk["alg"] = "ES256"
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
        jwk["alg"] = "RS256"
    jwk["kid"] = secrets.token_hex(8)
    jwk["use"] = "sig"
    return key, jwk


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not installed: the OpenID Connect tests need node 20+")
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError("tools/oidc/node_modules is missing: run `make install`")
    return found


@dataclass
class OpenIdProvider:
    """One running provider; ``users`` maps a login to the claims it signs in with."""

    workdir: Path
    users: dict[str, dict[str, Any]]
    kty: str = "RS256"
    redirect_uris: list[str] = field(default_factory=lambda: [REDIRECT_URI])
    """Where the client ``approvals-web`` may be sent back (a browser test's own port)."""
    port: int = field(default_factory=closed_port)
    key: Any = None
    jwk: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.key, self.jwk = new_key("EC" if self.kty == "ES256" else "RSA")
        config = {
            "issuer": self.issuer,
            "audience": AUDIENCE,
            "resources": {OTHER_AUDIENCE: {}},
            "jwks": {"keys": [self.jwk]},
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": self.redirect_uris,
                },
                {
                    "client_id": SHORT_CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [REDIRECT_URI],
                    "access_token_ttl": 1,
                },
            ],
            "users": {
                login: {"password": PASSWORD, "claims": claims}
                for login, claims in self.users.items()
            },
        }
        path = self.workdir / f"op-{self.port}.json"
        path.write_text(json.dumps(config))
        log = (self.workdir / f"op-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [node(), str(OP_DIR / "provider.mjs"), str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=OP_DIR,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.workdir / f"op-{self.port}.log").read_text()
                raise RuntimeError(f"the OpenID provider exited:\n{log}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the OpenID provider did not answer on {url}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def rotate(self) -> None:
        """Restart on the same port with a new signing key (and a new kid)."""
        self.stop()
        self.start()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def log_in(
    client: httpx.Client, authorization_url: str, login: str, password: str = PASSWORD
) -> str:
    """Where the provider sends the browser back, after ``login`` fills in its login form.

    ``client`` is the browser: it keeps the provider's cookies between the steps.
    """
    resp = client.get(authorization_url, follow_redirects=True)
    assert resp.status_code == 200, resp.text
    assert "<form" in resp.text, resp.text
    form = {"login": login, "password": password}
    resp = client.post(str(resp.url.copy_with(query=None)) + "/login", data=form)
    location = str(resp.url.join(resp.headers.get("location", "")))
    # Follow the provider's own redirects until it sends the browser back to the client.
    while resp.status_code in (302, 303) and "/auth/callback" not in location:
        resp = client.get(location)
        location = str(resp.url.join(resp.headers.get("location", "")))
    assert "/auth/callback" in location, (resp.status_code, resp.text)
    return location


def sign_in(
    op: OpenIdProvider,
    login: str,
    *,
    resource: str = AUDIENCE,
    password: str = PASSWORD,
    client_id: str = CLIENT_ID,
) -> dict[str, Any]:
    """The token response after ``login`` signs in through the provider's login form."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    with httpx.Client(base_url=op.issuer, timeout=10) as client:
        url = client.build_request(
            "GET",
            "/auth",
            params={
                "client_id": client_id,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": "openid profile approvals",
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": resource,
            },
        ).url
        location = log_in(client, str(url), login, password)
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [state]
        token = client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "resource": resource,
            },
            auth=(client_id, CLIENT_SECRET),
        )
        assert token.status_code == 200, token.text
        body: dict[str, Any] = token.json()
        return body


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    """A running provider with the demo users Li (``am_li``) and a stranger.

    The subject is the provider's own account id; ``preferred_username`` names the
    directory user, as a company directory would.
    """
    op = OpenIdProvider(
        tmp_path_factory.mktemp("oidc"),
        users={
            "li": {"sub": "acct-li", "preferred_username": "am_li", "name": "Li"},
            "stranger": {"sub": "acct-x", "preferred_username": "nobody_here"},
            # A directory user who left (tests make them inactive): still at the provider.
            "leaver": {"sub": "acct-gone", "preferred_username": "oidc_leaver"},
        },
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
