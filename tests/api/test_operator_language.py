"""What the Temporal UI shows of a request is in the operators' language
(APPROVALS_OPERATOR_LANGUAGE): the start's summary and route, and the workflow's current
details, which come from its input. English by default, as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.commands import _START_WORDS
from common.settings import Settings
from domain.constants import workflow_id
from domain.core.details import WORDS
from tests.support.api import Auth, contract_body, make_settings, running, temporal_target

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
async def chinese_ops(
    pg_url: str, temporal_local: WorkflowEnvironment, settings: Settings, demo_org: None
) -> AsyncIterator[httpx.AsyncClient]:
    app_settings = make_settings(
        pg_url,
        temporal_target(temporal_local),
        APPROVALS_OPERATOR_LANGUAGE="zh-CN",
        APPROVALS_TASK_QUEUE=settings.task_queue,  # the worker fixture's queue
    )
    async with running(create_app(app_settings)) as client:
        yield client


async def _current_details(handle: WorkflowHandle[object, object], part: str) -> str:
    """The workflow's current details once they contain ``part`` (set as it settles)."""
    text = ""
    for _ in range(50):
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        text = meta.current_details
        if part in text:
            break
        await asyncio.sleep(0.1)
    return text


async def _submit(api: httpx.AsyncClient, auth: Auth, customer: str) -> str:
    r = await api.post("/v1/requests", json=contract_body(customer), headers=auth("am_li"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_request_submitted_for_chinese_operators_reads_chinese_in_temporal(
    chinese_ops: httpx.AsyncClient, auth: Auth, temporal_local: WorkflowEnvironment
) -> None:
    customer = f"华东 {uuid.uuid4().hex[:6]}"
    rid = await _submit(chinese_ops, auth, customer)
    handle = temporal_local.client.get_workflow_handle(workflow_id(rid))
    desc = await handle.describe()
    assert await desc.static_summary() == f"大客户合同 · 250,000.00 元 · {customer} · 申请人 am_li"
    route = await desc.static_details() or ""
    assert "审批路线：" in route
    assert "**大客户管理部签署**（或签）" in route and "销售副总监批准" in route
    details = await _current_details(handle, "审批中")
    assert "审批中，第 1/2 个环节：*大客户管理部签署*；等待 bcd_zheng" in details
    assert "申请人 am_li" in details


async def test_by_default_the_temporal_ui_reads_english_as_before(
    api: httpx.AsyncClient, auth: Auth, temporal_local: WorkflowEnvironment
) -> None:
    customer = f"East {uuid.uuid4().hex[:6]}"
    rid = await _submit(api, auth, customer)
    handle = temporal_local.client.get_workflow_handle(workflow_id(rid))
    desc = await handle.describe()
    assert (
        await desc.static_summary()
        == f"Big-customer contract · 250,000.00 CNY · {customer} · by am_li"
    )
    assert "1. **Big-customer management department signs** (any): " in (
        await desc.static_details() or ""
    )
    details = await _current_details(handle, "In review")
    assert "In review at stage 1/2: *Big-customer management department signs*" in details


def test_every_line_of_the_temporal_ui_is_in_both_languages() -> None:
    for words in (WORDS, _START_WORDS):
        assert set(words["en"]) == set(words["zh-CN"])
        for key, text in words["en"].items():
            assert text.count("{") == words["zh-CN"][key].count("{"), key
