"""Tracing is off unless asked for, by APPROVALS_TRACING or the standard OTLP endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.contrib.opentelemetry import TracingInterceptor

from common.settings import Settings
from common.tracing import temporal_interceptors


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ({}, "off"),
        ({"APPROVALS_TRACING": "", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, "off"),  # compose's ${X:-}
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"APPROVALS_TRACING": "console"}, "console"),
        ({"APPROVALS_TRACING": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "off"),
    ],
)
def test_tracing_mode_follows_the_setting_then_the_otlp_endpoint(
    values: dict[str, str], mode: str
) -> None:
    given: dict[str, Any] = {"APPROVALS_TRACING": None, "OTEL_EXPORTER_OTLP_ENDPOINT": None}
    settings = Settings(**{**given, **values})
    assert settings.tracing_mode == mode


def test_no_interceptor_when_off_and_the_tracing_one_when_on() -> None:
    off = Settings(APPROVALS_TRACING="off")
    assert temporal_interceptors(off, "approvals-test") == []
    on = temporal_interceptors(Settings(APPROVALS_TRACING="console"), "approvals-test")
    assert [type(i) for i in on] == [TracingInterceptor]
