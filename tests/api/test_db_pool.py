"""The API's database pool under load: one connection per HTTP request at most,
none while waiting on Temporal, and 503 (never 500) when the pool or the database
cannot serve.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.deps import Services
from domain.constants import workflow_id
from tests.support.api import Auth, make_settings, running, temporal_target


def contract(customer: str, n: int) -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Load contract {n}",
        "customer": customer,
        "amount": "250000",
        "fields": {"contract_no": f"C-LOAD-{n}", "settlement_floor_price": "1"},
    }


@pytest.mark.usefixtures("worker")
async def test_fifty_concurrent_keyed_submits_by_one_user_get_no_5xx(
    api: httpx.AsyncClient, auth: Auth
) -> None:
    customer = f"Load {uuid.uuid4().hex[:6]}"
    headers = auth("am_li")

    async def submit(n: int) -> httpx.Response:
        return await api.post(
            "/v1/requests",
            json=contract(customer, n),
            headers=headers | {"Idempotency-Key": f"load-{customer}-{n}"},
        )

    responses = await asyncio.gather(*(submit(n) for n in range(50)))
    statuses = [r.status_code for r in responses]
    assert all(s in (200, 201, 202) for s in statuses), [
        r.text for r in responses if r.status_code >= 300
    ]
    assert len({r.json()["id"] for r in responses}) == 50


def _services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


@pytest.fixture
async def tiny_pool(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_DB_POOL_SIZE=1,
        APPROVALS_DB_MAX_OVERFLOW=0,
        APPROVALS_DB_POOL_TIMEOUT_SECONDS=0.5,
        APPROVALS_RPC_TIMEOUT_SECONDS=3,
    )
    app = create_app(settings)
    async with running(app) as client:
        yield app, client


async def test_an_exhausted_pool_answers_503_with_retry_after(
    tiny_pool: tuple[FastAPI, httpx.AsyncClient], auth: Auth, temporal_local: WorkflowEnvironment
) -> None:
    app, client = tiny_pool
    services = _services(app)
    assert services.engine.pool.size() == 1  # type: ignore[attr-defined]
    # Someone holds the only connection: a request waits pool_timeout, then 503.
    async with services.engine.connect():
        resp = await client.get("/v1/requests", headers=auth("am_li"))
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5"
    error = resp.json()["error"]
    assert error["code"] == "unavailable"
    assert "database" in error["message"]
    # Released again: the same app serves.
    resp = await client.get("/v1/requests", headers=auth("am_li"))
    assert resp.status_code == 200, resp.text


async def test_a_submit_waiting_on_temporal_holds_no_connection(
    tiny_pool: tuple[FastAPI, httpx.AsyncClient], auth: Auth, temporal_local: WorkflowEnvironment
) -> None:
    app, client = tiny_pool
    services = _services(app)

    async def submit() -> httpx.Response:
        # No worker polls this app's task queue: the submit waits the whole RPC
        # timeout (3 s) for `ready`, then answers 202.
        return await client.post(
            "/v1/requests",
            json=contract(f"Tiny pool {uuid.uuid4().hex[:6]}", 1),
            headers=auth("am_li") | {"Idempotency-Key": f"tiny-{uuid.uuid4()}"},
        )

    async def read_meanwhile() -> httpx.Response:
        await asyncio.sleep(1.0)
        return await client.get("/v1/requests", headers=auth("dsd_liu"))

    submitted, read = await asyncio.gather(submit(), read_meanwhile())
    assert submitted.status_code == 202, submitted.text
    # The pool's one connection was free while the submit waited on Temporal.
    assert read.status_code == 200, read.text
    assert services.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await temporal_local.client.get_workflow_handle(workflow_id(submitted.json()["id"])).terminate(
        "test cleanup"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_database_that_is_down_answers_503_not_500(
    temporal_local: WorkflowEnvironment, auth: Auth
) -> None:
    url = f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{_closed_port()}/approvals"
    app = create_app(make_settings(url, temporal_target(temporal_local)))
    async with running(app) as client:
        for _ in range(2):  # the first failed connect and the next one alike
            resp = await client.get("/v1/requests", headers=auth("am_li"))
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"] == "5"
            assert resp.json()["error"]["code"] == "unavailable"
            assert "database" in resp.json()["error"]["message"]
