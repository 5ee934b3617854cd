"""Deciding in bulk from the web inbox (批量审批), in a real browser: an approver ticks
several pending steps, approves them with one comment, and reads each row's own outcome,
one of them refused because the request changed after the list was loaded; the bulk
controls speak zh-CN as well as en.

Headless chromium (Debian's, through Playwright) against the real app, database,
Temporal server and worker (tests/web/conftest.py).
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_inbox_browser import open_inbox, read, submit_contract

pytestmark = pytest.mark.usefixtures("worker")


def row(page: Page, title: str) -> Locator:
    return page.locator("#inbox-list li.bulk-row", has_text=title)


async def test_an_approver_approves_selected_steps_at_once_and_sees_each_outcome(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    first, second, changed = [await submit_contract(base_url, auth) for _ in range(3)]
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth)
    await expect(page.locator("#bulk-approve")).to_be_disabled()
    for view in (first, second, changed):
        await row(page, view["title"]).locator(".bulk-pick").check()
    await expect(page.locator("#bulk-count")).to_have_text("3 selected")

    # The requester copies someone in after the list was loaded: that request changed.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post(
            f"/v1/requests/{changed['id']}/cc", json={"people": ["fin_he"]}, headers=auth("am_li")
        )
    assert r.status_code == 200, r.text

    await page.locator("#bulk-comment").fill("Morning queue, all checked")
    await page.get_by_role("button", name="Approve selected").click()

    await expect(page.locator("#bulk-message .notice")).to_contain_text("2 decided, 1 refused")
    for view in (first, second):
        result = row(page, view["title"]).locator(".bulk-result")
        await expect(result).to_have_attribute("data-outcome", "done")
        await expect(result).to_contain_text("Approved")
        await expect(row(page, view["title"]).locator(".bulk-pick")).to_be_disabled()
    refused = row(page, changed["title"]).locator(".bulk-result")
    await expect(refused).to_have_attribute("data-outcome", "refused")
    await expect(refused).to_contain_text("changed since you saw it")
    await expect(refused).to_contain_text("409 version_conflict")
    # It stays selected: after a look, it can be decided again.
    await expect(row(page, changed["title"]).locator(".bulk-pick")).to_be_checked()

    # The server says the same: two approved in bulk with the comment, one untouched.
    for view in (first, second):
        detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
        approved = [e for e in detail["history"] if e["kind"] == "approved"]
        assert [(e["actor"], e["comment"], e["data"].get("bulk")) for e in approved] == [
            ("bcd_zheng", "Morning queue, all checked", True)
        ]
    detail = await read(base_url, auth, "am_li", f"/v1/requests/{changed['id']}")
    assert not [e for e in detail["history"] if e["kind"] == "approved"]

    # In Chinese: the controls and each row's outcome, redrawn in place.
    await page.locator("#lang-zh").click()
    await expect(page.get_by_role("button", name="批量同意")).to_be_visible()
    await expect(page.get_by_role("button", name="批量驳回")).to_be_visible()
    await expect(row(page, first["title"]).locator(".bulk-result")).to_contain_text("已同意")

    # Refresh shows the list as it is now: the decided ones are gone, and so are outcomes.
    await page.locator("#inbox-refresh").click()
    await expect(row(page, first["title"])).to_have_count(0)
    await expect(row(page, changed["title"]).locator(".bulk-result")).to_have_count(0)
