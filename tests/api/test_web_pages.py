"""Every web page: one strict Content-Security-Policy, nothing inline, headers alike.

The inbox, the admin's outbox, the pages a signed link opens and the page of a company
sign-in that did not work (each message page rendered directly: it needs no database);
the development mail catcher's page is checked in tests/api/test_outbox_pages.py (it
needs the running app).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.web import links, signin
from tests.support.api import make_settings
from tests.support.pages import Page, assert_strict, fetched

UNUSED_DATABASE = "postgresql+asyncpg://unused@127.0.0.1:9/unused"
UNUSED_TEMPORAL = "127.0.0.1:9"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(make_settings(UNUSED_DATABASE, UNUSED_TEMPORAL))


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.parametrize("path", ["/inbox", "/admin/outbox"])
async def test_each_page_is_strict_and_has_no_inline_code(
    web: httpx.AsyncClient, path: str
) -> None:
    resp, page = await fetched(web, path)
    assert_strict(resp.headers, page)
    assert page.stylesheets


async def test_signed_link_pages_are_strict_and_have_no_inline_code(web: httpx.AsyncClient) -> None:
    resp = links.refused_page("zh-CN", 410, "used")
    html = bytes(resp.body).decode()
    headers = httpx.Headers(dict(resp.headers))
    page = Page(html)
    assert_strict(headers, page)
    # Its form posts to itself; its stylesheet is served.
    assert "form-action 'self'" in headers["content-security-policy"]
    [sheet] = [
        e.attrs["href"]
        for e in page.elements
        if e.tag == "link" and e.attrs.get("rel") == "stylesheet"
    ]
    served = await web.get(sheet)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_company_sign_in_pages_are_strict_and_have_no_inline_code(
    web: httpx.AsyncClient, lang: str
) -> None:
    resp = signin.message_page(lang, 403, "unknown_title", "<b>li</b> is not a user")
    html = bytes(resp.body).decode()
    headers = httpx.Headers(dict(resp.headers))
    page = Page(html)
    assert_strict(headers, page)
    assert headers["cache-control"] == "no-store"
    assert headers["x-frame-options"] == "DENY"
    # What the provider said is text, never markup; the way back starts a new sign-in.
    assert "&lt;b&gt;li&lt;/b&gt;" in html and "<b>" not in html
    assert signin.TEXT[lang]["again"] in html
    [again] = [e for e in page.elements if e.tag == "a" and e.attrs.get("href") == "/auth/login"]
    assert again
    [sheet] = [
        e.attrs["href"]
        for e in page.elements
        if e.tag == "link" and e.attrs.get("rel") == "stylesheet"
    ]
    served = await web.get(sheet)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/css")


async def test_the_inbox_offers_company_sign_in_as_a_plain_link(web: httpx.AsyncClient) -> None:
    resp, page = await fetched(web, "/inbox")
    assert_strict(resp.headers, page)
    box = page.by_id("signin-company")
    assert "hidden" in box.attrs  # until GET /auth/session says it exists
    [link] = [e for e in page.elements if e.attrs.get("data-i18n") == "sign_in_company"]
    assert link.tag == "a" and link.attrs["href"] == "/auth/login?next=/inbox"
