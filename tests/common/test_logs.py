"""The log lines: one JSON object per event (or text), with their context, never a secret."""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from common.logs import (
    JsonFormatter,
    RequestContext,
    TextFormatter,
    accepted_request_id,
    request_context,
)
from common.redaction import SECRET_SETTINGS, LogScrubber, configured_secrets
from common.settings import Settings
from notify.setup import build_notifier
from tests.support.paths import ROOT
from tests.support.strategies import chars

texts = st.text(chars, max_size=40)


def strings_in(value: Any) -> Iterator[str]:
    """Every string a parsed JSON line holds, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def record_with(secret: str, before: str, after: str) -> logging.LogRecord:
    """A record holding ``secret`` everywhere a caller can put it."""
    try:
        raise ValueError(f"could not use {secret}")
    except ValueError:
        info = sys.exc_info()
    rec = logging.LogRecord(
        "approvals.test", logging.ERROR, __file__, 1, before + secret + after + " %s %r", None, info
    )
    rec.args = (f"<{secret}>", {"password": secret})
    rec.__dict__.update(
        detail=secret, nested={"list": [1, secret], secret: "as a key"}, obj=SecretHolder(secret)
    )
    rec.stack_info = f"Stack (most recent call last):\n  {secret}"
    return rec


class SecretHolder:
    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"SecretHolder({self.value})"

    __str__ = __repr__


@given(secret=st.text(chars, min_size=8, max_size=40), before=texts, after=texts)
def test_no_configured_secret_survives_formatting_in_any_field(
    secret: str, before: str, after: str
) -> None:
    scrubber = LogScrubber()
    scrubber.add([secret])
    token = request_context.set(RequestContext("rid-1", user="am_li"))
    try:
        line = JsonFormatter(scrubber).format(record_with(secret, before, after))
        text = TextFormatter(scrubber).format(record_with(secret, before, after))
    finally:
        request_context.reset(token)
    parsed = json.loads(line)
    assert "\n" not in line  # one line per event, whatever the message holds
    assert [s for s in strings_in(parsed) if secret in s] == []
    assert secret not in text


def test_a_json_line_carries_time_level_logger_message_context_and_the_exception() -> None:
    provider = TracerProvider()
    token = request_context.set(RequestContext("req-42", user="bcd_zheng"))
    try:
        with provider.get_tracer("t").start_as_current_span("s") as span:
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                rec = logging.LogRecord(
                    "approvals.api", logging.WARNING, __file__, 1, "moved %s", ("on",), None
                )
                rec.exc_info = sys.exc_info()
            rec.__dict__["stage"] = 2
            line = JsonFormatter().format(rec)
            ids = span.get_span_context()
    finally:
        request_context.reset(token)
    parsed = json.loads(line)
    assert parsed["time"].endswith("Z") and parsed["time"][:4].isdigit()
    assert {k: parsed[k] for k in ("level", "logger", "message", "request_id", "user")} == {
        "level": "WARNING",
        "logger": "approvals.api",
        "message": "moved on",
        "request_id": "req-42",
        "user": "bcd_zheng",
    }
    assert parsed["trace_id"] == format(ids.trace_id, "032x")
    assert parsed["span_id"] == format(ids.span_id, "016x")
    assert parsed["stage"] == 2
    assert parsed["exception"].startswith("Traceback")
    assert "RuntimeError: boom" in parsed["exception"]


def test_a_line_outside_any_request_workflow_or_span_has_no_such_field() -> None:
    rec = logging.LogRecord("approvals.worker", logging.INFO, __file__, 1, "up", None, None)
    parsed = json.loads(JsonFormatter().format(rec))
    assert set(parsed) == {"time", "level", "logger", "message"}
    assert TextFormatter().format(rec).endswith("INFO approvals.worker: up")


def test_a_request_id_is_kept_if_usable_and_replaced_otherwise() -> None:
    assert accepted_request_id("a1B2-c3_d4.e5:f6") == "a1B2-c3_d4.e5:f6"
    for bad in (None, "", "x" * 129, "with space", 'quote"d', "line\nbreak", "ünïcode"):
        new = accepted_request_id(bad)
        assert new != bad and len(new) == 32 and new.isalnum()


def test_every_secret_setting_is_covered_without_being_listed(monkeypatch: Any) -> None:
    """A SecretStr setting, or one named like a secret, is masked as soon as it exists."""

    class MoreSettings(Settings):
        codec_keys: str | None = None
        vault: SecretStr | None = None
        pepper: str | None = None

    settings = MoreSettings(
        APPROVALS_OIDC_CLIENT_SECRET="oidc-client-secret-0123",
        codec_keys="k1:AAAAAAAAAAAAAAAAAAAAAAAA,k2:BBBBBBBBBBBBBBBBBBBBBBBB",
        vault=SecretStr("vault-value-0123456"),
        pepper="pepper-value-0123456",
    )
    found = configured_secrets(settings)
    assert "oidc-client-secret-0123" in found
    assert "AAAAAAAAAAAAAAAAAAAAAAAA" in found and "BBBBBBBBBBBBBBBBBBBBBBBB" in found
    assert "vault-value-0123456" in found
    assert "pepper-value-0123456" not in found  # neither typed nor named as a secret...
    monkeypatch.setattr("common.redaction.SECRET_SETTINGS", [*SECRET_SETTINGS, "pepper"])
    assert "pepper-value-0123456" in configured_secrets(settings)  # ...until listed


@contextmanager
def json_lines_of(*names: str) -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@activity.defn(name="logs_test_note")
async def note(what: str) -> str:
    activity.logger.info("noted %s", what)
    return what


@workflow.defn(name="LogsTestWorkflow")
class LogsTestWorkflow:
    @workflow.run
    async def run(self, what: str) -> str:
        workflow.logger.info("noting %s", what)
        return await workflow.execute_activity(
            note, what, start_to_close_timeout=timedelta(seconds=30)
        )


async def test_workflow_and_activity_lines_carry_their_workflow_id_and_run_id(
    temporal_ts: WorkflowEnvironment,
) -> None:
    queue = f"logs-{uuid.uuid4().hex[:8]}"
    wf_id = f"logs-test-{uuid.uuid4().hex[:8]}"
    with json_lines_of("temporalio.workflow", "temporalio.activity") as out:
        async with Worker(
            temporal_ts.client,
            task_queue=queue,
            workflows=[LogsTestWorkflow],
            activities=[note],
            workflow_runner=UnsandboxedWorkflowRunner(),
            interceptors=[TracingInterceptor(TracerProvider().get_tracer("logs-test"))],
        ):
            handle = await temporal_ts.client.start_workflow(
                LogsTestWorkflow.run, "it", id=wf_id, task_queue=queue
            )
            assert await handle.result() == "it"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_logger = {line["logger"]: line for line in lines if wf_id == line.get("workflow_id")}
    wf_line, act_line = by_logger["temporalio.workflow"], by_logger["temporalio.activity"]
    assert wf_line["message"].startswith("noting it")
    assert wf_line["run_id"] == handle.result_run_id
    assert wf_line["workflow_type"] == "LogsTestWorkflow"
    assert act_line["message"].startswith("noted it")
    assert act_line["activity"] == "logs_test_note"
    assert act_line["run_id"] == handle.result_run_id
    # With tracing on, an activity runs in its span: its lines lead to the trace.
    assert len(act_line["trace_id"]) == 32 and len(act_line["span_id"]) == 16


def test_the_webhook_secrets_of_the_file_are_masked_by_value_even_without_their_prefix(
    tmp_path: Path,
) -> None:
    key = base64.b64encode(secrets.token_bytes(24)).decode()
    hooks = tmp_path / "webhooks.yaml"
    hooks.write_text(
        json.dumps({"subscribers": [{"name": "n", "url": "http://h/x", "secret": f"whsec_{key}"}]})
    )
    build_notifier(Settings(APPROVALS_WEBHOOKS_FILE=str(hooks)))
    rec = logging.LogRecord("approvals.notify", logging.INFO, __file__, 1, f"key {key}", None, None)
    assert key not in JsonFormatter().format(rec)
    assert key not in TextFormatter().format(rec)


def test_compose_logs_json_and_development_logs_text(monkeypatch: Any) -> None:
    monkeypatch.delenv("APPROVALS_LOG_FORMAT", raising=False)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-app-env"]["APPROVALS_LOG_FORMAT"] == "${APPROVALS_LOG_FORMAT:-json}"
    assert Settings(APPROVALS_ENV="development").log_format == "text"
