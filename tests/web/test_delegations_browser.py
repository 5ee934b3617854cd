"""The inbox's Delegations tab (委托/代理) in a real browser: make one, see a refusal in
place, read it in zh-CN, end it by clicking.

Headless chromium (Debian's, through Playwright) against the real app, database,
Temporal server and worker (tests/web/conftest.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_inbox_browser import accept_refusal, open_inbox, read

pytestmark = pytest.mark.usefixtures("worker")


async def test_a_user_delegates_from_the_delegations_tab_and_ends_it(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth, user="cmd_han")
    await page.get_by_role("tab", name="Delegations").click()
    await expect(page.locator("#panel-delegations")).to_be_visible()

    until = (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    # To themself: the API refuses, and says why in place.
    await page.locator("#deleg-to").fill("cmd_han")
    await page.locator("#deleg-ends").fill(until)
    await page.locator("#deleg-create").click()
    refusal = page.locator("#deleg-status .error")
    await expect(refusal).to_contain_text("The delegation was not made.")
    await expect(refusal).to_contain_text("(422 validation_error)")
    accept_refusal(browsing, "422 (Unprocessable Entity)")

    await page.locator("#deleg-to").fill("css_ma")
    await page.locator("#deleg-types").select_option("customer_complaint")
    await page.locator("#deleg-reason").fill("business trip")
    await page.locator("#deleg-create").click()
    await expect(page.locator("#deleg-status")).to_have_text("Delegation made.")
    item = page.locator("#deleg-list .deleg-item", has_text="I delegate to css_ma").first
    await expect(item).to_contain_text("in force")
    await expect(item).to_contain_text("business trip")

    made = await read(base_url, auth, "cmd_han", "/v1/me/delegations")
    mine = [d for d in made["items"] if d["to"] == "css_ma" and d["status"] == "active"]
    assert [d["request_types"] for d in mine] == [["customer_complaint"]]
    item = page.locator(f'#deleg-list .deleg-item[data-id="{mine[0]["id"]}"]')

    # In Chinese at once.
    await page.locator("#lang-zh").click()
    await expect(page.get_by_role("tab", name="委托")).to_be_visible()
    await expect(item).to_contain_text("生效中")
    await expect(item).to_contain_text("我委托给 css_ma")
    await page.locator("#lang-en").click()

    await item.get_by_role("button", name="End now").click()
    await expect(page.locator("#deleg-status")).to_have_text("The delegation has ended.")
    await expect(item).to_contain_text("ended")
    after = await read(base_url, auth, "cmd_han", "/v1/me/delegations")
    assert {d["status"] for d in after["items"] if d["id"] == mine[0]["id"]} == {"ended"}
