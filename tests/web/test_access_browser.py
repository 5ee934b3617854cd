"""Phones and access: every page at 390 px wide, touch targets, and an axe-core scan.

At a 390x844 viewport (a phone), in zh-CN and in en, for the inbox (its list, and one
request open), the page a signed action link opens and the admin's outbox:

- nothing scrolls sideways (the document is no wider than the viewport);
- every button, link, input, select, textarea and summary shown is at least 44 px
  high and wide (links inside running text are exempt, as in WCAG 2.5.5);
- axe-core (tools/axe, installed by `make install` with `npm ci`) finds no
  violation of WCAG 2.0/2.1 A and AA (labels, names, contrast, landmarks...).

axe is added before the page's own scripts with ``add_init_script`` (as a browser
extension would be): the pages' Content-Security-Policy allows no inline script, and
must stay as strict while they are scanned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.settings import Settings
from db.used_links import make_action_links
from tests.support.api import Auth
from tests.support.browser import Browsing
from tests.support.paths import ROOT
from tests.web.test_inbox_browser import open_inbox, open_request, submit_contract

pytestmark = pytest.mark.usefixtures("worker")

AXE = ROOT / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
LOCALES = ("zh-CN", "en-US")
TARGET_PX = 44

# Every control shown that is not a link inside running text: its size, in CSS px.
TARGETS = """() => {
  const inText = (a) => {
    const block = a.closest("p, li, dd, td");
    return Boolean(block) && block.textContent.trim() !== a.textContent.trim();
  };
  return [...document.querySelectorAll("button, a[href], input, select, textarea, summary")]
    .filter((node) => node.getClientRects().length)
    .filter((node) => getComputedStyle(node).visibility !== "hidden")
    .filter((node) => !(node.matches("a") && inText(node)))
    .filter((node) => !node.closest(".sr-only") && !node.matches('input[type="hidden"]'))
    .map((node) => {
      const box = node.getBoundingClientRect();
      return { what: node.outerHTML.slice(0, 120), width: box.width, height: box.height };
    });
}"""

# What sticks out past the viewport's right edge (the innermost few), for the message.
WIDE = """() => [...document.querySelectorAll("body *")]
  .filter((node) => node.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .slice(-5).map((node) => node.outerHTML.slice(0, 160))"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary),
  }));
}"""


async def phone(browsing: Browsing, locale: str) -> Page:
    page = await browsing.page(locale=locale, viewport=PHONE, has_touch=True, is_mobile=True)
    await page.add_init_script(path=str(AXE))
    return page


async def check(page: Page, where: str) -> None:
    """The three checks on the page as it is now."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if widths[0] > widths[1]:
        wide = await page.evaluate(WIDE)
        raise AssertionError(f"{where}: scrolls sideways ({widths[0]} > {widths[1]} px): {wide}")
    small = [
        t
        for t in await page.evaluate(TARGETS)
        if t["width"] < TARGET_PX - 0.5 or t["height"] < TARGET_PX - 0.5
    ]
    assert not small, f"{where}: targets under {TARGET_PX} px: {small}"
    violations: list[dict[str, Any]] = await page.evaluate(AXE_RUN)
    assert not violations, f"{where}: axe found {violations}"


def test_axe_core_is_installed() -> None:
    assert AXE.exists(), f"{AXE} is missing: run `make install` (npm ci in tools/axe)"


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_inbox_and_a_request_on_a_phone(
    browsing: Browsing, base_url: str, auth: Auth, locale: str
) -> None:
    view = await submit_contract(base_url, auth)
    page = await phone(browsing, locale)
    await open_inbox(page, base_url, auth)
    item = page.locator("#inbox-list .item", has_text=view["title"])
    await expect(item).to_be_visible()
    # Money as ¥ with the locale's grouping (Intl.NumberFormat).
    await expect(item).to_contain_text("¥250,000")
    await check(page, f"inbox ({locale})")
    await page.locator("#tab-mine").click()
    await expect(page.locator("#mine-list .item").first).to_be_visible()
    await check(page, f"my requests ({locale})")

    page = await phone(browsing, locale)
    await open_request(page, base_url, auth, "bcd_zheng", view["id"])
    await expect(page.locator("#detail")).to_contain_text("¥250,000")
    await check(page, f"request detail ({locale})")


@pytest.mark.parametrize("locale", LOCALES)
async def test_an_action_link_page_on_a_phone(
    browsing: Browsing,
    base_url: str,
    auth: Auth,
    settings: Settings,
    db_sessions: async_sessionmaker[AsyncSession],
    locale: str,
) -> None:
    view = await submit_contract(base_url, auth)
    links = await make_action_links(
        settings, db_sessions, "bcd_zheng", view["id"], datetime.now(UTC)
    )
    assert links is not None
    url = urlsplit(links["approve"])
    page = await phone(browsing, locale)
    await page.goto(f"{base_url}{url.path}?{url.query}")
    await expect(page.locator("form button[type=submit]")).to_be_visible()
    await check(page, f"action link ({locale})")


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_outbox_on_a_phone(browsing: Browsing, base_url: str, locale: str) -> None:
    page = await phone(browsing, locale)
    await page.goto(f"{base_url}/admin/outbox")
    await expect(page.locator("#signin")).to_be_visible()
    await check(page, f"outbox ({locale})")


FOCUSED = """() => {
  const node = document.activeElement;
  const style = getComputedStyle(node);
  return {
    what: node.outerHTML.slice(0, 100), id: node.id, text: node.textContent,
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
  };
}"""


async def test_the_inbox_by_keyboard_alone_with_focus_always_visible(
    browsing: Browsing, base_url: str, auth: Auth
) -> None:
    view = await submit_contract(base_url, auth)
    page = await phone(browsing, "en-US")
    await open_inbox(page, base_url, auth)
    await expect(page.locator("#inbox-list .item", has_text=view["title"])).to_be_visible()
    # Tab from the top: the skip link first, then on until the first listed request (the
    # most urgent: the shared test database holds many); each stop visible.
    first = (await page.locator("#inbox-list .item .item-title").first.text_content()) or ""
    seen = []
    for _ in range(60):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        seen.append(focused["what"])
        assert focused["outline"], f"focus not visible on {focused['what']}"
        if 'class="item"' in focused["what"]:
            break
    else:
        raise AssertionError(f"no request was reached by Tab: {seen}")
    assert 'class="skip"' in seen[0]
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_have_text(first)
    # The tabs: arrow keys move between them and show the chosen panel.
    await page.locator("#tab-inbox").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#tab-mine")).to_be_focused()
    await expect(page.locator("#panel-mine")).to_be_visible()
