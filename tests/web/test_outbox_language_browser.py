"""The admin's outbox in zh-CN and en in a real browser: the page and its script's words
(the count of deliveries, the retry button) follow the browser's language, and the
link to the other language switches it."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.support.api import Auth
from tests.support.browser import Browsing


@pytest.mark.parametrize(
    ("locale", "heading", "count", "other"),
    [("zh-CN", "发件箱", "条投递", "English"), ("en-US", "Outbox", "deliveries", "中文")],
)
async def test_the_outbox_speaks_the_browsers_language(
    browsing: Browsing,
    base_url: str,
    auth: Auth,
    locale: str,
    heading: str,
    count: str,
    other: str,
) -> None:
    page = await browsing.page(locale=locale)
    await page.goto(f"{base_url}/admin/outbox")
    await expect(page.locator("h1")).to_have_text(heading)
    token = auth("admin")["Authorization"].removeprefix("Bearer ")
    await page.locator("#token").fill(token)
    await page.locator("#signin button[type=submit]").click()
    await expect(page.locator("#message")).to_contain_text(count)
    await page.locator(".lang a").click()
    await expect(page.locator("h1")).not_to_have_text(heading)
    await expect(page.locator(".lang a")).not_to_have_text(other)
