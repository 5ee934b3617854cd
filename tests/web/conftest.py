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
import socket
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright

from api.app import create_app
from common.settings import Settings
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Browsing, _Server  # noqa: F401


@pytest.fixture(scope="module")
async def base_url(settings: Settings, worker: None) -> AsyncIterator[str]:
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can tell that it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
