"""The dev stack's identity provider: the tests' oidc-provider (tools/oidc), for `make dev`.

So that the inbox's "Sign in with your company account" works out of the box, `approvals
dev` runs ``node tools/oidc/provider.mjs`` under supervisord when node and
``tools/oidc/node_modules`` (``make install``) are there and ``APPROVALS_OIDC_ISSUER``
is not set. Every user of the org file may sign in with their user id and the password
``demo``. A new signing key, client secret and cookie key on every start: the provider
keeps nothing, and neither does anyone need to.

Never for production: a deployment sets ``APPROVALS_OIDC_*`` to the company's provider.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cli.children import port_answers
from cli.supervisord import Program
from common.settings import ROOT, Settings

log = logging.getLogger("approvals.dev")

OP_DIR = ROOT / "tools" / "oidc"
PORT = 8011
"""Where the dev provider listens if that port is free (else any free port)."""
PASSWORD = "demo"
CLIENT_ID = "approvals-dev"


@dataclass(frozen=True)
class DevProvider:
    issuer: str
    config: Path
    env: dict[str, str]
    """What the API needs to trust it (APPROVALS_OIDC_*)."""

    def program(self, node: str, pid_file: Path) -> Program:
        argv = [node, str(OP_DIR / "provider.mjs"), str(self.config)]
        return Program("oidc", argv, priority=35, pid_file=pid_file)


def _port() -> int:
    if not port_answers("127.0.0.1", PORT):
        return PORT
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _users(org_file: Path) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(org_file.read_text(encoding="utf-8")) or {}
    users: dict[str, dict[str, object]] = {}
    for user in doc.get("users") or []:
        uid = str(user["id"])
        claims = {"sub": uid, "preferred_username": uid, "name": str(user.get("name", uid))}
        if user.get("email"):
            claims["email"] = str(user["email"])
        users[uid] = {"password": PASSWORD, "claims": claims}
    return users


def node_and_provider() -> str | None:
    """node's path if the dev provider can run here, else None (and a log line why not)."""
    if os.environ.get("APPROVALS_OIDC_ISSUER"):
        return None
    node = shutil.which("node")
    if node is None or not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        log.info(
            "company sign-in is off: %s (bearer tokens still work)",
            "node is not installed" if node is None else "run `make install` (tools/oidc)",
        )
        return None
    return node


def prepare(settings: Settings, folder: Path) -> DevProvider:
    """Write the provider's config (users of the org file, a fresh key) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    issuer = f"http://127.0.0.1:{_port()}"
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key))
    jwk.update(alg="ES256", use="sig", kid=secrets.token_hex(8))
    secret = secrets.token_urlsafe(32)
    base = settings.public_base_url.rstrip("/")
    # The API's identifier: an absolute URI, as resource indicators must be (RFC 8707).
    audience = f"{base}/v1"
    config = {
        "issuer": issuer,
        "audience": audience,
        "jwks": {"keys": [jwk]},
        "cookie_key": secrets.token_urlsafe(32),
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "redirect_uris": [f"{base}/auth/callback"],
            }
        ],
        "users": _users(settings.org_file),
    }
    path = folder / "provider.json"
    # Holds the private key and the client secret: for this user only.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {
        "APPROVALS_OIDC_ISSUER": issuer,
        "APPROVALS_OIDC_AUDIENCE": audience,
        "APPROVALS_OIDC_CLIENT_ID": CLIENT_ID,
        "APPROVALS_OIDC_CLIENT_SECRET": secret,
        "APPROVALS_OIDC_SCOPES": "openid profile email",
    }
    return DevProvider(issuer, path, env)
