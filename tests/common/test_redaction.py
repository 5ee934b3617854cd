"""Log redaction: no token, link, secret or password is ever left whole in a log line."""

from __future__ import annotations

import base64
import logging
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from hypothesis import assume, given
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from common.redaction import MASK, LogScrubber, configured_secrets, redact
from common.settings import Settings
from domain.action_links import ActionLink, derive_key, mint
from tests.support.strategies import chars

URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
texts = st.text(chars, max_size=60)
encodable = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


jwts = st.builds(
    lambda sub, key: jwt.encode(
        {"sub": sub, "exp": datetime(2030, 1, 1, tzinfo=UTC)}, key, algorithm="HS256"
    ),
    encodable,
    st.binary(min_size=32, max_size=40),
)
link_tokens = st.builds(
    lambda key, user, stage, action: mint(
        derive_key(key),
        ActionLink(
            link_id=secrets.token_urlsafe(16),
            user_id=user,
            request_id="7f0c4f9e-5d0a-4a3b-9d7e-2a3b4c5d6e7f",
            stage_index=stage,
            step_since=datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=UTC),
            action=action,
            expires_at=datetime.now(UTC) + timedelta(hours=72),
        ),
    ),
    encodable,
    st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    st.integers(0, 30),
    st.sampled_from(["approve", "return", "reject"]),
)
"""Real link tokens, minted as the links in messages are."""
link_shapes = st.builds(
    lambda body, mac: f"{b64(body)}.{b64(mac)}",
    st.binary(min_size=1, max_size=200),
    st.binary(min_size=32, max_size=32),
)
webhook_secrets = st.binary(min_size=16, max_size=48).map(
    lambda raw: "whsec_" + base64.b64encode(raw).decode()
)
opaque = st.text(URL_SAFE, min_size=16, max_size=60)
"""A credential of no known shape: only where it stands (a query, a header) gives it away."""
query_keys = st.one_of(
    st.sampled_from(["access_token", "token", "sig", "key", "a"]),
    st.text(st.characters(exclude_characters="&;#= \t\r\n\"'<>`"), min_size=1, max_size=20),
)

Context = Callable[[str], str]
shaped_contexts: list[Context] = [
    lambda t: t,
    lambda t: f"GET /v1/me?access_token={t} HTTP/1.1",
    lambda t: f"/act/{t}",
    lambda t: f"https://approvals.example/act/{t}?lang=en",
    lambda t: f"Authorization: Bearer {t}",
    lambda t: f"{{'authorization': 'Bearer {t}'}}",
    lambda t: f'"token": "{t}"',
    lambda t: f"http://127.0.0.1:8000/inbox#token={t}",
]


@given(
    before=texts,
    after=texts,
    token=st.one_of(jwts, link_tokens, link_shapes, webhook_secrets),
    context=st.sampled_from(shaped_contexts),
)
def test_a_token_of_a_known_shape_is_never_left_whole_wherever_it_stands(
    before: str, after: str, token: str, context: Context
) -> None:
    assume(token not in before + after)
    assert token not in redact(before + context(token) + after)


@given(before=texts, after=texts, token=opaque, key=query_keys, n=st.integers(0, 3))
def test_any_value_in_a_query_string_is_never_left_whole(
    before: str, after: str, token: str, key: str, n: int
) -> None:
    assume(token not in before + after + key)  # a key is shown: only values are secret
    query = "&".join([*(f"p{i}=1" for i in range(n)), f"{key}={token}"])
    assert token not in redact(f"{before}/v1/requests?{query} {after}")


@given(before=texts, after=texts, token=opaque)
def test_a_credential_after_bearer_or_in_a_url_is_never_left_whole(
    before: str, after: str, token: str
) -> None:
    assume(token not in before + after)
    for line in (
        f"{before}Authorization: Bearer {token}\n{after}",
        f"{before} postgresql+asyncpg://approvals:{token}@postgres:5432/approvals {after}",
        f"{before} password={token} {after}",
    ):
        assert token not in redact(line)


@given(
    before=texts,
    after=texts,
    secret=st.text(chars, min_size=8, max_size=60),
    others=st.lists(st.text(chars, max_size=20), max_size=3),
)
def test_a_configured_secret_is_never_left_whole_whatever_it_holds(
    before: str, after: str, secret: str, others: list[str]
) -> None:
    text = redact(before + secret + after, [secret, *others])
    assert secret not in text


