"""A requester submits in the browser (发起申请): the "New request" tab lists the request
types, builds the form from the chosen policy's fields (labels in the page's language),
shows the route the request would take as one types (the API's preview: each stage in
the page's language, with its approvers and why), submits, and opens the new request.
A missing required field is marked next to it before anything is sent, and the API's
422 for a field is shown next to that field.

Submitted by am_sun, who has saved no language: the API's texts (the preview's stage
names and reasons) follow the page's Accept-Language. In zh-CN and en, against the real
app, database, Temporal and worker (conftest.py).
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, Request, Route, expect

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.web.test_access_browser import PHONE, check, phone
from tests.web.test_inbox_browser import open_inbox, read

pytestmark = pytest.mark.usefixtures("worker")

LOCALES = ("zh-CN", "en-US")

# What the page shows of big_customer_contract in each language (its policy's texts).
WORDS = {
    "zh-CN": {
        "amount": "合同额（元）",
        "contract_no": "合同编号",
        "floor": "结算底价",
        "floor_help": "合同文本或草稿（含结算底价）",
        "first": "大客户管理部签署",
        "second": "销售副总监批准",
        "required": "必填。",
        "tab": "发起申请",
    },
    "en-US": {
        "amount": "Contract amount (CNY)",
        "contract_no": "Contract number",
        "floor": "Settlement floor price",
        "floor_help": "Draft contract with the settlement floor price.",
        "first": "Big-customer management department signs",
        "second": "Deputy sales director approves",
        "required": "Required.",
        "tab": "New request",
    },
}


async def choose_contract(page: Page, locale: str) -> None:
    words = WORDS[locale]
    await expect(page.locator("#tab-new")).to_have_text(words["tab"])
    await page.locator("#tab-new").click()
    await expect(page.locator("#new-type option[value=big_customer_contract]")).to_be_attached()
    await page.locator("#new-type").select_option("big_customer_contract")
    await expect(page.locator("#new-form")).to_be_visible()
    await expect(page.locator("#new-amount-label")).to_have_text(words["amount"])
    await expect(page.locator("label[for=new-f-contract_no]")).to_have_text(words["contract_no"])
    await expect(page.locator("#new-f-settlement_floor_price-help")).to_contain_text(
        words["floor_help"]
    )
    # The optional field says so; choices, yes/no and dates have their own controls.
    await expect(page.locator("#new-f-documents")).to_have_js_property("tagName", "TEXTAREA")


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_requester_fills_the_form_sees_the_route_and_lands_on_the_request(
    browsing: Browsing, base_url: str, auth: Auth, locale: str
) -> None:
    words = WORDS[locale]
    page = await phone(browsing, locale)
    await open_inbox(page, base_url, auth, user="am_sun")
    await choose_contract(page, locale)
    title = f"Form contract {uuid.uuid4().hex[:6]}"
    await page.locator("#new-title").fill(title)
    await page.locator("#new-customer").fill("Huadong Trading")
    await page.locator("#new-amount").fill("250000")
    await page.locator("#new-f-contract_no").fill("C-FORM-1")
    # Not every field filled yet: the page says what the route still needs.
    await expect(page.locator("#new-preview")).to_contain_text(words["floor"])
    await page.locator("#new-f-settlement_floor_price").fill("180000")
    # The route, as the API previews it, in the page's language: who and why.
    stages = page.locator("#new-route > li")
    await expect(stages).to_have_count(2)
    await expect(stages.nth(0)).to_contain_text(words["first"])
    await expect(stages.nth(0)).to_contain_text("bcd_zheng")
    await expect(stages.nth(1)).to_contain_text(words["second"])
    await expect(stages.nth(0).locator(".reason")).to_contain_text("250,000")
    await expect(stages.nth(0).locator(".reason")).to_contain_text(
        "100,000 → 角色" if locale == "zh-CN" else "100,000 → role"
    )
    await check(page, f"new request form ({locale})")
    # Typing changes the route (debounced): a small contract goes to the office manager.
    await page.locator("#new-amount").fill("50000")
    await expect(stages.nth(0)).not_to_contain_text(words["first"])
    await page.locator("#new-amount").fill("250000")
    await expect(stages.nth(0)).to_contain_text(words["first"])

    await page.locator("#new-submit").click()
    await expect(page.locator("#detail-title")).to_have_text(title)
    await expect(page.locator("#detail-title")).to_be_focused()
    request_id = (await page.locator("#detail .meta code").first.text_content()) or ""
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id
    assert f"request={request_id}" in page.url
    view = await read(base_url, auth, "am_sun", f"/v1/requests/{request_id}")
    assert view["requester"] == "am_sun"
    assert view["type"] == "big_customer_contract"
    assert view["customer"] == "Huadong Trading"
    assert view["amount"] == "250000.00"
    assert view["fields"]["contract_no"] == "C-FORM-1"
    assert "bcd_zheng" in view["current_approvers"]
    # The form is ready for the next request.
    await expect(page.locator("#new-form")).to_be_hidden()


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_missing_field_is_marked_next_to_it_and_so_is_the_apis_refusal(
    browsing: Browsing, base_url: str, auth: Auth, locale: str
) -> None:
    words = WORDS[locale]
    page = await browsing.page(locale=locale, viewport=PHONE)
    sent: list[str] = []

    def submitted(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/v1/requests"):
            sent.append(request.url)

    page.on("request", submitted)
    await open_inbox(page, base_url, auth, user="am_sun")
    await choose_contract(page, locale)
    await page.locator("#new-title").fill(f"Incomplete {uuid.uuid4().hex[:6]}")
    await page.locator("#new-amount").fill("250000")
    await page.locator("#new-f-settlement_floor_price").fill("180000")
    # The contract number is left out: marked next to it, focused, nothing sent.
    await page.locator("#new-submit").click()
    error = page.locator("#new-f-contract_no-error")
    await expect(error).to_have_text(words["required"])
    await expect(page.locator("#new-f-contract_no")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#new-f-contract_no")).to_be_focused()
    await expect(page.locator("#new-f-contract_no")).to_have_attribute(
        "aria-describedby", re.compile("new-f-contract_no-error")
    )
    assert sent == []
    # Filled in, the mark goes; a value only the API refuses (five places where the
    # policy allows four) is refused with a 422 naming the field: shown next to it.
    await page.locator("#new-f-contract_no").fill("C-FORM-2")
    await page.locator("#new-f-settlement_floor_price").fill("180000.12345")
    await page.locator("#new-submit").click()
    floor = page.locator("#new-f-settlement_floor_price-error")
    await expect(floor).to_be_visible()
    await expect(floor).to_contain_text("4")
    await expect(error).to_be_hidden()
    await expect(page.locator("#new-f-settlement_floor_price")).to_be_focused()
    assert len(sent) == 1
    # Chromium logs each 4xx answer as a console error: the preview's and the
    # submission's 422s are the test's own; nothing else may have gone wrong.
    refused = "the server responded with a status of 422"
    assert browsing.errors and all(refused in e for e in browsing.errors), browsing.errors
    browsing.errors.clear()


async def test_a_retry_after_a_network_error_reuses_the_idempotency_key(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="en-US")
    keys: list[str] = []

    async def lose_the_first(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            await route.abort("failed")  # the answer never comes back
        else:
            await route.continue_()

    await page.route(f"{base_url}/v1/requests", lose_the_first)
    await open_inbox(page, base_url, auth, user="am_sun")
    await choose_contract(page, "en-US")
    title = f"Retried contract {uuid.uuid4().hex[:6]}"
    await page.locator("#new-title").fill(title)
    await page.locator("#new-amount").fill("250000")
    await page.locator("#new-f-contract_no").fill("C-FORM-3")
    await page.locator("#new-f-settlement_floor_price").fill("180000")
    await page.locator("#new-submit").click()
    await expect(page.locator("#new-message")).to_contain_text("at most once")
    await page.locator("#new-submit").click()
    await expect(page.locator("#detail-title")).to_have_text(title)
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("web-"), keys
    assert all("ERR_FAILED" in e for e in browsing.errors), browsing.errors
    browsing.errors.clear()


async def test_choices_and_yes_no_are_lists_in_the_pages_language_and_steer_the_route(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    page = await browsing.page(locale="zh-CN")
    await open_inbox(page, base_url, auth, user="am_sun")
    await page.locator("#tab-new").click()
    await expect(page.locator("#new-type option[value=customer_complaint]")).to_be_attached()
    await page.locator("#new-type").select_option("customer_complaint")
    await expect(page.locator("#new-amount-label")).to_have_text("涉及金额（元，如有）")
    category = page.locator("#new-f-category")
    await expect(category).to_have_js_property("tagName", "SELECT")
    await expect(category.locator("option[value=product_quality]")).to_have_text("产品质量")
    await expect(page.locator("label[for=new-f-category]")).to_have_text("投诉类别")
    major = page.locator("#new-f-major")
    await expect(major.locator("option[value=true]")).to_have_text("是")
    await expect(major.locator("option[value=false]")).to_have_text("否")
    await category.select_option("staff")
    await major.select_option("false")
    await page.locator("#new-f-description").fill("送货晚了三天")
    await expect(page.locator("#new-route > li").first).to_contain_text("回复客户（投诉员工）")
