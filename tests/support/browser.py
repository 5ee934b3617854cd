"""Browser tests: the real app served by uvicorn on a free localhost port, with the
API tests' settings, demo org and real in-process worker (so decisions are taken),
and Debian's chromium driven by Playwright.

Playwright never downloads a browser here (no ``playwright install``): it launches
``/usr/bin/chromium`` (``make test`` installs Debian's package when missing), or the
binary ``APPROVALS_CHROMIUM`` names. Everything runs on the suite's one event loop:
uvicorn as a task, Playwright's async API beside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import Browser, BrowserContext, Page

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

    async def page(self, locale: str = "en-US", **options: Any) -> Page:
        """A page in a new context; ``options`` go to the context (``viewport=...``)."""
        context = await self.browser.new_context(
            locale=locale, timezone_id="Asia/Shanghai", **options
        )
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
