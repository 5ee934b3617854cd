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
import shutil
import socket
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from playwright.async_api import Browser, async_playwright
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from common.settings import Settings
from db.models import UserPreferenceRow
from tests.support.api import make_settings, temporal_target
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, Browsing, _Server  # noqa: F401
from tests.support.oidc import AUDIENCE, CLIENT_ID, CLIENT_SECRET, OpenIdProvider
from tests.support.paths import ROOT
from tests.support.servers import closed_port


@contextlib.asynccontextmanager
async def serving(settings: Settings, port: int = 0) -> AsyncIterator[str]:
    """The app (lifespan and all) on 127.0.0.1 at ``port`` (0: a free one): its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def serving_with_provider(
    op_dir: Path, pg_url: str, temporal: WorkflowEnvironment, users: dict[str, dict[str, str]]
) -> AsyncIterator[tuple[str, Settings]]:
    """The app behind a real OpenID Connect provider that knows ``users`` (login name:
    claims): on a port known beforehand, so that the provider may send browsers back.
    Its base URL and settings (a worker, if the test needs one, polls their queue)."""
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    op = OpenIdProvider(op_dir, users=users, redirect_uris=[f"{base}/auth/callback"])
    op.start()
    settings = make_settings(
        pg_url,
        temporal_target(temporal),
        APPROVALS_PUBLIC_BASE_URL=base,
        APPROVALS_OIDC_ISSUER=op.issuer,
        APPROVALS_OIDC_AUDIENCE=AUDIENCE,
        APPROVALS_OIDC_CLIENT_ID=CLIENT_ID,
        APPROVALS_OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    try:
        async with serving(settings, port) as url:
            yield url, settings
    finally:
        op.stop()


@pytest.fixture(scope="module")
async def base_url(settings: Settings, worker: None) -> AsyncIterator[str]:
    """The app with the shipped policies, for as long as the module runs."""
    async with serving(settings) as url:
        yield url


REVOCABLE = ("customer_gift",)
"""Request types the ``revoke_base_url`` app may revoke (the shipped policies set no window)."""


@pytest.fixture(scope="module")
async def revoke_base_url(
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    temporal_local: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    demo_org: None,
) -> AsyncIterator[str]:
    """An app, with its own worker, on a copy of the policies where a gift may be revoked
    within 31 days of its approval (as in tests/api/test_revoke.py)."""
    from worker.main import build_worker

    policy_dir = tmp_path_factory.mktemp("revocable") / "policies"
    shutil.copytree(ROOT / "policies", policy_dir)
    for name in REVOCABLE:
        path = policy_dir / f"{name}.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["revoke"] = {"within": "P31D"}
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    settings = make_settings(
        pg_url, temporal_target(temporal_local), APPROVALS_POLICY_DIR=policy_dir
    )
    async with (
        build_worker(temporal_local.client, db_sessions, settings.task_queue),
        serving(settings) as url,
    ):
        yield url


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
    browser: Browser,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    db_sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Browsing]:
    """``await browsing.page(locale=...)``; a failing test leaves screenshots in its tmp_path.

    The users' saved preferences are as the test found them afterwards: the page's
    language switch saves the signed-in user's locale, and the database is the session's.
    """
    session = Browsing(browser)
    preferences = await saved_preferences(db_sessions)
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
        await restore_preferences(db_sessions, preferences)
    assert not session.errors, session.errors


async def saved_preferences(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as db:
        rows = (await db.execute(select(UserPreferenceRow.__table__))).mappings().all()
    return [dict(row) for row in rows]


async def restore_preferences(
    sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]
) -> None:
    async with sessions.begin() as db:
        await db.execute(delete(UserPreferenceRow))
        if rows:
            await db.execute(insert(UserPreferenceRow), rows)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so fixtures can tell that it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
