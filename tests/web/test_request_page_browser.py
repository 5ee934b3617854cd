"""The request page as its requester sees it, in a real browser (issue 18).

The journey: a requester signs in through the OpenID Connect provider (the real
oidc-provider on node), submits through the form and sees the route preview; an
approver, in their own browser context and signed in through the provider too, returns
it; the requester sees the return, resubmits with a changed field through the same
form (prefilled, the route previewed again); the approver sees the new value and
approves, the deputy director approves, and the requester sees "approved". In en and
in zh-CN, end to end.

Then, with token links (faster): withdraw with its confirm step; a payment recorded on a
group purchase's deposit milestone (required, paid, remaining); the deadlines counting
down in working time, ticking on a fixed clock (page.clock) without refetching, and
overdue once past; and the request page at 390 px with each requester form open passes
the phone checks and the axe scan (test_access_browser.check).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.support.oidc import PASSWORD
from tests.support.paths import ROOT
from tests.web.conftest import serving_with_provider
from tests.web.test_access_browser import check, phone
from tests.web.test_inbox_browser import open_inbox, open_request, read, speaks

pytestmark = pytest.mark.usefixtures("worker")

TEXT = json.loads((ROOT / "api" / "web" / "inbox.i18n.json").read_text(encoding="utf-8"))
LANG = {"en-US": "en", "zh-CN": "zh-CN"}
# A 4-hour working-time span as the API answers it (domain.durations.Span.describe).
SPAN_4H = {"en-US": "4 working hours", "zh-CN": "4个工作小时"}


def words(locale: str) -> dict[str, Any]:
    found: dict[str, Any] = TEXT[LANG[locale]]
    return found


@pytest.fixture(scope="module")
async def journey_url(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    demo_org: None,
) -> AsyncIterator[str]:
    """The app behind the provider, with its own worker; the provider knows the
    requester and both approvers."""
    from worker.main import build_worker

    users = {
        "sun": {"sub": "acct-sun", "preferred_username": "am_sun", "name": "Sun"},
        "zheng": {"sub": "acct-zheng", "preferred_username": "bcd_zheng", "name": "Zheng"},
        "liu": {"sub": "acct-liu", "preferred_username": "dsd_liu", "name": "Liu"},
    }
    async with (
        serving_with_provider(tmp_path_factory.mktemp("op"), pg_url, temporal_local, users) as (
            url,
            settings,
        ),
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
    ):
        yield url


async def sign_in_through_provider(page: Page, url: str, login: str) -> None:
    await page.goto(f"{url}/inbox")
    await page.locator("#signin-company").get_by_role("link").click()
    await page.get_by_label("User name").fill(login)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#app")).to_be_visible()


async def show_request(page: Page, url: str, request_id: str) -> None:
    """The request's one shareable address, opened afresh (what the server says now)."""
    await page.goto(f"{url}/inbox#request={request_id}")
    await page.reload()
    await expect(page.locator("#detail .meta code").first).to_have_text(request_id)


