"""The request detail names each field by its label in the page's language: 合同编号 in
zh-CN, Contract number in en (the view's ``field_labels``), not ``contract no``.

The page's language decides, not the browser's: the address names one language and the
browser prefers the other. bcd_zheng has saved no language (a saved one would win).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import expect

from tests.support.api import Auth
from tests.support.browser import Browsing

pytestmark = pytest.mark.usefixtures("worker")


async def submit_contract(base_url: str, auth: Auth) -> str:
    body = {
        "type": "big_customer_contract",
        "title": f"Labelled contract {uuid.uuid4().hex[:6]}",
        "customer": "Huadong Trading",
        "amount": "250000",
        "fields": {"contract_no": "C-LABEL-1", "settlement_floor_price": "180000"},
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post("/v1/requests", json=body, headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    rid: str = resp.json()["id"]
    return rid


@pytest.mark.parametrize(
    ("lang", "prefers", "label", "other"),
    [
        ("zh-CN", "en-US", "合同编号", "Contract number"),
        ("en", "zh-CN", "Contract number", "合同编号"),
    ],
)
async def test_the_request_detail_shows_each_field_by_its_label_in_the_pages_language(
    browsing: Browsing, base_url: str, auth: Auth, lang: str, prefers: str, label: str, other: str
) -> None:
    rid = await submit_contract(base_url, auth)
    page = await browsing.page(locale=prefers)
    token = auth("bcd_zheng")["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base_url}/inbox?lang={lang}#token={token}&request={rid}")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    fields = page.locator("#detail section[aria-labelledby='fields-title'] dl")
    await expect(fields.locator("dt").first).to_have_text(label)
    await expect(fields.locator("dd").first).to_have_text("C-LABEL-1")
    await expect(fields).not_to_contain_text(other)
    await expect(fields).not_to_contain_text("contract no")
