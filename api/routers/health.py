"""``/healthz`` (the process answers) and ``/readyz`` (the database, Temporal and a worker).

Temporal answering is not enough to be ready: with no worker polling the task
queue, every submission would wait and answer 202 and every action 503. So
/readyz also wants a worker to have polled the workflow task queue within
``APPROVALS_WORKER_POLL_MAX_AGE_SECONDS`` (the answer is cached a few seconds).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ServicesDep
from api.errors import ApiError, responses, unavailable
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


async def _database(services: ServicesDep) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS), services.sessions() as session:
            await session.execute(text("select 1"))
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"down: {type(exc).__name__}"
    return "ok"


async def _temporal(services: ServicesDep) -> str:
    try:
        client = await services.temporal.client()
        serving = await client.service_client.check_health(
            timeout=timedelta(seconds=_CHECK_TIMEOUT_SECONDS)
        )
    except ApiError:
        return "down: not reachable"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"down: {type(exc).__name__}"
    return "ok" if serving else "down: not serving"


async def _worker(services: ServicesDep) -> str:
    try:
        last_poll = await services.temporal.last_worker_poll()
    except ApiError:
        return "down: Temporal not reachable"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"down: {type(exc).__name__}"
    queue = services.settings.task_queue
    if last_poll is None:
        return f"down: no worker polls task queue {queue!r}"
    age = (datetime.now(UTC) - last_poll).total_seconds()
    if age > services.settings.worker_poll_max_age_seconds:
        return f"down: no worker polled task queue {queue!r} for {age:.0f} s"
    return "ok"


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness",
    description=(
        "200 when the database and Temporal answer and a worker has polled the task queue "
        "recently; 503 naming what is down (`database`, `temporal`, `worker`)."
    ),
    responses=responses(503),
)
async def readyz(services: ServicesDep) -> Ready:
    database, temporal, worker = await asyncio.gather(
        _database(services), _temporal(services), _worker(services)
    )
    checks = {"database": database, "temporal": temporal, "worker": worker}
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        raise unavailable(f"not ready: {' and '.join(down)} down", {"checks": checks})
    return Ready(status="ok", checks=checks)
