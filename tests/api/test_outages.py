"""When Temporal or the worker is away: the API starts, says 503/202, loses nothing."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from common import search_attributes as sa
from domain.constants import workflow_id
from tests.support.api import Auth, Db, make_settings, running, temporal_target
from tests.support.policy_versions import version_of


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def contract(customer: str, amount: str = "250000") -> dict[str, Any]:
    return {
        "type": "big_customer_contract",
        "title": "Outage contract",
        "customer": customer,
        "amount": amount,
        "fields": {"contract_no": "C-OUT", "settlement_floor_price": "1"},
    }


@pytest.fixture
async def no_temporal(pg_url: str, demo_org: None) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(pg_url, f"127.0.0.1:{_closed_port()}")
    async with running(create_app(settings)) as client:
        yield client


@pytest.fixture
async def no_worker(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None
) -> AsyncIterator[httpx.AsyncClient]:
    """Temporal is up, but nobody polls this app's task queue."""
    settings = make_settings(
        pg_url, temporal_target(temporal_local), APPROVALS_RPC_TIMEOUT_SECONDS=1.5
    )
    async with running(create_app(settings)) as client:
        yield client


async def test_api_starts_and_reads_without_temporal(
    no_temporal: httpx.AsyncClient, auth: Auth
) -> None:
    assert (await no_temporal.get("/healthz")).json() == {"status": "ok"}
    resp = await no_temporal.get("/v1/policies", headers=auth("am_li"))
    assert resp.status_code == 200
    resp = await no_temporal.get("/readyz")
    assert resp.status_code == 503
    checks = resp.json()["error"]["details"]["checks"]
    assert checks["database"] == "ok"
    assert checks["temporal"].startswith("down")
    assert "temporal" in resp.json()["error"]["message"]


async def test_submit_without_temporal_is_503_and_writes_nothing(
    no_temporal: httpx.AsyncClient, auth: Auth, db: Db
) -> None:
    before = await db.count_requests("am_li")
    resp = await no_temporal.post("/v1/requests", json=contract("Outage Co"), headers=auth("am_li"))
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json()["error"]["code"] == "unavailable"
    assert await db.count_requests("am_li") == before


async def test_a_failed_workflow_start_removes_the_row_and_is_503(
    pg_url: str, temporal_local: WorkflowEnvironment, demo_org: None, auth: Auth, db: Db
) -> None:
    # Temporal answers, but refuses the start (the namespace does not exist): the
    # row committed before the start must be removed again.
    settings = make_settings(
        pg_url, temporal_target(temporal_local), TEMPORAL_NAMESPACE="no-such-namespace"
    )
    async with running(create_app(settings)) as client:
        resp = await client.post(
            "/v1/requests", json=contract("Half Written Ltd"), headers=auth("am_li")
        )
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5"
    assert "nothing was recorded" in resp.json()["error"]["message"]
    assert await db.count_for_customer("Half Written Ltd") == 0


@pytest.mark.usefixtures("worker")
async def test_readyz_is_200_when_database_temporal_and_a_worker_answer(
    api: httpx.AsyncClient,
) -> None:
    resp = await api.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "status": "ok",
        "checks": {"database": "ok", "temporal": "ok", "worker": "ok"},
    }


async def test_readyz_is_503_naming_the_worker_when_nobody_polls_the_task_queue(
    no_worker: httpx.AsyncClient,
) -> None:
    resp = await no_worker.get("/readyz")
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5"
    error = resp.json()["error"]
    assert error["message"] == "not ready: worker down"
    checks = error["details"]["checks"]
    assert (checks["database"], checks["temporal"]) == ("ok", "ok")
    assert checks["worker"].startswith("down: no worker polls task queue 'api-")


async def test_without_a_worker_submit_is_accepted_202_and_actions_are_503(
    no_worker: httpx.AsyncClient, auth: Auth, db: Db, temporal_local: WorkflowEnvironment
) -> None:
    headers = {**auth("am_li"), "Idempotency-Key": "outage-1"}
    resp = await no_worker.post("/v1/requests", json=contract("Workerless Ltd"), headers=headers)
    assert resp.status_code == 202, resp.text
    assert resp.headers["Retry-After"] == "5"
    view = resp.json()
    rid = view["id"]
    assert resp.headers["Location"] == f"/v1/requests/{rid}"
    assert view["status"] == "submitted"
    assert [s["key"] for s in view["stages"]] == [
        "big_customer_dept_sign",
        "deputy_sales_director_approve",
    ]
    handle = temporal_local.client.get_workflow_handle(workflow_id(rid))
    try:
        # Durably accepted: the row is committed and the workflow exists, summarised.
        row = await db.request(rid)
        assert row is not None
        assert (row.status, row.policy_type, row.policy_version) == (
            "submitted",
            "big_customer_contract",
            version_of("big_customer_contract"),
        )
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
        assert await desc.static_summary() == (
            "Big-customer contract · 250,000.00 CNY · Workerless Ltd · by am_li"
        )
        assert "Deputy sales director approves" in (await desc.static_details() or "")
        attrs = desc.typed_search_attributes
        assert attrs.get(sa.REQUEST_TYPE) == "big_customer_contract"
        assert attrs.get(sa.REQUEST_STATUS) == "in_review"
        assert attrs.get(sa.REQUESTER) == "am_li"
        assert attrs.get(sa.CUSTOMER_ID) == "Workerless Ltd"
        assert attrs.get(sa.AMOUNT) == 250000.0
        assert attrs.get(sa.OVERDUE) is False

        # The same key and body: the same request, not a second one.
        again = await no_worker.post(
            "/v1/requests", json=contract("Workerless Ltd"), headers=headers
        )
        assert again.status_code == 202
        assert again.json()["id"] == rid
        # The same key, another body: conflict.
        other = await no_worker.post(
            "/v1/requests", json=contract("Workerless Ltd", "1000"), headers=headers
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "conflict"

        # An action needs the worker: a clear, retryable 503.
        resp = await no_worker.post(
            f"/v1/requests/{rid}/withdraw", json={"comment": "never mind"}, headers=auth("am_li")
        )
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "5"
        assert "nothing was lost" in resp.json()["error"]["message"]

        # Reads still work from the read-model.
        resp = await no_worker.get(f"/v1/requests/{rid}", headers=auth("am_li"))
        assert resp.status_code == 200
        assert resp.json()["status"] == "submitted"
    finally:
        await handle.terminate("test cleanup")
