"""``/v1/inbox``: the steps waiting for me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, ReaderDep, SessionDep
from api.errors import field_errors, responses
from api.schemas import Inbox
from api.views import inbox_item
from db import request_queries as q

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


@router.get(
    "",
    response_model=Inbox,
    summary="My pending steps",
    description=(
        "Steps the caller may decide now, most urgent first (no due date last), one page at "
        "a time: pass `next_cursor` back as `cursor`. `total` counts them all."
    ),
    responses=responses(401, 422),
)
async def my_inbox(
    user: CurrentUser,
    session: SessionDep,
    reader: ReaderDep,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> Inbox:
    after = None
    if cursor is not None:
        try:
            after = q.InboxCursor.decode(cursor)
        except ValueError:
            raise field_errors([("cursor", "is not a cursor from this inbox")]) from None
    now = datetime.now(UTC)
    rows, following, total = await q.inbox(session, user.id, after=after, limit=limit)
    return Inbox(
        items=[inbox_item(a, r, now, reader) for a, r in rows],
        next_cursor=following.encode() if following else None,
        total=total,
    )
