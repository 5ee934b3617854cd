"""The web inbox in a real browser: an approver signs in with a link, finds a request
submitted through the API, approves it by clicking, and reads the page in zh-CN or en.

Headless chromium (Debian's, through Playwright) against the real app, database,
Temporal server and worker (tests/web/conftest.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.api import Auth
from tests.support.browser import TIMEOUT_MS, Browsing

pytestmark = pytest.mark.usefixtures("worker")


async def submit_contract(base_url: str, auth: Auth) -> dict[str, Any]:
    """A 250,000 contract by am_li: bcd_zheng signs first, then the deputy director."""
    body = {
        "type": "big_customer_contract",
        "title": f"Browser contract {uuid.uuid4().hex[:6]}",
        "customer": "Huadong Trading",
        "amount": "250000",
        "fields": {"contract_no": "C-WEB-1", "settlement_floor_price": "180000"},
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post("/v1/requests", json=body, headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    view: dict[str, Any] = resp.json()
    return view


async def open_inbox(page: Page, base_url: str, auth: Auth, query: str = "") -> None:
    """Sign in as bcd_zheng with a ``#token=`` link, as the dev stack's banner does."""
    token = auth("bcd_zheng")["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base_url}/inbox{query}#token={token}")
    await expect(page.locator("#app")).to_be_visible()


async def test_an_approver_approves_a_listed_request_by_clicking(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth)

    item = page.locator("#inbox-list .item", has_text=view["title"])
    await expect(item).to_be_visible()
    await expect(item).to_contain_text("Huadong Trading")
    await item.click()
    await expect(page.locator("#detail-title")).to_have_text(view["title"])
    await expect(page.locator("#detail > .facts")).to_contain_text("in review")

    await page.locator("#decision-comment").fill("Checked the floor price")
    await page.get_by_role("button", name="Approve", exact=True).click()

    # The page shows what the server now says: decided, and gone from the inbox.
    await expect(page.locator("#detail .notice")).to_have_text("You approved this step.")
    await expect(page.locator("#decision-comment")).to_have_count(0)
    await expect(page.locator("#detail .stage").first).to_contain_text("approved by bcd_zheng")
    await expect(page.locator("#detail .stage").first).to_contain_text("Checked the floor price")
    await expect(item).to_have_count(0)

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        detail = (await client.get(f"/v1/requests/{view['id']}", headers=auth("am_li"))).json()
        inbox = (await client.get("/v1/inbox", headers=auth("bcd_zheng"))).json()
    first = detail["stages"][0]
    assert first["status"] == "approved"
    assert [slot["decided_by"] for slot in first["slots"]] == ["bcd_zheng"]
    assert detail["stages"][1]["status"] == "active"
    approvals = [e for e in detail["history"] if e["kind"] == "approved"]
    assert [(e["actor"], e["comment"]) for e in approvals] == [
        ("bcd_zheng", "Checked the floor price")
    ]
    assert view["id"] not in {i["request_id"] for i in inbox["items"]}


async def test_the_switch_turns_the_page_chinese_at_once_and_a_reload_keeps_it(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.locator("#inbox-list .item", has_text=view["title"]).click()
    await expect(page.locator("#detail > .facts")).to_contain_text("in review")

    await page.get_by_role("button", name="中文").click()
    await chinese(page)
    # What came from the API is redrawn too: the status, the decision form.
    await expect(page.locator("#detail > .facts")).to_contain_text("审批中")
    await expect(page.locator("#detail > .facts")).to_contain_text("申请人")
    await expect(page.get_by_role("button", name="同意", exact=True)).to_be_visible()

    await page.reload()
    await expect(page.locator("#app")).to_be_visible()  # the tab kept its token
    await chinese(page)

    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#tab-inbox")).to_contain_text("Waiting for me")


async def chinese(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("button", name="中文")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#tab-inbox")).to_contain_text("待我审批")
    await expect(page.locator("#tab-mine")).to_have_text("我的申请")
    await expect(page.locator("#tab-notices")).to_contain_text("通知")
    await expect(page.locator("#panel-inbox h2")).to_have_text("我的待办")
    await expect(page.locator("#signout")).to_have_text("退出登录")
    await expect(page.locator("#who")).to_contain_text("待您审批")
    assert await page.title() == "审批待办"


async def test_the_address_then_the_stored_choice_then_the_browser_pick_the_language(
    browsing: Browsing, base_url: str
) -> None:
    page = await browsing.page(locale="zh-CN")
    # A browser that prefers Chinese gets Chinese, signed in or not.
    await page.goto(f"{base_url}/inbox")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator("#signin-title")).to_have_text("登录")
    await expect(page.locator("#signin")).to_contain_text("approvals token")

    # ?lang= and #lang= in the address win over the browser, and stay for this address.
    await page.goto(f"{base_url}/inbox?lang=en")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#signin-title")).to_have_text("Sign in")
    await page.goto(f"{base_url}/inbox#lang=en")
    await expect(page.locator("#signin-title")).to_have_text("Sign in")
    await page.reload()
    await expect(page.locator("#signin-title")).to_have_text("Sign in")

    # A choice made with the switch wins over the browser from then on.
    await page.goto(f"{base_url}/inbox")
    await expect(page.locator("#signin-title")).to_have_text("登录")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("#signin-title")).to_have_text("Sign in")
    await page.goto(f"{base_url}/inbox", timeout=TIMEOUT_MS)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#token")).to_be_visible()
