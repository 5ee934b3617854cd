"""People who left the directory give up the steps they held.

``approvals load-org`` deactivates people no longer in the org file. Their
pending steps would otherwise wait for someone who will never act, until a
timer escalated them. After a load, every request with a pending step held by
an inactive user is told so (signal ``directory_changed``); its workflow asks
the directory itself who is inactive, takes them off the step and makes their
manager chain eligible, as escalation does, with an audit row. Running it
again is harmless, so a load that could not reach Temporal is mended by the
next one.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db.directory import departed_holders
from domain.constants import Signals, workflow_id
from domain.process import DirectoryChangedInput

log = logging.getLogger("approvals.directory")


async def steps_held_by_leavers(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[str]]:
    """Request id -> the inactive users holding one of its pending steps."""
    async with sessions() as session:
        return await departed_holders(session)


async def notify_departures(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    held: dict[str, list[str]] | None = None,
) -> int:
    """Signal each request whose pending step an inactive user holds; how many were told."""
    if held is None:
        held = await steps_held_by_leavers(sessions)
    told = 0
    for request_id, users in sorted(held.items()):
        handle = client.get_workflow_handle(workflow_id(request_id))
        try:
            await handle.signal(Signals.DIRECTORY_CHANGED, DirectoryChangedInput(users=users))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                continue  # closed meanwhile: nothing to hand over
            raise
        log.info("request %s: %s left the directory; their step is handed on", request_id, users)
        told += 1
    return told
