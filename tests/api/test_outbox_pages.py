"""The admin's outbox page and the development mail catcher with its page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.web.outbox import TEXT
from notify.email import EmailChannel, SmtpConfig
from notify.mailcatcher import caught, serve
from notify.message import Rendered
from tests.support.api import make_settings, running, temporal_target
from tests.support.pages import Page, assert_strict, fetched
from tests.support.receivers import free_port


async def test_outbox_page_is_self_contained_under_its_csp(api: httpx.AsyncClient) -> None:
    resp, page = await fetched(api, "/admin/outbox")
    script = "\n".join(page.modules.values())
    assert "/v1/admin/deliveries" in script
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "innerHTML" not in script  # every value goes in as text
    assert_strict(resp.headers, page)


async def test_caught_mails_are_kept_and_listed_escaped_in_development_only(
    tmp_path: Path, pg_url: str, temporal_local: WorkflowEnvironment
) -> None:
    port = free_port()
    catcher = asyncio.create_task(serve(tmp_path / "mail", "127.0.0.1", port))
    try:
        for _ in range(50):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            await asyncio.sleep(0.05)
        mail = Rendered(
            kind="assigned",
            locale="en",
            subject="Your decision is needed: <b>Supply</b>",
            text="Supply <script>alert(1)</script> waits for you.",
            html="<p>Supply</p>",
            markdown="",
            link="http://x",
        )
        await EmailChannel(SmtpConfig("127.0.0.1", port)).send(mail, "bcd@x.example", "ntf-dev1")
    finally:
        catcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await catcher
    [kept] = caught(tmp_path / "mail")
    assert kept.message_id == "<ntf-dev1@localhost>" and kept.to == "bcd@x.example"

    target = temporal_target(temporal_local)
    dev = create_app(make_settings(pg_url, target, APPROVALS_DATA_DIR=tmp_path))
    async with running(dev) as client:
        page = await client.get("/dev/mails")
    assert page.status_code == 200
    assert "Your decision is needed: &lt;b&gt;Supply&lt;/b&gt;" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert_strict(page.headers, Page(page.text))

    prod = create_app(
        make_settings(
            pg_url,
            target,
            APPROVALS_DATA_DIR=tmp_path,
            APPROVALS_ENV="production",
            APPROVALS_TOKEN_SECRET="t" * 40,
            APPROVALS_SIGNING_SECRET="s" * 40,
            APPROVALS_PUBLIC_BASE_URL="https://approvals.example.com",
            APPROVALS_PAYLOAD_KEYS="prod:cHJvZHVjdGlvbi10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
        )
    )
    async with running(prod) as client:
        assert (await client.get("/dev/mails")).status_code == 404


def test_every_word_of_the_outbox_and_mails_pages_is_in_both_languages() -> None:
    assert set(TEXT["en"]) == set(TEXT["zh-CN"])
    assert all(TEXT["zh-CN"][k] for k in TEXT["en"])


async def test_the_outbox_page_speaks_chinese_or_english_as_the_other_pages_choose(
    api: httpx.AsyncClient,
) -> None:
    zh = await api.get("/admin/outbox", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in zh.text
    assert "<h1>发件箱</h1>" in zh.text and "失败" in zh.text
    assert zh.headers["vary"] == "Accept-Language"
    # The script's words come with the page, in its language.
    main = next(e for e in Page(zh.text).elements if e.attrs.get("id") == "outbox")
    assert json.loads(main.attrs["data-words"])["retry"] == "重发"
    en = await api.get("/admin/outbox", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in en.text and "<h1>Outbox</h1>" in en.text
    # ?lang= wins over the header; the page links to the other language.
    chosen = await api.get("/admin/outbox?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "<h1>Outbox</h1>" in chosen.text and 'href="?lang=zh-CN"' in chosen.text
    plain = await api.get("/admin/outbox")
    assert "<h1>Outbox</h1>" in plain.text


async def test_the_mails_page_speaks_chinese_or_english(
    tmp_path: Path, pg_url: str, temporal_local: WorkflowEnvironment
) -> None:
    dev = create_app(
        make_settings(pg_url, temporal_target(temporal_local), APPROVALS_DATA_DIR=tmp_path)
    )
    async with running(dev) as client:
        zh = await client.get("/dev/mails", headers={"Accept-Language": "zh"})
        en = await client.get("/dev/mails?lang=en", headers={"Accept-Language": "zh"})
    assert '<html lang="zh-CN">' in zh.text and "<h1>已捕获的邮件</h1>" in zh.text
    assert "还没有邮件" in zh.text
    assert '<html lang="en">' in en.text and "<h1>Caught mails</h1>" in en.text
    assert_strict(zh.headers, Page(zh.text))
