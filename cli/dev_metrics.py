"""Metrics ports of ``approvals dev``'s worker children: two each, none shared."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from cli.children import port_answers
from common.settings import Settings

DEV_METRICS_PORTS: dict[str, tuple[int | None, int]] = {
    "worker": (9464, 9465),
    "deliverer": (None, 9467),
}
"""Per child, the preferred ports of the Temporal SDK's metrics (None: the child runs
no Temporal worker, as the deliverer) and of ours."""
"""Preferred ports of each worker child's metrics: (the Temporal SDK's, ours)."""


def free_port(preferred: int, taken: set[int]) -> int:
    """``preferred`` if nothing listens there and it is not in ``taken``, else any free port."""
    if preferred not in taken and not port_answers("127.0.0.1", preferred):
        return preferred
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port


def metrics_env(settings: Settings) -> dict[str, dict[str, str]]:
    """Per worker child, the metrics addresses it serves on: distinct ports on 127.0.0.1.

    The worker and the deliverer run as two processes: the worker serves the SDK's
    metrics and ours, the deliverer (no Temporal worker) ours only: three ports, the
    preferred ones (:data:`DEV_METRICS_PORTS`) unless taken (a second stack). An address
    turned off (empty) in the settings stays off.
    """
    taken: set[int] = set()
    envs: dict[str, dict[str, str]] = {}
    for child, (sdk, ours) in DEV_METRICS_PORTS.items():
        env: dict[str, str] = {}
        for variable, on, preferred in (
            ("APPROVALS_WORKER_METRICS_ADDRESS", settings.worker_metrics_address, sdk),
            ("APPROVALS_METRICS_ADDRESS", settings.metrics_address, ours),
        ):
            if preferred is None:
                continue  # no Temporal SDK in this child
            port = free_port(preferred, taken) if on else None
            if port is not None:
                taken.add(port)
            env[variable] = f"127.0.0.1:{port}" if port is not None else ""
        envs[child] = env
    return envs


def metrics_lines(api: str | None, envs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Where the dev stack's metrics are, for the banner (``api``: its base URL, or None
    when its ``/metrics`` is off)."""

    def url(address: str) -> str:
        return f"http://{address}/metrics" if address else "off"

    lines = [f"  API           {api + '/metrics' if api else 'off'}"]
    for child, env in envs.items():
        sdk = env.get("APPROVALS_WORKER_METRICS_ADDRESS")
        lines.append(
            f"  {child:<13} {url(env['APPROVALS_METRICS_ADDRESS'])}"
            + (f" (Temporal SDK: {url(sdk)})" if sdk is not None else "")
        )
    return lines
