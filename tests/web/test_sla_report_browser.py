"""The SLA report page in a real browser: reached from the inbox's header, filters
change its table, each table's CSV and the workbook download, and at 390 px it passes
the access checks (axe-core) in en and zh-CN.

The read-model rows are the API test's (tests/api/test_sla_report.py): a request type
of their own in March 2020, so nothing else in the shared database counts.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from playwright.async_api import Page, expect

from tests.api.test_sla_report import sla_type  # noqa: F401 (the rows, a module fixture)
from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_access_browser import check, phone
from tests.web.test_inbox_browser import open_inbox, read

pytestmark = pytest.mark.usefixtures("worker")


async def test_an_auditor_filters_the_sla_report_and_downloads_it(
    browsing: Browsing,
    base_url: str,
    auth: Auth,
    sla_type: str,  # noqa: F811
) -> None:
    # English saved: the API's texts are in English until the page's switch saves another.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        english = {"channels": ["email"], "locale": "en", "time_zone": "Asia/Shanghai"}
        r = await client.put("/v1/me/preferences", json=english, headers=auth("auditor_qin"))
        assert r.status_code == 200, r.text
    page = await phone(browsing, "en-US")
    await open_inbox(page, base_url, auth, user="auditor_qin")
    link = page.locator("#reports-link")
    await expect(link).to_be_visible()
    await check(page, "the inbox with the SLA report's link (en)")
    await link.click()
    await expect(page.locator("#sla-filters")).to_be_visible()

    await page.goto(f"{base_url}/reports/sla?type={sla_type}&from=2020-03-02&to=2020-03-15")
    total = page.locator(f'#sla-rows tr.total[data-type="{sla_type}"]')
    await expect(total.locator("td").first).to_have_text("7")
    await expect(page.locator("#sla-weeks tbody tr")).to_have_count(2)
    await expect(page.locator("#sla-open tbody tr")).to_have_count(1)
    await expect(page.locator("#sla-open tbody tr")).to_contain_text("fh_gao")
    await check(page, "SLA report (en)")

    # One week less: only 2020-W10's four steps; then fin_he's department only.
    await page.locator("#sla-to").fill("2020-03-08")
    await page.locator("#sla-show").click()
    await expect(total.locator("td").first).to_have_text("4")
    await expect(page.locator("#sla-weeks tbody tr")).to_have_count(1)
    await page.locator("#sla-to").fill("2020-03-15")
    await page.locator("#sla-department").fill("fh_gao")
    await page.locator("#sla-show").click()
    await expect(total.locator("td").first).to_have_text("2")

    text = (await _download(page, "#sla-csv", "sla-2020-03-02-2020-03-15.csv")).decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("Request type,")
    assert any(line.startswith(f"{sla_type},") and ",sign," in line for line in lines)

    # The other tables download as they are filtered: fin_he's steps began in 2020-W11
    # only, and their request is the one still open; the workbook holds all three.
    weeks = await _download(page, "#sla-csv-weeks", "sla-weeks-2020-03-02-2020-03-15.csv")
    assert [line.split(",")[0] for line in weeks.decode("utf-8-sig").splitlines()] == [
        "ISO week",
        "2020-W11",
    ]
    slow = (await _download(page, "#sla-csv-open", "sla-open-2020-03-02-2020-03-15.csv")).decode(
        "utf-8-sig"
    )
    assert slow.startswith("Request id,") and ",fh_gao," in slow
    book = load_workbook(
        io.BytesIO(await _download(page, "#sla-xlsx", "sla-2020-03-02-2020-03-15.xlsx"))
    )
    assert book.sheetnames == ["By type and stage", "Trend by week", "Slowest open requests"]

    await page.locator("#lang-zh").click()
    await expect(page.locator("#sla-rows th").first).to_have_text("类型 · 环节")
    await expect(page.locator("h1")).to_have_text("SLA 报表")
    await expect(page.locator("#sla-csv-weeks")).to_have_text("下载 CSV：按周趋势")
    # Signed in, the switch is saved as the user's language; the API's texts follow.
    await expect(page.locator("#sla-type option[value=big_customer_contract]")).to_have_text(
        "大客户合同"
    )
    saved = await read(base_url, auth, "auditor_qin", "/v1/me/preferences")
    assert saved == {**english, "locale": "zh-CN"}
    await check(page, "SLA report (zh-CN)")


async def _download(page: Page, link: str, name: str) -> bytes:
    async with page.expect_download() as info:
        await page.locator(link).click()
    download = await info.value
    assert download.suggested_filename == name
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


async def test_someone_who_manages_no_one_sees_no_link_and_a_refusal(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth, user="am_li")
    await expect(page.locator("#who")).to_contain_text("am_li")
    await expect(page.locator("#reports-link")).to_be_hidden()
    await page.goto(f"{base_url}/reports/sla")
    await expect(page.locator("#sla-status .error")).to_contain_text("SLA reports are for managers")
    await expect(page.locator("#sla-filters")).to_be_hidden()


async def test_the_report_starts_in_the_users_saved_language(
    browsing: Browsing,
    base_url: str,
    auth: Auth,
    sla_type: str,  # noqa: F811
) -> None:
    # Saved as Chinese, in an English browser: the page's words and the API's in Chinese.
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.patch(
            "/v1/me/preferences", json={"locale": "zh-CN"}, headers=auth("auditor_qin")
        )
        assert r.status_code == 200, r.text
    page = await phone(browsing, "en-US")
    await open_inbox(page, base_url, auth, user="auditor_qin")
    # Signed in, but nothing of the inbox's remembered: the report finds the saved language.
    await page.evaluate("localStorage.removeItem('approvals.lang')")
    await page.goto(f"{base_url}/reports/sla?type={sla_type}&from=2020-03-02&to=2020-03-15")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator("#sla-type option[value=big_customer_contract]")).to_have_text(
        "大客户合同"
    )
    await expect(page.locator("#sla-csv-weeks")).to_have_text("下载 CSV：按周趋势")
    # The address's language is a one-off view: it wins over the saved one.
    await page.goto(f"{base_url}/reports/sla?lang=en&type={sla_type}&from=2020-03-02")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#sla-csv-weeks")).not_to_have_text("下载 CSV：按周趋势")
