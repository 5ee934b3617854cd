"""Discussion in a real browser: the requester comments with an @mention picked from the
suggestions and a file attached; the mentioned approver sees it and downloads the file.

Headless chromium (Debian's, through Playwright) against the real app, database,
Temporal server and worker (tests/web/conftest.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_inbox_browser import open_request, read, speaks, submit_contract

pytestmark = pytest.mark.usefixtures("worker")

CSV = "金额,备注\n250000,年度合同\n".encode()


async def test_a_comment_with_a_mention_and_a_file_which_the_mentioned_downloads(
    browsing: Browsing, base_url: str, auth: Auth, tmp_path: Path
) -> None:
    view = await submit_contract(base_url, auth)
    annex = tmp_path / "附件 annex.csv"
    annex.write_bytes(CSV)

    await speaks(base_url, auth, "am_li", "zh-CN")
    page = await browsing.page(locale="zh-CN")
    await open_request(page, base_url, auth, "am_li", view["id"])
    await expect(page.locator("#discuss-title")).to_have_text("评论与附件")
    box = page.locator("#discuss-body")
    await box.click()
    await box.press_sequentially("请看附件 @bcd")
    await page.locator('#discuss-suggestions [data-mention="bcd_zheng"]').click()
    await expect(box).to_have_value("请看附件 @bcd_zheng ")
    await page.locator("#discuss-files").set_input_files(str(annex))
    await page.get_by_role("button", name="发表评论", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("评论已发表。")
    await expect(page.locator("#discussion .comments")).to_contain_text("提及 bcd_zheng")

    detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    (event,) = [e for e in detail["history"] if e["kind"] == "commented"]
    assert (event["actor"], event["comment"]) == ("am_li", "请看附件 @bcd_zheng")
    assert event["data"]["mentions"] == ["bcd_zheng"]
    (file,) = event["data"]["attachments"]
    assert (file["name"], file["size"], file["content_type"]) == (
        "附件 annex.csv",
        len(CSV),
        "text/csv",
    )

    other = await browsing.page(locale="en-US")
    await open_request(other, base_url, auth, "bcd_zheng", view["id"])
    await expect(other.locator("#discussion .comments")).to_contain_text("请看附件 @bcd_zheng")
    async with other.expect_download() as info:
        await other.locator(f'#discussion [data-file="{file["id"]}"]').click()
    download = await info.value
    assert download.suggested_filename == "附件 annex.csv"
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == CSV
