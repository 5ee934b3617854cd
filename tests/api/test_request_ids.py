"""Every HTTP request has an id: echoed in the response, in each of its JSON log lines.

The app runs under uvicorn (as ``approvals api`` runs it: uvicorn's handlers off, its
lines through the root logger's one formatter), so the access log line is seen too.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from common.logs import JsonFormatter
from common.settings import Settings
from tests.support.browser import _Server


@pytest.fixture(scope="module")
async def served(settings: Settings, demo_org: None) -> AsyncIterator[tuple[str, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="info", log_config=None, lifespan="on")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", out
    finally:
        server.should_exit = True
        await task
        sock.close()
        root.removeHandler(handler)


def lines_of(out: io.StringIO, request_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line for line in lines if line.get("request_id") == request_id]


async def test_a_callers_request_id_is_echoed_and_carried_by_its_log_lines_with_the_user(
    served: tuple[str, io.StringIO], auth: Callable[[str], dict[str, str]]
) -> None:
    url, out = served
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/v1/me", headers={**auth("am_li"), "X-Request-ID": "probe-1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == "probe-1"
    access = [line for line in lines_of(out, "probe-1") if line["logger"] == "uvicorn.access"]
    assert len(access) == 1, out.getvalue()
    assert access[0]["user"] == "am_li"
    assert '"GET /v1/me HTTP/1.1" 200' in access[0]["message"]


async def test_without_a_usable_request_id_one_is_made_and_a_refused_token_is_not_logged(
    served: tuple[str, io.StringIO], settings: Settings
) -> None:
    url, out = served
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbV9saSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.get(
            f"/v1/me?access_token={token}", headers={"X-Request-ID": "bad id with spaces"}
        )
    assert answer.status_code == 401
    made = answer.headers["X-Request-ID"]
    assert made != "bad id with spaces" and len(made) == 32
    access = [line for line in lines_of(out, made) if line["logger"] == "uvicorn.access"]
    assert len(access) == 1, out.getvalue()
    assert "user" not in access[0]  # nobody was authenticated
    assert "/v1/me?access_token=***" in access[0]["message"]
    assert token not in out.getvalue() and "bad id with spaces" not in out.getvalue()
