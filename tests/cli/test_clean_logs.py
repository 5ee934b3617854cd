"""A whole `approvals dev` run with JSON logs: every credential it used, and none in a log.

The run signs in through the identity provider (a session cookie, an authorization
code, the client secret), calls the API with bearer tokens (and one in a query string,
refused), opens and uses a signed decision link from a mail sent through an SMTP server
that wants a password, and delivers a notice to a webhook signed with its secret. Then
every log file of the run (each child's, the supervisor's and the dev runner's,
PostgreSQL's) is searched for each of those values: none may be there. The
service's own logs are JSON, one object per line, with the request id and caller.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from common.settings import DEV_SECRET, DEV_SIGNING_SECRET
from tests.support.dev_stack import DevStack, free_port, start_dev_stack, submit
from tests.support.oidc import log_in
from tests.support.receivers import HttpReceiver, MailBox, http_receiver

WAIT = 120.0
SMTP_USER = "approvals-mailer"
SMTP_PASSWORD = secrets.token_urlsafe(18)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
OUR_LOGS = ("api", "worker", "deliverer", "mailcatcher", "dev")
"""The service's own processes (and `approvals dev`): their log files are all JSON."""


class PasswordBox(MailBox):
    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode():
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class Run:
    stack: DevStack
    box: PasswordBox
    hooks: HttpReceiver


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    box = PasswordBox()
    port = free_port()
    smtp = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    smtp.start()
    try:
        with http_receiver() as hooks:
            hooks_file = tmp_path_factory.mktemp("hooks") / "webhooks.yaml"
            hooks_file.write_text(
                json.dumps(
                    {"subscribers": [{"name": "probe", "url": hooks.url, "secret": WEBHOOK_SECRET}]}
                )
            )
            with start_dev_stack(
                APPROVALS_LOG_FORMAT="json",
                APPROVALS_SMTP_HOST="127.0.0.1",
                APPROVALS_SMTP_PORT=str(port),
                APPROVALS_SMTP_USERNAME=SMTP_USER,
                APPROVALS_SMTP_PASSWORD=SMTP_PASSWORD,
                APPROVALS_WEBHOOKS_FILE=str(hooks_file),
            ) as stack:
                yield Run(stack, box, hooks)
    finally:
        smtp.stop()


def wait_for(what: str, found: Any) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.5)


def decision_link(box: MailBox, request_id: str) -> str:
    def link() -> str | None:
        for msg in list(box.messages):
            assert isinstance(msg, EmailMessage)
            body = msg.get_body(("plain",))
            text = body.get_content() if body is not None else ""
            if "bcd_zheng@demo.example" in str(msg["To"]) and request_id in text:
                return next(iter(re.findall(r"https?://\S+/act/\S+", text)), None)
        return None

    return str(wait_for(f"mail about {request_id}", link))


def log_files(stack: DevStack) -> list[Path]:
    """Every log file of the run: the children's, the supervisor's (``dev.log``: what
    `approvals dev` logged), PostgreSQL's. Not the terminal: its banner shows the demo
    users' bearer tokens to the developer on purpose (and ``dev.env`` holds them)."""
    root = stack.data
    found = [p for p in (root / "logs").rglob("*") if p.is_file()]
    found += [p for p in (root / "pg").rglob("*.log") if p.is_file()]
    found += [p for p in (root / "pg" / "log").rglob("*") if p.is_file()]
    return [*dict.fromkeys(found)]


def test_no_credential_used_in_the_run_is_in_any_log_file_and_our_lines_are_json(
    run: Run,
) -> None:
    stack = run.stack
    used: dict[str, str] = {
        "token secret": DEV_SECRET,
        "signing secret": DEV_SIGNING_SECRET,
        "SMTP password": SMTP_PASSWORD,
        "webhook secret": WEBHOOK_SECRET,
        "webhook secret key": WEBHOOK_SECRET.removeprefix("whsec_"),
        **{f"bearer token of {user}": token for user, token in stack.tokens.items()},
    }
    provider = next(stack.data.rglob("provider.json"))
    config = json.loads(provider.read_text())
    used["OIDC client secret"] = config["clients"][0]["client_secret"]
    used["OIDC cookie key"] = config["cookie_key"]

    with httpx.Client(base_url=stack.api, timeout=60) as client:
        request_id = submit(stack, client)
        # A bearer token in a query string: refused, and on the wire.
        assert client.get(f"/v1/me?access_token={stack.tokens['gm_wang']}").status_code == 401
        probe = client.get("/v1/me", headers=stack.headers("am_li", **{"X-Request-ID": "probe-19"}))
        assert probe.status_code == 200 and probe.headers["X-Request-ID"] == "probe-19"
    # Sign-in through the identity provider: an authorization code, then a session cookie.
    with httpx.Client(base_url=stack.api, timeout=30) as browser:
        start = browser.get("/auth/login", params={"next": "/inbox"})
        assert start.status_code == 303, start.text
        with httpx.Client(timeout=30) as at_provider:
            back = log_in(at_provider, start.headers["location"], "am_li", "demo")
        used["authorization code"] = httpx.URL(back).params["code"]
        assert browser.get(back).status_code == 303
        used["session cookie"] = str(browser.cookies["approvals_session"])
        assert browser.get("/v1/me").status_code == 200
    # The signed decision link of the mail (sent with the SMTP password), opened and used.
    link = decision_link(run.box, request_id)
    used["link token"] = link.rsplit("/act/", 1)[1]
    assert SMTP_USER in run.box.logins
    with httpx.Client(timeout=60) as client:
        page = client.get(link)
        assert page.status_code == 200, page.text
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        assert nonce, page.text
        decided = client.post(link, data={"nonce": nonce.group(1), "lang": "en", "comment": ""})
        assert decided.status_code < 400, decided.text
    # A notice to the webhook, signed with its secret.
    wait_for("webhook delivery", lambda: run.hooks.hits)
    assert "webhook-signature" in run.hooks.hits[0].headers
    time.sleep(2.0)  # the children write their last lines as they go

    files = log_files(stack)
    found = [
        f"{what} in {path.name}"
        for path in files
        for what, value in used.items()
        if value in path.read_text(errors="replace")
    ]
    assert found == [], found

    lines = []
    for name in OUR_LOGS:
        path = stack.data / "logs" / f"{name}.log"
        for line in path.read_text(errors="replace").splitlines():
            if line.strip():
                parsed = json.loads(line)  # every line of the service is one JSON object
                assert {"time", "level", "logger", "message"} <= set(parsed), line
                lines.append(parsed)
    access_all = [line for line in lines if line["logger"] == "uvicorn.access"]
    access = [line for line in access_all if "probe-19" in str(line)]
    assert [(line["request_id"], line.get("user")) for line in access] == [("probe-19", "am_li")]
    assert any("/v1/me?access_token=***" in line["message"] for line in lines)
    # A decision link names its user, as a bearer token does.
    assert any(
        "/act/***" in line["message"] and line.get("user") == "bcd_zheng" for line in access_all
    )
