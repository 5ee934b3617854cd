"""Metrics and traces of a real worker on the local dev server: the SDK's Prometheus
endpoint, our transition counter, and one trace from the client's start to an activity."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from common.metrics import sdk_runtime
from common.tracing import build_tracer_provider, tracing_interceptor
from domain.constants import WORKFLOW_NAME
from domain.policy import Policy
from tests.support.servers import converter_for_tests
from tests.support.workflows import _terminate_leftovers, contract_at_first_stage
from worker.main import build_worker

Sessions = async_sessionmaker[AsyncSession]


def submitted_count() -> float:
    return REGISTRY.get_sample_value("approvals_transitions_total", {"kind": "submitted"}) or 0.0


async def test_a_worker_on_a_metrics_runtime_serves_the_sdks_metrics_and_counts_transitions(
    temporal_local: WorkflowEnvironment,
    db_sessions: Sessions,
    org: None,
    policies: dict[str, Policy],
    free_port: int,
) -> None:
    # A runtime of the test's own: the suite's other clients keep the SDK's default one.
    runtime = sdk_runtime(f"127.0.0.1:{free_port}")
    assert runtime is not None
    client = await Client.connect(
        temporal_local.client.service_client.config.target_host,
        namespace=temporal_local.client.namespace,
        data_converter=converter_for_tests(),
        runtime=runtime,
    )
    queue = f"metrics-{uuid.uuid4()}"
    before = submitted_count()
    async with build_worker(client, db_sessions, queue):
        await contract_at_first_stage(client, queue, policies)
        url = f"http://127.0.0.1:{free_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        await _terminate_leftovers()
    text = body.decode()
    ours = [line for line in text.splitlines() if f'task_queue="{queue}"' in line]
    assert any(line.startswith("temporal_workflow_task") for line in ours), text[:2000]
    assert any(line.startswith("temporal_request") for line in text.splitlines())
    assert submitted_count() == before + 1


def _chain(spans: list[ReadableSpan], name: str, parent: ReadableSpan) -> ReadableSpan:
    """The span named ``name`` (prefix) whose parent is ``parent``."""
    found = [
        s
        for s in spans
        if s.name.startswith(name)
        and s.parent is not None
        and parent.context is not None
        and s.parent.span_id == parent.context.span_id
    ]
    assert found, (name, [s.name for s in spans])
    return found[0]


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
async def test_a_traced_start_is_one_trace_from_the_client_to_the_activities(
    temporal_local: WorkflowEnvironment,
    db_sessions: Sessions,
    org: None,
    policies: dict[str, Policy],
    sandboxed: bool,
) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(exporter, "approvals-test", batch=False)
    config = temporal_local.client.config()
    config["interceptors"] = [tracing_interceptor(provider.get_tracer("test"))]
    client = Client(**config)  # the suite's connection, with the interceptor
    queue = f"traced-{uuid.uuid4()}"
    async with build_worker(client, db_sessions, queue, sandboxed=sandboxed):
        await contract_at_first_stage(client, queue, policies)
        await _terminate_leftovers()
    provider.shutdown()
    spans = list(exporter.get_finished_spans())
    start = next(s for s in spans if s.name == f"StartWorkflow:{WORKFLOW_NAME}")
    assert start.context is not None
    trace = [
        s for s in spans if s.context is not None and s.context.trace_id == start.context.trace_id
    ]
    # The workflow's spans are instants (a replay must not hold a span open), children of
    # the span that started the workflow: RunWorkflow and each StartActivity beside it.
    _chain(trace, f"RunWorkflow:{WORKFLOW_NAME}", start)
    started = _chain(trace, "StartActivity:", start)
    ran = _chain(trace, "RunActivity:", started)
    assert ran.name == started.name.replace("StartActivity:", "RunActivity:")
    assert {s.resource.attributes["service.name"] for s in trace} == {"approvals-test"}
