"""Each channel against a real receiver on 127.0.0.1: SMTP, webhooks, the three robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import pytest

from notify.email import EmailChannel, SmtpConfig
from notify.message import Rendered, SendError
from notify.robots import RobotChannel, RobotConfig
from notify.webhooks import Subscriber, WebhookChannel, load_subscribers, verify
from tests.support.receivers import MailBox, free_port, http_receiver, self_signed, smtp_server

pytestmark = pytest.mark.process  # real SMTP servers and HTTP receivers on loopback

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def rendered(actions: dict[str, str] | None = None) -> Rendered:
    return Rendered(
        kind="assigned",
        locale="en",
        subject="Your decision is needed: Supply contract",
        text="Supply contract waits for your decision.\nhttp://x/inbox#request=r1",
        html="<p>Supply contract waits for <b>your</b> decision.</p>",
        markdown="### Your decision is needed\nSupply contract",
        link="http://x/inbox#request=r1",
        actions=actions,
    )


# --- e-mail -------------------------------------------------------------------------


async def test_email_arrives_as_text_and_html_with_the_dedupe_id_as_message_id() -> None:
    box = MailBox()
    async with smtp_server(box) as port:
        channel = EmailChannel(SmtpConfig("127.0.0.1", port, sender="approvals@corp.test"))
        await channel.send(rendered(), "bcd_zheng@demo.example", "ntf-abc123")
    [msg] = box.messages
    assert box.envelopes == [("approvals@corp.test", ["bcd_zheng@demo.example"])]
    assert msg["Message-ID"] == "<ntf-abc123@corp.test>"
    assert msg["Subject"] == "Your decision is needed: Supply contract"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and "http://x/inbox#request=r1" in text.get_content()
    assert html is not None and "<b>your</b>" in html.get_content()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_email_says_its_language_in_the_message_and_in_each_part(locale: str) -> None:
    box = MailBox()
    async with smtp_server(box) as port:
        channel = EmailChannel(SmtpConfig("127.0.0.1", port, sender="approvals@corp.test"))
        await channel.send(
            rendered().model_copy(update={"locale": locale}), "bcd_zheng@demo.example", "ntf-l"
        )
    [msg] = box.messages
    assert msg["Content-Language"] == locale
    parts = [msg.get_body(("plain",)), msg.get_body(("html",))]
    assert [p["Content-Language"] for p in parts if p is not None] == [locale, locale]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_starttls_or_implicit_tls_with_login(
    tmp_path: Path, security: Literal["starttls", "tls"]
) -> None:
    server_ctx, client_ctx = self_signed(tmp_path)
    box = MailBox()
    starttls = security == "starttls"
    async with smtp_server(
        box,
        auth=True,
        tls_context=server_ctx if starttls else None,
        implicit_tls=None if starttls else server_ctx,
    ) as port:
        config = SmtpConfig(
            "127.0.0.1",
            port,
            security=security,
            username="approvals",
            password="s3cret",
            tls_context=client_ctx,
        )
        await EmailChannel(config).send(rendered(), "a@b.example", "ntf-tls")
    assert box.logins == ["approvals"]
    assert len(box.messages) == 1


async def test_email_refused_with_5xx_is_a_permanent_failure_naming_the_answer() -> None:
    box = MailBox(refuse="550 5.1.1 mailbox unavailable")
    async with smtp_server(box) as port:
        with pytest.raises(SendError) as caught:
            await EmailChannel(SmtpConfig("127.0.0.1", port)).send(rendered(), "x@y.z", "ntf-1")
    assert caught.value.permanent
    assert "550" in caught.value.reason
    assert box.messages == []


async def test_email_refused_with_4xx_is_retried() -> None:
    async with smtp_server(MailBox(refuse="451 4.3.0 try again later")) as port:
        with pytest.raises(SendError) as caught:
            await EmailChannel(SmtpConfig("127.0.0.1", port)).send(rendered(), "x@y.z", "ntf-1")
    assert not caught.value.permanent
    assert "451" in caught.value.reason


async def test_unreachable_smtp_server_is_a_transient_failure() -> None:
    channel = EmailChannel(SmtpConfig("127.0.0.1", free_port(), timeout=2))
    with pytest.raises(SendError) as caught:
        await channel.send(rendered(), "x@y.z", "ntf-1")
    assert not caught.value.permanent
    assert "unreachable" in caught.value.reason


# --- webhooks -----------------------------------------------------------------------


async def test_webhook_is_signed_per_standard_webhooks_and_verifies_at_the_receiver() -> None:
    with http_receiver() as recv:
        sub = Subscriber(name="erp", url=f"{recv.url}/hooks", secret=SECRET)
        await WebhookChannel([sub]).send("erp", {"type": "notice.assigned", "n": "中文"}, "ntf-42")
    [hit] = recv.hits
    assert hit.path == "/hooks"
    assert hit.headers["webhook-id"] == "ntf-42"
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 60
    assert hit.headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, hit.headers, hit.body)
    # independently of our own helper: HMAC-SHA256 over "id.timestamp.body", key = base64 secret
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"ntf-42.{hit.headers['webhook-timestamp']}.".encode() + hit.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert hit.headers["webhook-signature"] == f"v1,{expected}"
    assert hit.json()["n"] == "中文"
    assert not verify(SECRET, hit.headers, hit.body + b" ")


async def test_webhook_answering_500_is_retried_and_400_is_not() -> None:
    with http_receiver() as recv:
        channel = WebhookChannel([Subscriber(name="erp", url=recv.url, secret=SECRET)])
        recv.status = 500
        with pytest.raises(SendError) as caught:
            await channel.send("erp", {}, "ntf-1")
        assert not caught.value.permanent and "500" in caught.value.reason
        recv.status = 400
        with pytest.raises(SendError) as caught:
            await channel.send("erp", {}, "ntf-1")
        assert caught.value.permanent


async def test_hanging_webhook_times_out_as_a_transient_failure() -> None:
    with http_receiver() as recv:
        recv.delay = 3
        channel = WebhookChannel([Subscriber(name="erp", url=recv.url, secret=SECRET)], timeout=0.5)
        started = time.monotonic()
        with pytest.raises(SendError) as caught:
            await channel.send("erp", {}, "ntf-1")
        assert time.monotonic() - started < 2.5
    assert not caught.value.permanent
    assert "no answer within 0.5 s" in caught.value.reason


def test_webhook_file_is_validated_naming_the_field(tmp_path: Path) -> None:
    good = tmp_path / "hooks.yaml"
    good.write_text(
        f"subscribers:\n  - {{name: erp, url: 'https://erp.example/h', secret: '{SECRET}',"
        " events: [assigned]}\n"
    )
    [sub] = load_subscribers(good)
    assert sub.wants("assigned") and not sub.wants("approved")
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscribers:\n  - {name: erp, url: 'https://erp.example/h', secret: nope}\n")
    with pytest.raises(ValueError, match="secret"):
        load_subscribers(bad)
    assert load_subscribers(None) == []


# --- robots -------------------------------------------------------------------------


async def test_dingtalk_markdown_signed_with_timestamp_and_sign() -> None:
    with http_receiver() as recv:
        robot = RobotChannel(
            RobotConfig("dingtalk", f"{recv.url}/robot/send?access_token=tok", secret="SECabc")
        )
        await robot.send(rendered())
    [hit] = recv.hits
    query = parse_qs(urlsplit(hit.path).query)
    assert query["access_token"] == ["tok"]
    ts = query["timestamp"][0]
    assert abs(int(ts) / 1000 - time.time()) < 60
    expected = base64.b64encode(
        hmac.new(b"SECabc", f"{ts}\nSECabc".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    body = hit.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "Your decision is needed: Supply contract"
    assert "Supply contract" in body["markdown"]["text"]


async def test_wecom_markdown() -> None:
    with http_receiver() as recv:
        await RobotChannel(RobotConfig("wecom", f"{recv.url}/cgi-bin/webhook/send?key=k")).send(
            rendered()
        )
    [hit] = recv.hits
    assert hit.json() == {
        "msgtype": "markdown",
        "markdown": {"content": "### Your decision is needed\nSupply contract"},
    }


async def test_feishu_card_signed_in_the_body() -> None:
    with http_receiver() as recv:
        recv.answer = {"code": 0, "msg": "success"}
        await RobotChannel(RobotConfig("feishu", f"{recv.url}/hook/x", secret="fsec")).send(
            rendered()
        )
    body = recv.hits[0].json()
    ts = body["timestamp"]
    expected = base64.b64encode(
        hmac.new(f"{ts}\nfsec".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert body["sign"] == expected
    assert body["msg_type"] == "interactive"
    assert body["card"]["header"]["title"]["content"].startswith("Your decision")
    assert body["card"]["elements"][0]["tag"] == "markdown"


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("dingtalk", {"errcode": 310000, "errmsg": "sign not match"}),
        ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}),
        ("feishu", {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}),
    ],
)
async def test_robot_error_json_is_a_failure_naming_the_code(kind: str, answer: dict) -> None:
    with http_receiver() as recv:
        recv.answer = answer
        with pytest.raises(SendError) as caught:
            await RobotChannel(RobotConfig(kind, recv.url, secret="s")).send(rendered())
    assert str(answer.get("errcode", answer.get("code"))) in caught.value.reason
