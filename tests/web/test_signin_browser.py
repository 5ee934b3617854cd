"""Company sign-in in a real browser: the inbox sends people to the identity provider's
login page (the real oidc-provider on node), and back, signed in with a session.

Nobody pastes a token here: the page finds the session through ``GET /auth/session``
and sends its CSRF token with every call; signing out ends the session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment

from tests.support.browser import Browsing
from tests.support.oidc import PASSWORD
from tests.web.conftest import serving_with_provider


@pytest.fixture(scope="module")
async def signin_url(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    demo_org: None,
) -> AsyncIterator[str]:
    """The app behind the provider, which knows am_li and someone the directory does not."""
    users = {
        "li": {"sub": "acct-li", "preferred_username": "am_li", "name": "Li"},
        "stranger": {"sub": "acct-x", "preferred_username": "nobody_here"},
    }
    async with serving_with_provider(
        tmp_path_factory.mktemp("op"), pg_url, temporal_local, users
    ) as (url, _):
        yield url


async def test_signing_in_through_the_provider_opens_the_inbox_and_signing_out_ends_it(
    signin_url: str, browsing: Browsing
) -> None:
    page = await browsing.page()
    await page.goto(f"{signin_url}/inbox")
    company = page.get_by_role("link", name="Sign in with your company account")
    await expect(company).to_be_visible()
    await company.click()

    # The provider's own login page, on its own origin.
    await expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    await page.get_by_label("User name").fill("li")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.locator("#app")).to_be_visible()
    assert page.url.startswith(f"{signin_url}/inbox")
    await expect(page.locator("#who")).to_contain_text("Li")
    cookies = {c["name"]: c for c in await page.context.cookies(signin_url)}
    assert cookies["approvals_session"]["httpOnly"] is True
    assert cookies["approvals_session"]["sameSite"] == "Lax"
    # A call that changes something goes through: the page sends the session's CSRF token.
    await page.locator("#tab-notices").click()
    async with page.expect_response(lambda r: "/v1/notifications/read-all" in r.url) as answer:
        await page.locator("#notices-readall").click()
    sent = await answer.value
    assert sent.ok, await sent.text()
    assert (await sent.request.all_headers()).get("x-csrf-token")
    # The page reloads the notices after read-all; signing out ends the session at once,
    # so a reload still on its way would come back 401: wait for it (the button is again
    # enabled once it has come back).
    await expect(page.locator("#notices-readall")).to_be_enabled()

    await page.locator("#signout").click()
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#app")).to_be_hidden()
    async with httpx.AsyncClient(base_url=signin_url) as client:
        copy = cookies["approvals_session"]["value"]
        resp = await client.get("/v1/me", headers={"Cookie": f"approvals_session={copy}"})
    assert resp.status_code == 401, resp.text


async def test_someone_unknown_to_the_directory_sees_a_page_saying_so(
    signin_url: str, browsing: Browsing
) -> None:
    page = await browsing.page(locale="zh-CN")
    await page.goto(f"{signin_url}/auth/login?next=/inbox")
    await page.get_by_label("User name").fill("stranger")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="不是审批系统的用户")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("nobody_here")
    # The page comes with its status, 403, which chromium reports on the console: expected.
    assert browsing.errors == [
        "console: Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    browsing.errors.clear()
