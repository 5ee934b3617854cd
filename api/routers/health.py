"""``/healthz`` (the process answers) and ``/readyz`` (the database and Temporal answer)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import CoreDep
from api.errors import ApiError, responses, unavailable
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


async def _database(core: CoreDep) -> str:
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS), core.sessions() as session:
            await session.execute(text("select 1"))
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"down: {type(exc).__name__}"
    return "ok"


async def _temporal(core: CoreDep) -> str:
    try:
        client = await core.temporal.client()
        serving = await client.service_client.check_health(
            timeout=timedelta(seconds=_CHECK_TIMEOUT_SECONDS)
        )
    except ApiError:
        return "down: not reachable"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"down: {type(exc).__name__}"
    return "ok" if serving else "down: not serving"


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness",
    description="200 when the database and Temporal answer; 503 naming what is down.",
    responses=responses(503),
)
async def readyz(core: CoreDep) -> Ready:
    database, temporal = await asyncio.gather(_database(core), _temporal(core))
    checks = {"database": database, "temporal": temporal}
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        raise unavailable(f"not ready: {' and '.join(down)} down", {"checks": checks})
    return Ready(status="ok", checks=checks)
