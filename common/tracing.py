"""Traces, opt-in: OpenTelemetry spans of every Temporal call, workflow and activity.

With ``APPROVALS_TRACING=otlp`` (or ``OTEL_EXPORTER_OTLP_ENDPOINT`` set) or ``console``,
every Temporal client this process builds (:func:`common.temporal.connect`) carries
``temporalio.contrib.opentelemetry.TracingInterceptor``, and so does every worker built
on it: a submission through the API is one trace, ``StartWorkflow`` → ``RunWorkflow`` →
``StartActivity`` → ``RunActivity``. Off (the default), no interceptor is installed and
nothing is measured or sent.

OTLP goes over HTTP/protobuf (``opentelemetry-exporter-otlp-proto-http``; the gRPC one
is a much heavier install). The exporter reads the standard variables itself
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``…_HEADERS``, ``OTEL_SERVICE_NAME``, …).
"""

from __future__ import annotations

import os
import threading

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Tracer
from temporalio.contrib.opentelemetry import TracingInterceptor

from common.settings import Settings

TRACER_NAME = "approvals"

_lock = threading.Lock()
_providers: dict[str, TracerProvider] = {}
"""One provider per exporter kind and process: built on first use, flushed at exit."""


def build_tracer_provider(exporter: SpanExporter, service: str, *, batch: bool) -> TracerProvider:
    """A provider that sends every span to ``exporter`` (batched, or one by one).

    ``service`` names the process (``service.name``) unless ``OTEL_SERVICE_NAME`` does.
    """
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def _exporter(mode: str) -> SpanExporter:
    if mode == "console":
        return ConsoleSpanExporter()
    # Imported only when asked for: it brings requests and the OTLP protobufs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_for(settings: Settings, service: str) -> Tracer | None:
    """This process's tracer as ``settings`` ask (None: tracing is off).

    The provider is built once per process (the first caller's ``service`` names it);
    it flushes its spans when the process exits.
    """
    mode = settings.tracing_mode
    if mode == "off":
        return None
    with _lock:
        provider = _providers.get(mode)
        if provider is None:
            # The console is for looking at spans as they end; OTLP sends in batches.
            provider = build_tracer_provider(_exporter(mode), service, batch=mode == "otlp")
            _providers[mode] = provider
    return provider.get_tracer(TRACER_NAME)


def tracing_interceptor(tracer: Tracer) -> TracingInterceptor:
    """The Temporal interceptor (client and worker) that makes spans with ``tracer``.

    Workflow spans are made only under a caller's span (a start through a traced
    client): the schedules' passes, started by the server, are not traced.
    """
    return TracingInterceptor(tracer)


def temporal_interceptors(settings: Settings, service: str) -> list[TracingInterceptor]:
    """What a Temporal client of this process carries: the tracing interceptor, or nothing."""
    tracer = tracer_for(settings, service)
    return [] if tracer is None else [tracing_interceptor(tracer)]