def status(page: Page) -> Any:
    return page.locator("#detail > .facts [data-status]").first


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_the_journey_submit_return_resubmit_approve_through_company_sign_in(
    browsing: Browsing, journey_url: str, locale: str, base_url: str, auth: Auth
) -> None:
    w = words(locale)
    requester = await browsing.page(locale=locale)
    await sign_in_through_provider(requester, journey_url, "sun")
    # Submit through the form, seeing the route it would take.
    await requester.locator("#tab-new").click()
    await expect(
        requester.locator("#new-type option[value=big_customer_contract]")
    ).to_be_attached()
    await requester.locator("#new-type").select_option("big_customer_contract")
    title = f"Journey {uuid.uuid4().hex[:6]}"
    await requester.locator("#new-title").fill(title)
    await requester.locator("#new-customer").fill("Huadong Trading")
    await requester.locator("#new-amount").fill("250000")
    await requester.locator("#new-f-contract_no").fill("C-OLD-1")
    await requester.locator("#new-f-settlement_floor_price").fill("180000")
    await expect(requester.locator("#new-route > li").first).to_contain_text("bcd_zheng")
    await requester.locator("#new-submit").click()
    await expect(requester.locator("#detail-title")).to_have_text(title)
    request_id = (await requester.locator("#detail .meta code").first.text_content()) or ""
    assert f"request={request_id}" in requester.url
    await expect(status(requester)).to_have_text(w["status"]["in_review"])
    # The route on the request page: the first stage waits for its approver.
    await expect(requester.locator("#detail .stage.active")).to_contain_text("bcd_zheng")

    # The approver, in their own browser context, signed in through the provider too,
    # returns it.
    approver = await browsing.page(locale=locale)
    await sign_in_through_provider(approver, journey_url, "zheng")
    await show_request(approver, journey_url, request_id)
    await approver.locator("#decision-comment").fill("Wrong contract number")
    await approver.locator("button[data-action=return]").click()
    await expect(approver.locator("#detail .notice")).to_have_text(w["done_return"])

    # The requester sees the return, and resubmits with a changed field through the
    # policy's form, prefilled with the current values, the route previewed again.
    await show_request(requester, journey_url, request_id)
    await expect(status(requester)).to_have_text(w["status"]["returned"])
    await expect(requester.locator("#detail")).to_contain_text("Wrong contract number")
    await expect(requester.locator("#detail .deadline[data-kind=resubmit]")).to_be_visible()
    await requester.locator("#act-resubmit summary").click()
    await expect(requester.locator("#rs-f-contract_no")).to_have_value("C-OLD-1")
    await expect(requester.locator("#rs-f-settlement_floor_price")).to_have_value("180000")
    await expect(requester.locator("#rs-amount")).to_have_value("250000.00")
    await expect(requester.locator("#rs-route > li").first).to_contain_text("bcd_zheng")
    await requester.locator("#rs-f-contract_no").fill("C-NEW-2")
    await requester.locator("#rs-comment").fill("Number corrected")
    await requester.locator("#act-resubmit button[type=submit]").click()
    await expect(requester.locator("#detail .notice")).to_have_text(w["done_resubmit"])
    await expect(status(requester)).to_have_text(w["status"]["in_review"])

    # The approver sees the new value and approves; the deputy director, the second
    # stage, approves in a third browser context, signed in through the provider too.
    await show_request(approver, journey_url, request_id)
    await expect(approver.locator("#detail")).to_contain_text("C-NEW-2")
    await approver.locator("button[data-action=approve]").click()
    await expect(approver.locator("#detail .notice")).to_have_text(w["done_approve"])
    await speaks(base_url, auth, "dsd_liu", locale)  # org/demo.yaml saves zh-CN for him
    director = await browsing.page(locale=locale)
    await sign_in_through_provider(director, journey_url, "liu")
    await show_request(director, journey_url, request_id)
    await director.locator("button[data-action=approve]").click()
    await expect(director.locator("#detail .notice")).to_have_text(w["done_approve"])

    # The requester sees it approved, and who decided what.
    await show_request(requester, journey_url, request_id)
    await expect(status(requester)).to_have_text(w["status"]["approved"])
    await expect(requester.locator("#detail .stages")).to_contain_text("dsd_liu")
    await expect(requester.locator("#detail .deadlines")).to_have_count(0)
    await expect(requester.locator("#act-withdraw")).to_have_count(0)


