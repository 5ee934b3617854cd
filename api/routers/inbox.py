"""``/v1/inbox``: the steps waiting for me."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.errors import responses
from api.schemas import Inbox
from api.views import inbox_item
from db import request_queries as q

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


@router.get(
    "",
    response_model=Inbox,
    summary="My pending steps",
    description="Steps the caller may decide now, most urgent first (no due date last).",
    responses=responses(401),
)
async def my_inbox(user: CurrentUser, session: SessionDep) -> Inbox:
    now = datetime.now(UTC)
    rows = await q.inbox(session, user.id)
    return Inbox(items=[inbox_item(a, r, now) for a, r in rows])
