"""`approvals dev` as a user runs it: its links point at its API, its logs hold no secret.

One stack of this module's own, with the API on a free port (never the default 8000).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from common.settings import DEV_SECRET, DEV_SIGNING_SECRET
from tests.support.dev_stack import DevStack, start_dev_stack, submit
from tests.support.oidc import log_in

MAIL_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[DevStack]:
    with start_dev_stack() as stack:
        yield stack


def mail_of(stack: DevStack, request_id: str, to: str) -> EmailMessage:
    """The first caught mail to ``to`` about ``request_id`` (waits for the deliverer)."""
    deadline = time.monotonic() + MAIL_TIMEOUT
    while True:
        for path in sorted((stack.data / "mail").glob("*.eml")):
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(msg, EmailMessage)
            text = msg.get_body(("plain",))
            if to in str(msg["To"]) and text is not None and request_id in text.get_content():
                return msg
        assert time.monotonic() < deadline, f"no mail to {to} about {request_id}"
        time.sleep(0.5)


def links_in(msg: EmailMessage) -> list[str]:
    text = msg.get_body(("plain",))
    assert text is not None
    return re.findall(r"https?://\S+", text.get_content())


@pytest.fixture(scope="module")
def decision_mail(dev_stack: DevStack) -> EmailMessage:
    with httpx.Client(base_url=dev_stack.api, timeout=60) as client:
        request_id = submit(dev_stack, client)
    return mail_of(dev_stack, request_id, "bcd_zheng@demo.example")


def test_links_in_the_mail_point_at_the_port_the_api_listens_on(
    dev_stack: DevStack, decision_mail: EmailMessage
) -> None:
    links = links_in(decision_mail)
    assert any("/act/" in link for link in links), links
    assert all(link.startswith(f"{dev_stack.api}/") for link in links), (dev_stack.api, links)


def log_files(data: Path) -> list[Path]:
    """Every log file of the run: the children's, the supervisor's, PostgreSQL's."""
    found = [p for p in (data / "logs").rglob("*") if p.is_file()]
    found += [p for p in (data / "pg" / "log").rglob("*") if p.is_file()]
    return found


def test_no_token_link_or_secret_used_in_the_run_reaches_any_log_file(
    dev_stack: DevStack, decision_mail: EmailMessage
) -> None:
    act = next(link for link in links_in(decision_mail) if "/act/" in link)
    link_token = act.rsplit("/act/", 1)[1]
    bearer = dev_stack.tokens
    opaque = secrets.token_urlsafe(24)
    with httpx.Client(base_url=dev_stack.api, timeout=60) as client:
        # Tokens in query strings: refused, but on the wire (and in the access log line).
        assert client.get(f"/v1/me?access_token={bearer['bcd_zheng']}").status_code == 401
        client.get(
            f"/v1/requests?limit=5&token={bearer['gm_wang']}", headers=dev_stack.headers("am_li")
        )
        client.get(f"/healthz?api_key={opaque}")
        # In headers, as they should be, and a bad one.
        assert client.get("/v1/me", headers=dev_stack.headers("dsd_liu")).status_code == 200
        assert (
            client.get("/v1/me", headers={"Authorization": f"Bearer {opaque}x"}).status_code == 401
        )
        # In paths: the link opened (its confirmation page, nothing decided), refused
        # without its form, and a token pasted into a path no route has.
        assert client.get(f"/act/{link_token}").status_code == 200
        assert client.get(f"/act/{link_token}?lang=en&t={link_token}").status_code == 200
        assert client.post(f"/act/{link_token}", data={}).status_code >= 400
        assert client.get(f"/no/such/{bearer['am_li']}").status_code == 404
    time.sleep(1.0)  # the children write their lines as they go; give the last ones a moment

    used = {
        "link token": link_token,
        "opaque credential": opaque,
        "token secret": DEV_SECRET,
        "signing secret": DEV_SIGNING_SECRET,
        **{f"bearer token of {user}": token for user, token in bearer.items()},
    }
    files = log_files(dev_stack.data)
    assert any(p.name == "api.log" for p in files), files
    api_log = (dev_stack.data / "logs" / "api.log").read_text(errors="replace")
    assert "/v1/me?access_token=***" in api_log  # the lines are there, masked
    assert "/act/***" in api_log
    found = [
        f"{what} in {path.relative_to(dev_stack.data)}"
        for path in files
        for what, value in used.items()
        if value in path.read_text(errors="replace")
    ]
    assert found == []


def test_the_dev_stack_signs_in_through_its_own_identity_provider(dev_stack: DevStack) -> None:
    """`make dev` runs the test provider, so "Sign in with your company account" works."""
    said = re.search(r"the test identity provider at (http://127\.0\.0\.1:\d+)", dev_stack.said())
    assert said, dev_stack.said()
    with httpx.Client(base_url=dev_stack.api, timeout=30) as browser_at_api:
        start = browser_at_api.get("/auth/login", params={"next": "/inbox"})
        assert start.status_code == 303, start.text
        assert start.headers["location"].startswith(said.group(1))
        with httpx.Client(timeout=30) as browser_at_op:
            back = log_in(browser_at_op, start.headers["location"], "am_li", "demo")
        done = browser_at_api.get(back)
        assert done.status_code == 303, done.text
        me = browser_at_api.get("/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["id"] == "am_li"
