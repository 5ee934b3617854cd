"""Our own metrics (prometheus-client) and the Temporal SDK's (its runtime's exporter).

Two kinds, two endpoints per worker process (docs/observability.md):

* the SDK's (``temporal_*``: polls, workflow and activity tasks, schedule-to-start
  latency…) come from the SDK runtime's own Prometheus exporter
  (:func:`sdk_runtime`, ``APPROVALS_WORKER_METRICS_ADDRESS``), which serves only those;
* ours (``approvals_*``) live in prometheus-client's default registry, served by
  :func:`serve` on ``APPROVALS_METRICS_ADDRESS`` (and by the API on ``/metrics``).

Ours are counters incremented where the thing happens (transitions written, sends
tried) and gauges of what waits in PostgreSQL, read by :func:`read_snapshot` every
:data:`REFRESH_SECONDS` in the approvals worker (:func:`refresh_forever`) and turned
into samples at scrape time by :class:`BusinessCollector`, so that ages count up to
the second between two reads. The metric objects are declared at import, as
prometheus-client wants; they hold numbers, nothing that talks to the outside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = logging.getLogger("approvals.metrics")

REFRESH_SECONDS = 15.0
"""How often the approvals worker reads the gauges' rows (a few indexed counts)."""

TRANSITIONS = Counter(
    "approvals_transitions",
    "Transitions written to the read-model and the audit trail, by event kind",
    ["kind"],
)
DELIVERY_ATTEMPTS = Counter(
    "approvals_delivery_attempts",
    "Sends of a notice on an outside channel, by channel and outcome: sent, retry "
    "(failed, tried again later) or failed (given up)",
    ["channel", "outcome"],
)


def count_transitions(kinds: list[str]) -> None:
    """Count transitions that were written (after their transaction committed)."""
    for kind in kinds:
        TRANSITIONS.labels(kind=kind).inc()


def count_delivery_attempt(channel: str, status: str) -> None:
    """Count a send by the status its row was left in (``sent``, ``pending``, ``failed``)."""
    outcome = {"sent": "sent", "pending": "retry", "failed": "failed"}.get(status)
    if outcome is not None:  # "gone" and the like: the row changed under the send
        DELIVERY_ATTEMPTS.labels(channel=channel, outcome=outcome).inc()


# --- gauges of what waits in PostgreSQL ------------------------------------------------

# Each reads through an index: the partial index of pending deliveries (few rows),
# ix_deliveries_status_id (failed rows are only counted), and the partial indexes of
# open and of stuck requests (migration 0007).
_PENDING = text(
    "SELECT count(*), min(created_at), min(next_attempt_at) FROM deliveries "
    "WHERE status = 'pending'"
)
_FAILED = text("SELECT count(*) FROM deliveries WHERE status = 'failed'")
_STUCK = text("SELECT count(*), min(stuck_since) FROM requests WHERE stuck_since IS NOT NULL")
_OPEN = text("SELECT status, count(*) FROM requests WHERE closed_at IS NULL GROUP BY status")


@dataclass(frozen=True)
class Snapshot:
    """What waits in PostgreSQL, as one read saw it."""

    taken_at: datetime
    """The database's clock at the read: ages are counted on its clock, not ours."""
    deliveries: dict[str, int] = field(default_factory=dict)
    """Pending and failed deliveries (both always present)."""
    oldest_pending_delivery: datetime | None = None
    earliest_pending_due: datetime | None = None
    stuck: int = 0
    stuck_since: datetime | None = None
    open_requests: dict[str, int] = field(default_factory=dict)
    read_monotonic: float = field(default_factory=time.monotonic)


