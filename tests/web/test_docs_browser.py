"""``/docs`` renders in a browser that can reach nothing but the API (offline)."""

from __future__ import annotations

from playwright.async_api import Route, expect

from tests.support.browser import Browsing


async def test_docs_render_every_operation_without_leaving_the_origin(
    base_url: str, browsing: Browsing
) -> None:
    page = await browsing.page()
    elsewhere: list[str] = []

    async def only_the_api(route: Route) -> None:
        if route.request.url.startswith(f"{base_url}/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_api)
    await page.goto(f"{base_url}/docs")

    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() >= 20
    await expect(page.locator(".info .title")).to_contain_text("Approvals API")
    assert elsewhere == []
    assert browsing.errors == []
