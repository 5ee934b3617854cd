"""``GET /metrics`` and the HTTP metrics of every request the API answers.

Every label value comes from a closed set, because a series lives as long as the
process and anyone who can reach the port chooses the method and the path: the route
is the template of one of the app's routes (``/v1/requests/{request_id}``), never the
raw path; the method one of HTTP's own; the status a code HTTP defines. Anything else,
a path no route matches or an invented method, is ``other``. ``/metrics`` asks for no
token (Prometheus scrapes it), so keep it off the public entrance (README "Metrics and
traces") or turn it off with ``APPROVALS_API_METRICS=false``.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "approvals_http_requests",
    "HTTP requests the API answered, by route template, method and status code",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "approvals_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

OTHER = "other"
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
"""HTTP's methods (RFC 9110 and PATCH); methods are case-sensitive, so ``get`` is other."""
STATUSES = frozenset(str(code.value) for code in HTTPStatus)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (the router puts it in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else OTHER


def method_label(scope: Scope) -> str:
    method = scope.get("method")
    return method if method in METHODS else OTHER


def status_label(status: int) -> str:
    label = str(status)
    return label if label in STATUSES else OTHER


class HttpMetrics:
    """ASGI middleware: count each HTTP request and time it, once it has been answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route, method = route_template(scope), method_label(scope)
            REQUESTS.labels(route=route, method=method, status=status_label(status)).inc()
            LATENCY.labels(route=route, method=method).observe(time.perf_counter() - started)


async def metrics_endpoint(request: Request) -> Response:
    """Every metric of this process, in Prometheus' text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