async def read_snapshot(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
    """Read the gauges' rows: four small indexed queries in one read-only transaction."""
    async with sessions() as session:
        now = (await session.execute(text("SELECT now()"))).scalar_one()
        pending, oldest, due = (await session.execute(_PENDING)).one()
        failed = (await session.execute(_FAILED)).scalar_one()
        stuck, stuck_since = (await session.execute(_STUCK)).one()
        open_requests = {s: int(n) for s, n in await session.execute(_OPEN)}
    return Snapshot(
        taken_at=now,
        deliveries={"pending": int(pending), "failed": int(failed)},
        oldest_pending_delivery=oldest,
        earliest_pending_due=due,
        stuck=int(stuck),
        stuck_since=stuck_since,
        open_requests=open_requests,
    )


def _age(snap: Snapshot, since: datetime | None) -> float:
    """Seconds from ``since`` to now, by the database's clock at the read plus time since."""
    if since is None:
        return 0.0
    elapsed = time.monotonic() - snap.read_monotonic
    return max(0.0, (snap.taken_at - since).total_seconds() + elapsed)


class BusinessCollector(Collector):
    """Samples of the last :class:`Snapshot`; ages are counted at scrape time."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        deliveries = GaugeMetricFamily(
            "approvals_deliveries",
            "Deliveries waiting to be sent (pending) or given up (failed)",
            labels=["status"],
        )
        for status, count in sorted(snap.deliveries.items()):
            deliveries.add_metric([status], count)
        yield deliveries
        yield GaugeMetricFamily(
            "approvals_delivery_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0: none pending)",
            value=_age(snap, snap.oldest_pending_delivery),
        )
        yield GaugeMetricFamily(
            "approvals_delivery_due_lag_seconds",
            "How long the most overdue pending delivery has been due and not taken by a "
            "pass (0: none due); grows while no deliverer runs",
            value=_age(snap, snap.earliest_pending_due),
        )
        yield GaugeMetricFamily(
            "approvals_requests_stuck",
            "Requests whose last transition cannot be written (stuck_since set)",
            value=snap.stuck,
        )
        yield GaugeMetricFamily(
            "approvals_requests_stuck_oldest_age_seconds",
            "How long the longest-stuck request has been stuck (0: none)",
            value=_age(snap, snap.stuck_since),
        )
        open_requests = GaugeMetricFamily(
            "approvals_open_requests", "Requests not closed, by status", labels=["status"]
        )
        for status, count in sorted(snap.open_requests.items()):
            open_requests.add_metric([status], count)
        yield open_requests
        yield GaugeMetricFamily(
            "approvals_business_metrics_read_timestamp_seconds",
            "When the gauges above were last read from PostgreSQL (Unix time)",
            value=snap.taken_at.timestamp(),
        )


async def refresh_forever(
    sessions: async_sessionmaker[AsyncSession],
    collector: BusinessCollector,
    every: float = REFRESH_SECONDS,
) -> None:
    """Read a :class:`Snapshot` into ``collector`` every ``every`` seconds until cancelled.

    A failed read is logged and the last snapshot kept: its read timestamp shows the age.
    """
    while True:
        try:
            collector.snapshot = await read_snapshot(sessions)
        except Exception as exc:  # the database is down, say: the worker goes on
            log.warning("could not read the business metrics: %s", exc)
        await asyncio.sleep(every)


# --- endpoints --------------------------------------------------------------------------


def split_address(address: str, variable: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); ``[::1]:9464`` too."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{variable} must be host:port, not {address!r}")
    return host.strip("[]"), int(port)


def sdk_runtime(address: str) -> Runtime | None:
    """An SDK runtime whose Prometheus exporter serves the SDK's metrics on ``address``.

    None for an empty address (the SDK's default runtime then). One per process: each
    runtime has its own threads, and every client and worker of the process shares it.

    Raises:
        ValueError: the address is taken or malformed, naming the variable.
    """
    if not address:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as exc:
        raise ValueError(f"APPROVALS_WORKER_METRICS_ADDRESS={address}: {exc}") from exc


def serve(address: str, registry: CollectorRegistry = REGISTRY) -> WSGIServer | None:
    """Serve ``registry`` (default: prometheus-client's) on ``address`` in a daemon thread.

    None for an empty address. Raises OSError naming the variable when it is taken.
    """
    if not address:
        return None
    host, port = split_address(address, "APPROVALS_METRICS_ADDRESS")
    try:
        server, _thread = start_http_server(port, host, registry)
    except OSError as exc:
        raise OSError(f"APPROVALS_METRICS_ADDRESS={address}: {exc}") from exc
    return server


_registered: list[BusinessCollector] = []


def register_business_collector() -> BusinessCollector:
    """The collector of the gauges in the default registry (registered once per process)."""
    if not _registered:
        collector = BusinessCollector()
        REGISTRY.register(collector)
        _registered.append(collector)
    return _registered[0]
