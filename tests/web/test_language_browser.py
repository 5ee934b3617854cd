"""The page's language switch is the user's choice of language, in a real browser.

The API answers its own texts (stage names, type titles, working-time spans) in the
caller's saved language, so a signed-in user's switch saves it as their preference
(``PATCH /v1/me/preferences`` with the locale only: the other preferences as they were,
unset ones still following the defaults) and fetches again what is on screen; and at
sign-in the page speaks the saved language, whatever the browser's. A save that fails is
said on the page, whose own words still switch. Before sign-in the switch stays in the
browser.

am_li's org entry saves ``locale: en``; the browsing fixture restores every user's
saved preferences after each test.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Response, Route, expect
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import UserPreferenceRow
from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.support.paths import ROOT
from tests.web.test_inbox_browser import open_request, read

pytestmark = pytest.mark.usefixtures("worker")

TEXT = json.loads((ROOT / "api" / "web" / "inbox.i18n.json").read_text(encoding="utf-8"))
STAGE = {"en": "Big-customer management department signs", "zh-CN": "大客户管理部签署"}
TYPE = {"en": "Big-customer contract", "zh-CN": "大客户合同"}
SPAN = {"en": "4 working hours", "zh-CN": "4个工作小时"}
# Not the defaults, so that a write that dropped them would show.
OTHERS = {"channels": ["feishu", "email"], "time_zone": "Europe/Berlin"}


async def waiting_for_am_li(base_url: str, auth: Auth) -> dict[str, Any]:
    """A 250,000 contract by am_sun; bcd_zheng, who signs first, adds am_li before
    them (加签): it waits in am_li's inbox."""
    body = {
        "type": "big_customer_contract",
        "title": f"Language contract {uuid.uuid4().hex[:6]}",
        "customer": "Huadong Trading",
        "amount": "250000",
        "fields": {"contract_no": "C-LANG-1", "settlement_floor_price": "180000"},
    }
    add = {"people": ["am_li"], "position": "before", "comment": "your customer"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.post("/v1/requests", json=body, headers=auth("am_sun"))
        assert r.status_code == 201, r.text
        view: dict[str, Any] = r.json()
        r = await client.post(
            f"/v1/requests/{view['id']}/approvers", json=add, headers=auth("bcd_zheng")
        )
        assert r.status_code == 200, r.text
        assert r.json()["current_approvers"] == ["am_li"]
        r = await client.put(
            "/v1/me/preferences", json={**OTHERS, "locale": "en"}, headers=auth("am_li")
        )
        assert r.status_code == 200, r.text
    return view


async def shows_in(page: Page, lang: str, title: str) -> None:
    """The API's texts on screen, in ``lang``: the inbox row and the open detail."""
    item = page.locator("#inbox-list .item", has_text=title)
    await expect(item).to_contain_text(STAGE[lang])
    await expect(item).to_contain_text(TYPE[lang])
    facts = page.locator("#detail > .facts")
    await expect(facts).to_contain_text(TYPE[lang])
    await expect(page.locator("#detail .stages")).to_contain_text(STAGE[lang])
    working = TEXT[lang]["dl_working"].replace("{span}", SPAN[lang])
    await expect(page.locator("#detail .deadline[data-kind=reply] .working")).to_have_text(working)


async def test_a_signed_in_users_switch_saves_their_language_and_fetches_the_page_again(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await waiting_for_am_li(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    await shows_in(page, "en", view["title"])
    await page.evaluate("window.notReloaded = true")

    await page.locator("#lang-zh").click()
    await shows_in(page, "zh-CN", view["title"])
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["zh-CN"]["tab_inbox"])
    assert await page.evaluate("window.notReloaded === true")
    saved = await read(base_url, auth, "am_li", "/v1/me/preferences")
    assert saved == {**OTHERS, "locale": "zh-CN"}

    await page.locator("#lang-en").click()
    await shows_in(page, "en", view["title"])
    assert await page.evaluate("window.notReloaded === true")
    saved = await read(base_url, auth, "am_li", "/v1/me/preferences")
    assert saved == {**OTHERS, "locale": "en"}
    await expect(page.locator("#lang-status")).to_be_empty()


async def test_a_save_that_fails_is_said_and_the_pages_own_words_still_switch(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await waiting_for_am_li(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])

    async def offline_for_writes(route: Route) -> None:
        if route.request.method == "PATCH":
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await page.route("**/v1/me/preferences", offline_for_writes)
    await page.locator("#lang-zh").click()
    status = page.locator("#lang-status [role=alert]")
    await expect(status).to_contain_text(TEXT["zh-CN"]["lang_not_saved"])
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["zh-CN"]["tab_inbox"])
    # The API still answers in the saved language.
    await expect(page.locator("#detail .stages")).to_contain_text(STAGE["en"])
    saved = await read(base_url, auth, "am_li", "/v1/me/preferences")
    assert saved == {**OTHERS, "locale": "en"}
    # The aborted write is the one thing chromium reports.
    assert [e for e in browsing.errors if "ERR_INTERNET_DISCONNECTED" not in e] == []
    browsing.errors.clear()

    # Online again: the next switch saves, and the message goes.
    await page.unroute("**/v1/me/preferences")
    await page.locator("#lang-en").click()
    await page.locator("#lang-zh").click()
    await expect(page.locator("#detail .stages")).to_contain_text(STAGE["zh-CN"])
    await expect(page.locator("#lang-status")).to_be_empty()
    saved = await read(base_url, auth, "am_li", "/v1/me/preferences")
    assert saved == {**OTHERS, "locale": "zh-CN"}


async def test_before_sign_in_the_switch_stays_in_the_browser(
    browsing: Browsing, base_url: str
) -> None:
    page = await browsing.page(locale="en-US")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/me" in r.url else None)
    await page.goto(f"{base_url}/inbox")
    await expect(page.locator("#signin")).to_be_visible()
    await page.locator("#lang-zh").click()
    await expect(page.locator("#lang-zh")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#signin")).to_contain_text(TEXT["zh-CN"]["sign_in"])
    assert await page.evaluate("localStorage.getItem('approvals.lang')") == "zh-CN"
    assert asked == []


async def test_a_user_saved_as_chinese_starts_in_chinese_in_an_english_browser(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await waiting_for_am_li(base_url, auth)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.patch(
            "/v1/me/preferences", json={"locale": "zh-CN"}, headers=auth("am_li")
        )
        assert r.status_code == 200, r.text
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    # the page's words and the API's texts, both in the saved language
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["zh-CN"]["tab_inbox"])
    await expect(page.locator("#lang-zh")).to_have_attribute("aria-pressed", "true")
    await shows_in(page, "zh-CN", view["title"])
    # nothing was written by merely opening the page
    saved = await read(base_url, auth, "am_li", "/v1/me/preferences")
    assert saved == {**OTHERS, "locale": "zh-CN"}

    # ?lang= in the address is a view of its own: it still wins
    await page.goto(f"{base_url}/inbox?lang=en")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["en"]["tab_inbox"])


async def test_a_user_without_saved_preferences_who_switches_saves_only_the_locale(
    browsing: Browsing,
    base_url: str,
    auth: Auth,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = "om_wu"  # no preferences in the org file
    async with db_sessions.begin() as db:
        await db.execute(delete(UserPreferenceRow).where(UserPreferenceRow.user_id == user))
    page = await browsing.page(locale="en-US")
    token = auth(user)["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base_url}/inbox#token={token}")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["en"]["tab_inbox"])

    def saving(response: Response) -> bool:
        return response.request.method == "PATCH" and response.url.endswith("/v1/me/preferences")

    async with page.expect_response(saving) as answer:
        await page.locator("#lang-zh").click()
    assert (await answer.value).request.post_data_json == {"locale": "zh-CN"}
    assert (await answer.value).status == 200
    await expect(page.locator("#tab-inbox")).to_contain_text(TEXT["zh-CN"]["tab_inbox"])
    async with db_sessions() as db:
        row = (
            await db.execute(
                select(
                    UserPreferenceRow.channels,
                    UserPreferenceRow.locale,
                    UserPreferenceRow.time_zone,
                    UserPreferenceRow.user_fields,
                ).where(UserPreferenceRow.user_id == user)
            )
        ).one()
    # only the locale is theirs: channels and time zone still follow the defaults
    assert tuple(row) == (None, "zh-CN", None, ["locale"])
    saved = await read(base_url, auth, user, "/v1/me/preferences")
    assert saved == {"channels": ["email"], "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
    assert (await read(base_url, auth, user, "/v1/me"))["locale"] == "zh-CN"
