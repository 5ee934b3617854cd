"""Browser tests: the real app served by uvicorn on a free localhost port, with the
API tests' settings, demo org and real in-process worker (so decisions are taken),
and Debian's chromium driven by Playwright.

Playwright never downloads a browser here (no ``playwright install``): it launches
``/usr/bin/chromium`` (``make test`` installs Debian's package when missing), or the
binary ``APPROVALS_CHROMIUM`` names. Everything runs on the suite's one event loop:
uvicorn as a task, Playwright's async API beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from api.app import create_app
from common.settings import Settings

# The API tests' fixtures, reused as they are (here they are this package's own instances).
from tests.api.conftest import auth, demo_org, settings, worker  # noqa: F401

CHROMIUM = Path(os.environ.get("APPROVALS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
"""Longest wait for anything on the page; a worker on a busy 2-core machine takes seconds."""


class _Server(uvicorn.Server):
    """uvicorn that leaves the signal handlers alone: Ctrl-C stays pytest's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture(scope="module")
async def base_url(settings: Settings, worker: None) -> AsyncIterator[str]:  # noqa: F811
    """The app (lifespan and all) on 127.0.0.1 at a free port, for as long as the module runs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium when root; "
            "otherwise run `sudo apt-get install chromium` (or set APPROVALS_CHROMIUM)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can tell that it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class Browsing:
    """New pages in fresh browser contexts (own storage), each photographed on failure.

    ``errors`` collects what the browser reports as broken: uncaught exceptions,
    console errors (among them anything the Content-Security-Policy blocks).
    """

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        self.errors: list[str] = []

    async def page(self, locale: str = "en-US") -> Page:
        context = await self.browser.new_context(locale=locale, timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        self.pages.append(page)
        return page


@pytest.fixture
async def browsing(
    browser: Browser, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Browsing]:
    """``await browsing.page(locale=...)``; a failing test leaves screenshots in its tmp_path."""
    session = Browsing(browser)
    try:
        yield session
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            for n, page in enumerate(session.pages):
                with contextlib.suppress(Exception):
                    shot = tmp_path / f"failure-{n}.png"
                    await page.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot of the failing page: {shot}")
        for context in session.contexts:
            await context.close()
    assert not session.errors, session.errors
