"""An update larger than Temporal's blob size limit is refused 413 before it is
sent, so it can never wedge the request's workflow; nothing tells the caller to retry.

Runs on its own Temporal dev server whose blob limit is small enough to reach
under the API's 1 MiB body limit, with the real worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from tests.support.api import Auth, make_settings, running, temporal_target
from tests.support.servers import start_dev_server

BLOB_LIMIT = (
    128 * 1024
)  # below the API's own payload budget (256 KiB), so the blob check is reached


@pytest.fixture
async def small_blob_stack(
    pg_url: str, db_sessions: async_sessionmaker[AsyncSession], demo_org: None
) -> AsyncIterator[httpx.AsyncClient]:
    from worker.main import build_worker

    env = await start_dev_server(
        **{"limit.blobSize.error": BLOB_LIMIT, "limit.blobSize.warn": BLOB_LIMIT // 2}
    )
    try:
        settings = make_settings(pg_url, temporal_target(env), APPROVALS_RPC_TIMEOUT_SECONDS=5)
        async with (
            build_worker(env.client, db_sessions, settings.task_queue),
            running(create_app(settings)) as client,
        ):
            yield client
    finally:
        await env.shutdown()


def contract(customer: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": f"Contract with {customer}",
        "customer": customer,
        "amount": "250000",
        "fields": {"contract_no": "C-BIG-1", "settlement_floor_price": "90000", **fields},
    }


async def test_an_update_over_the_blob_limit_is_413_and_the_request_still_moves(
    small_blob_stack: httpx.AsyncClient, auth: Auth
) -> None:
    api = small_blob_stack
    customer = f"Big payload {uuid.uuid4().hex[:6]}"
    resp = await api.post("/v1/requests", json=contract(customer), headers=auth("am_li"))
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    resp = await api.post(
        f"/v1/requests/{rid}/decisions",
        json={"action": "return", "comment": "attach the annex"},
        headers=auth("bcd_zheng"),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "returned"

    # 200 KB of annex: under the API's budget and body limit, over this blob limit.
    big = contract(customer, annex="x" * 200_000)["fields"]
    key = {"Idempotency-Key": "resubmit-1"}
    resp = await api.post(
        f"/v1/requests/{rid}/resubmit", json={"fields": big}, headers=auth("am_li") | key
    )
    assert resp.status_code == 413, resp.text
    assert "Retry-After" not in resp.headers
    error = resp.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "will not help" in error["message"]
    assert error["details"]["limit_bytes"] == BLOB_LIMIT
    assert error["details"]["size_bytes"] > BLOB_LIMIT

    # Nothing was sent: the workflow is not wedged, and the same key with less
    # data is a fresh call, not a conflict.
    resp = await api.post(
        f"/v1/requests/{rid}/resubmit",
        json={"fields": contract(customer)["fields"], "comment": "annex by mail"},
        headers=auth("am_li") | key,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "in_review"