async def submit(auth: Auth, base_url: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post("/v1/requests", json=body, headers=auth(user))
    assert resp.status_code == 201, resp.text
    view: dict[str, Any] = resp.json()
    return view


async def decide(auth: Auth, base_url: str, user: str, request_id: str, action: str) -> None:
    body = {"action": action, "comment": "Please correct it"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        resp = await client.post(
            f"/v1/requests/{request_id}/decisions", json=body, headers=auth(user)
        )
    assert resp.status_code == 200, resp.text


def contract() -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Page contract {uuid.uuid4().hex[:6]}",
        "customer": "Huadong Trading",
        "amount": "250000",
        "fields": {"contract_no": "C-PAGE-1", "settlement_floor_price": "180000"},
    }


def group_purchase() -> dict[str, Any]:
    return {
        "type": "real_estate_group_purchase",
        "title": f"Group purchase {uuid.uuid4().hex[:6]}",
        "amount": "10000000",
        "fields": {"units": 12, "project": "Lakeside", "batch": "2", "employer": "City Hospital"},
    }


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
async def test_withdraw_asks_to_confirm_and_the_page_passes_the_phone_checks(
    browsing: Browsing, base_url: str, auth: Auth, locale: str
) -> None:
    w = words(locale)
    view = await submit(auth, base_url, "am_sun", contract())
    # The reply's working span as the API writes it in the page's language (am_sun has saved
    # none, so the page's language is the API's), shown as it is on the request page and in
    # the approver's inbox.
    span = SPAN_4H[locale]
    approver = await browsing.page(locale=locale)
    await open_inbox(approver, base_url, auth, user="bcd_zheng")
    item = approver.locator("#inbox-list .item", has_text=view["title"])
    await expect(item).to_contain_text(w["in_brackets"].replace("{text}", span).strip())
    page = await phone(browsing, locale)
    await open_request(page, base_url, auth, "am_sun", view["id"])
    reply = page.locator("#detail .deadline[data-kind=reply]")
    await expect(reply.locator(".working")).to_have_text(w["dl_working"].replace("{span}", span))
    left = w["cd_left"].replace("{time}", "").strip()  # "left", "剩余"
    await expect(reply.locator(".countdown")).to_contain_text(left)
    await check(page, f"request page ({locale})")
    await page.locator("#act-withdraw summary").click()
    await page.locator("#withdraw-comment").fill("Customer cancelled")
    await check(page, f"withdraw form ({locale})")
    await page.locator("#act-withdraw button[type=submit]").click()
    # Nothing is sent before the confirm step.
    await expect(page.locator("#withdraw-confirm")).to_be_focused()
    await check(page, f"withdraw confirm step ({locale})")
    assert (await read(base_url, auth, "am_sun", f"/v1/requests/{view['id']}"))[
        "status"
    ] == "in_review"
    await page.locator("#withdraw-confirm").click()
    await expect(page.locator("#detail .notice")).to_have_text(w["done_withdraw"])
    await expect(status(page)).to_have_text(w["status"]["withdrawn"])
    await expect(page.locator("#act-withdraw")).to_have_count(0)
    assert (await read(base_url, auth, "am_sun", f"/v1/requests/{view['id']}"))[
        "status"
    ] == "withdrawn"


async def test_the_resubmit_form_on_a_phone_passes_the_checks(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit(auth, base_url, "am_li", contract())
    await decide(auth, base_url, "bcd_zheng", view["id"], "return")
    await speaks(base_url, auth, "am_li", "zh-CN")
    page = await phone(browsing, "zh-CN")
    await open_request(page, base_url, auth, "am_li", view["id"])
    await page.locator("#act-resubmit summary").click()
    await expect(page.locator("#rs-route > li").first).to_contain_text("bcd_zheng")
    await check(page, "resubmit form (zh-CN)")
    # Switched to English while typing: the form stays open, what was typed stays.
    await expect(page.locator("label[for=rs-f-contract_no]")).to_have_text("合同编号")
    await page.locator("#rs-f-contract_no").fill("C-TYPED-9")
    await page.locator("[data-lang=en]").click()
    await expect(page.locator("label[for=rs-f-contract_no]")).to_have_text("Contract number")
    await expect(page.locator("#rs-f-contract_no")).to_have_value("C-TYPED-9")
    # The policy's working time, in the page's words.
    await expect(page.locator("#detail .deadline[data-kind=resubmit] .working")).to_have_text(
        "working time: 5 working days"
    )
    # A field the API would refuse is marked beside it, and nothing is sent.
    await page.locator("#rs-f-contract_no").fill("")
    await page.locator("#act-resubmit button[type=submit]").click()
    await expect(page.locator("#rs-f-contract_no")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#rs-f-contract_no-error")).to_be_visible()
    await check(page, "resubmit form with an error (en)")
    assert (await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}"))[
        "status"
    ] == "returned"


async def test_a_payment_is_recorded_on_the_deposit_milestone(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit(auth, base_url, "am_li", group_purchase())
    await decide(auth, base_url, "sh_zhou", view["id"], "approve")
    await decide(auth, base_url, "sd_chen", view["id"], "approve")
    now = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    assert now["status"] == "awaiting_deposit"
    await speaks(base_url, auth, "am_li", "en-US")
    page = await phone(browsing, "en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    deposit = page.locator("#detail table tr", has_text="Deposit paid")
    await expect(deposit).to_contain_text("¥500,000.00")
    await expect(deposit.locator("[data-remaining=deposit]")).to_have_text("¥500,000.00")
    await expect(page.locator("#detail .deadline[data-kind=milestone]")).to_contain_text(
        "Deposit paid"
    )
    await page.locator("#act-pay-deposit summary").click()
    await expect(page.locator("#pay-deposit-amount")).to_have_value("500000.00")
    await check(page, "payment form (en)")
    await page.locator("#pay-deposit-amount").fill("200000")
    await page.locator("#pay-deposit-reference").fill("BT-2026-1")
    await page.locator("#act-pay-deposit button[type=submit]").click()
    await expect(page.locator("#detail .notice")).to_have_text("Payment recorded.")
    deposit = page.locator("#detail table tr", has_text="Deposit paid")
    await expect(deposit.locator("[data-remaining=deposit]")).to_have_text("¥300,000.00")
    await expect(page.locator("#detail table").first).to_contain_text("BT-2026-1")
    # Not a number: said beside the form, nothing sent.
    await page.locator("#act-pay-deposit summary").click()
    await page.locator("#pay-deposit-amount").fill("lots")
    await page.locator("#act-pay-deposit button[type=submit]").click()
    await expect(page.locator("#pay-deposit-message")).to_contain_text("more than zero")
    after = await read(base_url, auth, "am_li", f"/v1/requests/{view['id']}")
    assert [(p["amount"], p["reference"]) for p in after["milestones"][0]["payments"]] == [
        ("200000.00", "BT-2026-1")
    ]


def left_text(due: datetime, now: datetime) -> str:
    """What countdown.js shows for a deadline still ahead, in English."""
    minutes = math.ceil((due - now).total_seconds() / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (mins, "min")]
    first = next(i for i, (n, _) in enumerate(parts) if n > 0)
    shown = [f"{n} {unit}" for n, unit in parts[first : first + 2] if n > 0]
    return " ".join(shown) + " left"


async def test_deadlines_count_down_in_working_time_without_refetching(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit(auth, base_url, "am_li", group_purchase())
    reply_due = datetime.fromisoformat(view["stages"][0]["reply_due"])
    resolve_due = datetime.fromisoformat(view["resolve_due"])
    assert view["working_time"]["reply"]["span"] == "4 working hours"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    page = await browsing.page(locale="en-US")
    await page.clock.install(time=start - timedelta(seconds=1))
    await page.clock.pause_at(start)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/v1/requests/" in r.url else None)
    await open_request(page, base_url, auth, "am_li", view["id"])

    reply = page.locator("#detail .deadline[data-kind=reply]")
    resolve = page.locator("#detail .deadline[data-kind=resolve]")
    await expect(reply.locator(".working")).to_have_text("working time: 4 working hours")
    await expect(resolve.locator(".working")).to_have_text("working time: 3 working days")
    await expect(reply.locator(".countdown")).to_have_text(left_text(reply_due, start))
    await expect(resolve.locator(".countdown")).to_have_text(left_text(resolve_due, start))
    # In the user's time zone (the context's, Asia/Shanghai).
    shanghai = reply_due.astimezone(UTC) + timedelta(hours=8)
    await expect(reply.locator("time")).to_contain_text(shanghai.strftime("%I:%M").lstrip("0"))

    # An hour later on the page's clock: the countdowns tick, nothing is fetched again.
    loaded = len(fetched)
    later = start + timedelta(hours=1)
    await page.clock.fast_forward(60 * 60 * 1000)
    await expect(resolve.locator(".countdown")).to_have_text(left_text(resolve_due, later))
    await expect(reply.locator(".countdown")).to_have_text(left_text(reply_due, later))
    assert len(fetched) == loaded, fetched[loaded:]

    # Past the reply's deadline: overdue, said so.
    await page.clock.fast_forward(int((reply_due - later).total_seconds() * 1000) + 61_000)
    await expect(reply.locator(".countdown")).to_contain_text("overdue by")
    await expect(reply.locator(".countdown")).to_have_class("countdown badge bad")


async def test_the_apis_refusal_is_shown_in_place(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    """Offered when the page last saw it in review; decided meanwhile: the API refuses the
    withdrawal, and the page shows its words in the form, not a blank or a crash."""
    view = await submit(auth, base_url, "am_li", contract())
    page = await browsing.page(locale="en-US")
    await open_request(page, base_url, auth, "am_li", view["id"])
    await page.locator("#act-withdraw summary").click()
    await decide(auth, base_url, "bcd_zheng", view["id"], "approve")
    await decide(auth, base_url, "dsd_liu", view["id"], "approve")
    await page.locator("#act-withdraw button[type=submit]").click()
    await page.locator("#withdraw-confirm").click()
    message = page.locator("#withdraw-message [role=alert]")
    await expect(message).to_contain_text("The request could not be withdrawn.")
    await expect(message).to_contain_text("the request is closed (409 invalid_state)")
    await expect(page.locator("#act-withdraw button[type=submit]")).to_be_enabled()
    # The refusal comes with its 4xx status, which chromium reports on the console.
    assert len(browsing.errors) == 1 and "status of 4" in browsing.errors[0], browsing.errors
    browsing.errors.clear()