@given(texts)
def test_redacting_twice_changes_nothing_more(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_what_is_not_a_secret_is_left_as_it_was() -> None:
    for line in (
        "approvals worker on task queue approvals at localhost:7233 (cache 1000 workflows)",
        "request 7f0c4f9e-5d0a-4a3b-9d7e-2a3b4c5d6e7f moved to stage 2",
        'GET /v1/requests/7f0c4f9e-5d0a-4a3b-9d7e-2a3b4c5d6e7f HTTP/1.1" 200',
        "restart #3 of worker after 4.0 s",
        "temporalio.worker._workflow_instance.run_activation took 12 ms",
    ):
        assert redact(line) == line
    assert redact("GET /v1/requests?limit=5&status=in_review") == (
        f"GET /v1/requests?limit={MASK}&status={MASK}"
    )


def test_configured_secrets_name_every_secret_setting_and_the_database_password() -> None:
    settings = Settings(
        APPROVALS_ENV="development",
        APPROVALS_TOKEN_SECRET="t" * 40,
        APPROVALS_SIGNING_SECRET="s" * 40,
        APPROVALS_ACTION_LINK_SECRET="l" * 40,
        APPROVALS_SMTP_PASSWORD="smtp-pa$$word",
        APPROVALS_DINGTALK_SECRET="SEC" + "d" * 30,
        DATABASE_URL="postgresql+asyncpg://approvals:p%40ss-w0rd!@db:5432/approvals",
        APPROVALS_DINGTALK_URL="https://oapi.dingtalk.com/robot/send?access_token=ding0123456789",
        APPROVALS_WECOM_URL="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-0123-4567",
        APPROVALS_FEISHU_URL="https://open.feishu.cn/open-apis/bot/v2/hook/feishu-0123-4567",
    )
    found = configured_secrets(settings)
    for value in ("t" * 40, "s" * 40, "l" * 40, "smtp-pa$$word", "SEC" + "d" * 30):
        assert value in found
    for robot in ("ding0123456789", "wecom-0123-4567", "feishu-0123-4567"):
        assert robot in found
    assert "p@ss-w0rd!" in found and "p%40ss-w0rd!" in found


def record(name: str, msg: object, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, info)


def test_an_access_log_line_is_scrubbed_and_still_formatted_by_uvicorn() -> None:
    token = jwt.encode({"sub": "am_li"}, "k" * 32, algorithm="HS256")
    link = f"{b64(b'claims')}.{b64(bytes(32))}"
    scrubber = LogScrubber()
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    lines = []
    for path in (f"/v1/me?access_token={token}", f"/act/{link}"):
        rec = record(
            "uvicorn.access", '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", path, "1.1", 401
        )
        scrubber.scrub(rec)
        lines.append(formatter.format(rec))
    assert lines == [
        f'1.2.3.4:5 - "GET /v1/me?access_token={MASK} HTTP/1.1" 401 Unauthorized',
        f'1.2.3.4:5 - "GET /act/{MASK} HTTP/1.1" 401 Unauthorized',
    ]


def test_a_record_is_scrubbed_in_its_message_arguments_and_traceback() -> None:
    scrubber = LogScrubber()
    scrubber.add(["signing-secret-0123456789abcdef"])
    formatter = logging.Formatter("%(message)s")
    try:
        raise ValueError(
            "bad link https://x/act/abc.def?sig=1 with signing-secret-0123456789abcdef"
        )
    except ValueError:
        rec = record("approvals.api", "refused %s for %r", "Bearer abcdef", object(), exc=True)
    scrubber.scrub(rec)
    text = formatter.format(rec)
    assert "Bearer ***" in text
    assert "abcdef" not in text and "signing-secret" not in text and "sig=1" not in text
    assert "ValueError: bad link https://x/act/***" in text


def test_a_secret_in_the_format_string_itself_is_masked() -> None:
    scrubber = LogScrubber()
    rec = record(
        "approvals.dev", "PostgreSQL now answers at postgresql://u:hunter2hunter2@h/%s", "db"
    )
    scrubber.scrub(rec)
    assert rec.getMessage() == f"PostgreSQL now answers at postgresql://u:{MASK}@h/db"
