"""The web inbox in a real browser: an approver signs in with a link, finds a request
submitted through the API, approves it by clicking, and reads the page in zh-CN or en;
approvers send back, add approvers and copy people in, a requester revokes an
approval and urges the approvers (催办), an administrator reassigns a step, each by
clicking, with the API's refusals shown in place.

Headless chromium (Debian's, through Playwright) against the real app, database,
Temporal server and worker (tests/web/conftest.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.api import Auth, pending_steps
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


async def open_inbox(
    page: Page, base_url: str, auth: Auth, query: str = "", user: str = "bcd_zheng"
) -> None:
    """Sign in as ``user`` with a ``#token=`` link, as the dev stack's banner does."""
    token = auth(user)["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base_url}/inbox{query}#token={token}")
    await expect(page.locator("#app")).to_be_visible()


async def open_request(page: Page, base_url: str, auth: Auth, user: str, request_id: str) -> None:
    """Sign in as ``user`` with a link to one request (``#token=…&request=…``)."""
    token = auth(user)["Authorization"].removeprefix("Bearer ")
    await page.goto(f"{base_url}/inbox#token={token}&request={request_id}")
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#detail-title")).to_be_visible()


async def approve(base_url: str, auth: Auth, user: str, request_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post(
            f"/v1/requests/{request_id}/decisions", json={"action": "approve"}, headers=auth(user)
        )
    assert resp.status_code == 200, resp.text
    view: dict[str, Any] = resp.json()
    return view


def accept_refusal(browsing: Browsing, status: str) -> None:
    """Chromium logs every 4xx answer to a fetch as a console error: take back exactly the
    one the test provoked, so that any other error still fails it."""
    logged = f"console: Failed to load resource: the server responded with a status of {status}"
    assert browsing.errors == [logged], browsing.errors
    browsing.errors.clear()


async def speaks(base_url: str, auth: Auth, user: str, locale: str) -> None:
    """Save ``user``'s language as the browser's ``locale``: signed in, the page follows a
    saved language (org/demo.yaml saves one for some people). The ``browsing`` fixture
    puts every saved preference back after the test."""
    lang = "zh-CN" if locale.startswith("zh") else "en"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.patch("/v1/me/preferences", json={"locale": lang}, headers=auth(user))
    assert r.status_code == 200, r.text


async def read(base_url: str, auth: Auth, user: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.get(path, headers=auth(user))
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


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
        inbox = await pending_steps(client, auth("bcd_zheng"))
    first = detail["stages"][0]
    assert first["status"] == "approved"
    assert [slot["decided_by"] for slot in first["slots"]] == ["bcd_zheng"]
    assert detail["stages"][1]["status"] == "active"
    approvals = [e for e in detail["history"] if e["kind"] == "approved"]
    assert [(e["actor"], e["comment"]) for e in approvals] == [
        ("bcd_zheng", "Checked the floor price")
    ]
    assert view["id"] not in {i["request_id"] for i in inbox}


async def test_the_switch_turns_the_page_chinese_at_once_and_a_reload_keeps_it(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.locator("#inbox-list .item", has_text=view["title"]).click()
    await expect(page.locator("#detail > .facts")).to_contain_text("in review")
    await page.get_by_text("Add approvers", exact=True).first.click()
    await page.locator("#addsign-people").fill("sh_zhou")
    await page.locator("#addsign-position").select_option("after")

    await page.get_by_role("button", name="中文").click()
    await chinese(page)
    # What came from the API is redrawn too: the status, the decision form.
    await expect(page.locator("#detail > .facts")).to_contain_text("审批中")
    await expect(page.locator("#detail > .facts")).to_contain_text("申请人")
    await expect(page.get_by_role("button", name="同意", exact=True)).to_be_visible()
    # The route's other actions too, with what was typed and chosen, and the form kept open.
    await expect(page.locator("#more-title")).to_have_text("更多操作")
    await expect(page.locator("#act-sendback summary")).to_have_text("退回到指定环节")
    await expect(page.locator("#act-addsign")).to_have_attribute("open", "")
    await expect(page.locator("#addsign-people")).to_have_value("sh_zhou")
    await expect(page.locator("#addsign-position")).to_have_value("after")
    await expect(page.locator("#addsign-position option:checked")).to_have_text(
        "后加签：我同意后由他们审批"
    )
    await expect(page.locator("#act-addsign button")).to_have_text("加签")

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


async def test_an_approver_sends_the_request_back_to_a_stage_it_has_passed(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    await approve(base_url, auth, "bcd_zheng", view["id"])  # on to the deputy director
    await speaks(base_url, auth, "dsd_liu", "en-US")
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth, user="dsd_liu")
    await page.locator("#inbox-list .item", has_text=view["title"]).click()
    await expect(page.locator("#detail-title")).to_have_text(view["title"])

    await page.get_by_text("Send back to an earlier stage").click()
    target = page.locator("#sendback-to")
    # The stages passed, then the requester; nothing later than the active stage. The
    # stage's name is the API's, in dsd_liu's saved language, which the page follows too.
    await expect(target.locator("option")).to_have_text(
        ["1. Big-customer management department signs", "The requester (am_li)"]
    )
    await target.select_option("big_customer_dept_sign")
    await page.get_by_role("button", name="Send back", exact=True).click()
    await expect(page.locator("#sendback-message")).to_have_text("Give a reason first.")
    await expect(page.locator("#sendback-comment")).to_be_focused()

    await page.locator("#sendback-comment").fill("The floor price is below the list")
    await page.get_by_role("button", name="Send back", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("You sent the request back.")
    await expect(page.locator("#detail .stage").first).to_contain_text("superseded")
    await expect(page.locator("#act-sendback")).to_have_count(0)  # not theirs to decide now

    detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    first, second = detail["stages"][0], detail["stages"][1]
    assert (first["status"], second["status"]) == ("active", "pending")
    assert [d["decided_by"] for d in first["superseded"]] == ["bcd_zheng"]
    sent = [e for e in detail["history"] if e["kind"] == "sent_back"]
    assert [(e["actor"], e["comment"], e["data"]["to_stage"]) for e in sent] == [
        ("dsd_liu", "The floor price is below the list", "big_customer_dept_sign")
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        inbox = await pending_steps(client, auth("bcd_zheng"))
    assert view["id"] in {i["request_id"] for i in inbox}


async def test_an_approver_adds_an_approver_before_themselves_after_a_refusal_shown_in_place(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_inbox(page, base_url, auth)
    await page.locator("#inbox-list .item", has_text=view["title"]).click()
    await expect(page.locator("#detail-title")).to_have_text(view["title"])

    await page.get_by_text("Add approvers", exact=True).first.click()
    await page.locator("#addsign-people").fill("am_li")  # the requester: the API refuses
    await page.locator("#addsign-comment").fill("The department head should see it first")
    await page.locator("#act-addsign").get_by_role("button", name="Add approvers").click()
    refusal = page.locator("#addsign-message .error")
    await expect(refusal).to_contain_text("The approvers were not added.")
    await expect(refusal).to_contain_text("'am_li' is the requester")
    await expect(refusal).to_contain_text("(422 validation_error)")
    await expect(page.locator("#addsign-people")).to_have_value("am_li")  # kept to correct
    accept_refusal(browsing, "422 (Unprocessable Entity)")

    # Alongside, people may decide in turn too: choosing it keeps it.
    await page.locator("#addsign-mode").select_option("in_turn")
    await page.locator("#addsign-position").select_option("alongside")
    await expect(page.locator("#addsign-mode")).to_have_value("in_turn")
    await page.locator("#addsign-position").select_option("before")
    await page.locator("#addsign-mode").select_option("all")

    await page.locator("#addsign-people").fill("sh_zhou")
    await page.locator("#act-addsign").get_by_role("button", name="Add approvers").click()
    await expect(page.locator("#detail .notice")).to_have_text("The approvers were added.")

    detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    added = [s for s in detail["stages"][0]["slots"] if s.get("added_by") == "bcd_zheng"]
    assert [(s["added_as"], [a["user"] for a in s["actors"]]) for s in added] == [
        ("before", ["sh_zhou"])
    ]
    events = [e for e in detail["history"] if e["kind"] == "approvers_added"]
    assert [(e["actor"], e["comment"]) for e in events] == [
        ("bcd_zheng", "The department head should see it first")
    ]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        inbox = await pending_steps(client, auth("sh_zhou"))
    assert view["id"] in {i["request_id"] for i in inbox}


async def test_the_requester_copies_someone_in_from_the_request_page(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    # Not an approver: copying in and urging are all the requester may do in review.
    await expect(page.locator("#detail .more details")).to_have_count(2)

    await page.get_by_text("Copy people in").click()
    await page.locator("#cc-people").fill("fin_he,  dsd_liu")
    await page.locator("#cc-comment").fill("For the budget")
    await page.get_by_role("button", name="Copy in", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("They were copied in.")
    await expect(page.locator("#detail > .facts")).to_contain_text("fin_he")

    detail = await read(base_url, auth, "fin_he", f"/v1/requests/{view['id']}")  # may read it
    assert {"fin_he", "dsd_liu"} <= set(detail["cc"])
    events = [e for e in detail["history"] if e["kind"] == "cc_added"]
    assert [(e["actor"], e["comment"]) for e in events] == [("am_li", "For the budget")]


async def test_the_requester_revokes_an_approval_within_its_window(
    browsing: Browsing, revoke_base_url: str, auth: Auth
) -> None:
    base_url = revoke_base_url
    body = {
        "type": "customer_gift",
        "title": f"Browser gift {uuid.uuid4().hex[:6]}",
        "amount": "300",
        "fields": {"gift": "Mooncakes", "reason": "A top customer"},
    }
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post("/v1/requests", json=body, headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    view = resp.json()
    for user in ("csc_tang", "bgm_feng"):
        view = await approve(base_url, auth, user, view["id"])
    assert view["status"] == "approved" and view["revocable_until"] is not None

    # An approver may not revoke: the page does not offer it.
    other = await browsing.page(locale="en-US")
    await open_request(other, base_url, auth, "bgm_feng", view["id"])
    await expect(other.locator("#act-revoke")).to_have_count(0)

    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    await expect(page.locator("#detail > .facts")).to_contain_text("May be revoked until")
    await page.get_by_text("Revoke the approval").click()
    await page.locator("#revoke-comment").fill("The customer declined the gift")
    await page.get_by_role("button", name="Revoke", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("You revoked the approval.")
    await expect(page.locator("#detail > .facts")).to_contain_text("revoked")
    await expect(page.locator("#act-revoke")).to_have_count(0)

    detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    assert detail["status"] == "revoked" and detail["closed_at"] is not None
    events = [e for e in detail["history"] if e["kind"] == "revoked"]
    assert [(e["actor"], e["comment"]) for e in events] == [
        ("am_li", "The customer declined the gift")
    ]


async def test_the_requester_urges_in_chinese_and_a_second_urge_says_when_it_may_come(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    # An approver is not offered the urge: it is the requester's.
    other = await browsing.page(locale="zh-CN")
    await open_request(other, base_url, auth, "bcd_zheng", view["id"])
    await expect(other.locator("#act-urge")).to_have_count(0)

    await speaks(base_url, auth, "am_li", "zh-CN")
    page = await browsing.page(locale="zh-CN")
    await open_request(page, base_url, auth, "am_li", view["id"])
    urge = page.locator("#act-urge")
    await expect(urge.locator("summary")).to_have_text("催办")
    await urge.locator("summary").click()
    await expect(urge).to_contain_text("bcd_zheng")
    await page.locator("#urge-comment").fill("客户周五签约")
    await urge.get_by_role("button", name="催办", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("您已催办审批人。")
    await expect(page.locator("#detail > .facts")).to_contain_text("1 次")

    # Again at once: too soon, and the page says from when.
    await page.locator("#act-urge summary").click()
    await page.locator("#act-urge").get_by_role("button", name="催办", exact=True).click()
    refusal = page.locator("#urge-message .error")
    await expect(refusal).to_contain_text("未能催办。")
    await expect(refusal).to_contain_text("429 too_soon")
    await expect(refusal.locator("[data-next-allowed]")).to_contain_text("后再次催办")
    accept_refusal(browsing, "429 (Too Many Requests)")

    detail = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    events = [e for e in detail["history"] if e["kind"] == "urged"]
    assert [(e["actor"], e["comment"], e["data"]["people"]) for e in events] == [
        ("am_li", "客户周五签约", ["bcd_zheng"])
    ]


async def test_an_administrator_reassigns_a_pending_step_from_the_request_page(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "admin", view["id"])
    await page.get_by_text("Reassign a pending step").click()
    await page.locator("#reassign-from").select_option("bcd_zheng")
    await page.locator("#reassign-to").fill("price_lin")
    await page.locator("#reassign-comment").fill("On sick leave")
    await page.get_by_role("button", name="Reassign", exact=True).click()
    await expect(page.locator("#detail .notice")).to_have_text("You reassigned the step.")
    await expect(page.locator("#detail > .facts")).to_contain_text("price_lin")

    detail = await read(base_url, auth, "admin", f"/v1/requests/{view['id']}")
    assert detail["current_approvers"] == ["price_lin"]
