"""Integer and date fields, and units, in the new-request form (发起申请), in a real browser.

No shipped policy has both an integer and a date field: credit_line has an integer
(cooperation_months, in months) and customer_operating_expense a date
(expected_payment_date). Each is filled, checked as the API checks it before anything is
sent, submitted, and shown back on the request page (an integer with its unit). The tab
asks only for the types the user may submit (``?submittable=true``).
Against the real app, database, Temporal and worker (conftest.py).
"""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Request, expect

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_access_browser import PHONE
from tests.web.test_inbox_browser import open_inbox, read

pytestmark = pytest.mark.usefixtures("worker")


async def test_an_integer_field_is_a_numeric_input_with_its_unit_checked_and_shown_back(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="zh-CN", viewport=PHONE)
    sent: list[str] = []
    listed: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/v1/requests"):
            sent.append(request.url)
        if request.method == "GET" and "/v1/policies?" in request.url:
            listed.append(request.url)

    page.on("request", seen)
    await open_inbox(page, base_url, auth, user="am_sun")
    await page.locator("#tab-new").click()
    await expect(page.locator("#new-type option[value=credit_line]")).to_be_attached()
    assert any(url.endswith("?submittable=true") for url in listed), listed
    await page.locator("#new-type").select_option("credit_line")
    months = page.locator("#new-f-cooperation_months")
    await expect(months).to_be_visible()
    # A whole number: a numeric keypad on phones, the limit said, the unit beside it.
    await expect(months).to_have_attribute("inputmode", "numeric")
    await expect(page.locator("label[for=new-f-cooperation_months]")).to_have_text("已合作时长")
    await expect(page.locator("#new-f-cooperation_months-unit")).to_have_text("个月")
    await expect(page.locator("#new-f-avg_monthly_orders-unit")).to_have_text("元")
    await expect(page.locator("#new-f-cooperation_months-help")).to_have_text("不少于 0。")
    await expect(months).to_have_attribute(
        "aria-describedby",
        "new-f-cooperation_months-unit "
        "new-f-cooperation_months-help "
        "new-f-cooperation_months-error",
    )
    title = f"Credit line {uuid.uuid4().hex[:6]}"
    await page.locator("#new-title").fill(title)
    await page.locator("#new-customer").fill("Xinghe Foods")
    await page.locator("#new-amount").fill("50000")
    await page.locator("#new-f-avg_monthly_orders").fill("8000")
    await page.locator("#new-f-credit_rating").select_option("good")
    await page.locator("#new-f-profile").fill("Twelve years in wholesale.")
    await page.locator("#new-f-assessment").fill("Pays on time.")
    error = page.locator("#new-f-cooperation_months-error")
    # As the API: not a whole number, then below the minimum; nothing is sent.
    await months.fill("2.5")
    await page.locator("#new-submit").click()
    await expect(error).to_have_text("请输入整数。")
    await months.fill("-1")
    await page.locator("#new-submit").click()
    await expect(error).to_have_text("不能小于 0。")
    assert sent == []
    await months.fill("12")
    await page.locator("#new-submit").click()
    await expect(page.locator("#detail-title")).to_have_text(title)
    # Shown back after its label, with its unit.
    await expect(page.locator("#detail section[aria-labelledby=fields-title]")).to_contain_text(
        "已合作时长"
    )
    await expect(page.locator("#detail section[aria-labelledby=fields-title]")).to_contain_text(
        "12 个月"
    )
    request_id = (await page.locator("#detail .meta code").first.text_content()) or ""
    view = await read(base_url, auth, "am_sun", f"/v1/requests/{request_id}")
    assert view["fields"]["cooperation_months"] == 12
    assert len(sent) == 1


async def test_a_date_field_is_a_date_input_submitted_and_shown_back_as_iso(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="en-US", viewport=PHONE)
    await open_inbox(page, base_url, auth, user="am_sun")
    await page.locator("#tab-new").click()
    await expect(
        page.locator("#new-type option[value=customer_operating_expense]")
    ).to_be_attached()
    await page.locator("#new-type").select_option("customer_operating_expense")
    due = page.locator("#new-f-expected_payment_date")
    await expect(due).to_have_attribute("type", "date")
    await expect(page.locator("label[for=new-f-expected_payment_date]")).to_have_text(
        "Expected payment date"
    )
    title = f"Expense {uuid.uuid4().hex[:6]}"
    await page.locator("#new-title").fill(title)
    await page.locator("#new-amount").fill("3000")
    await page.locator("#new-f-purpose").fill("Trade fair booth")
    await page.locator("#new-f-payment_method").fill("Bank transfer")
    await page.locator("#new-f-budget_basis").fill("2027 marketing budget")
    await page.locator("#new-f-within_budget").select_option("true")
    # Left empty, it is required: marked before anything is sent.
    await page.locator("#new-submit").click()
    await expect(page.locator("#new-f-expected_payment_date-error")).to_have_text("Required.")
    # The browser's date control gives the API's own form, YYYY-MM-DD.
    await due.fill("2027-01-15")
    await expect(due).to_have_js_property("value", "2027-01-15")
    await page.locator("#new-submit").click()
    await expect(page.locator("#detail-title")).to_have_text(title)
    await expect(page.locator("#detail section[aria-labelledby=fields-title]")).to_contain_text(
        "Expected payment date"
    )
    await expect(page.locator("#detail section[aria-labelledby=fields-title]")).to_contain_text(
        "2027-01-15"
    )
    request_id = (await page.locator("#detail .meta code").first.text_content()) or ""
    view = await read(base_url, auth, "am_sun", f"/v1/requests/{request_id}")
    assert view["fields"]["expected_payment_date"] == "2027-01-15"
