"""``/v1/notifications``: my in-app notices, newest first, and marking them read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep
from api.errors import field_errors, not_found, responses
from db import notifications as n
from db.models import NotificationRow

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])


class Notification(BaseModel):
    """One notice to me: what happened to which request."""

    id: int
    request_id: str | None
    kind: str = Field(
        description="What the notice is about, e.g. `assigned`, `reminder`, `escalated`, "
        "`approved`, `returned`, `cc_outcome`."
    )
    title: str | None = Field(description="The request's title, when the notice names one.")
    payload: dict[str, Any] = Field(
        description="The notice's details as the workflow wrote them (`request_id`, `title`, "
        "and per kind e.g. `stage`, `milestone`, `outcome`)."
    )
    created_at: datetime
    read: bool
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[Notification]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )
    unread: int = Field(description="How many of my notices are unread (every page).")


class ReadAll(BaseModel):
    marked: int = Field(description="How many notices this call marked read.")
    unread: int = Field(description="How many remain unread (notices that arrived meanwhile).")


NoticeId = Annotated[int, Path(ge=1, le=n.MAX_ROW_ID, description="The notification id.")]


def notification(row: NotificationRow) -> Notification:
    payload = dict(row.payload or {})
    title = payload.get("title")
    return Notification(
        id=row.id,
        request_id=row.request_id,
        kind=row.template,
        title=title if isinstance(title, str) else None,
        payload=payload,
        created_at=row.created_at,
        read=row.read_at is not None,
        read_at=row.read_at,
    )


@router.get(
    "",
    response_model=NotificationPage,
    summary="My notifications",
    description=(
        "The in-app notices sent to the caller, newest first, one page at a time: pass "
        "`next_cursor` back as `cursor`. `unread` counts every unread one."
    ),
    responses=responses(401, 422),
)
async def my_notifications(
    user: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPage:
    after = None
    if cursor is not None:
        try:
            after = n.NoticeCursor.decode(cursor)
        except ValueError:
            raise field_errors([("cursor", "is not a cursor from this list")]) from None
    rows, following = await n.page(session, user.id, after=after, limit=limit)
    return NotificationPage(
        items=[notification(r) for r in rows],
        next_cursor=following.encode() if following else None,
        unread=await n.unread_count(session, user.id),
    )


@router.post(
    "/read-all",
    response_model=ReadAll,
    summary="Mark all my notifications read",
    description="Marks every unread notice of the caller read.",
    responses=responses(401),
)
async def read_all(user: CurrentUser, session: SessionDep) -> ReadAll:
    marked = await n.mark_all_read(session, user.id)
    return ReadAll(marked=marked, unread=await n.unread_count(session, user.id))


@router.post(
    "/{notification_id}/read",
    response_model=Notification,
    summary="Mark one of my notifications read",
    description=(
        "Idempotent: a notice already read keeps its first `read_at`. Someone else's "
        "notice, like an unknown one, is 404."
    ),
    responses=responses(401, 404, 422),
)
async def read_one(
    notification_id: NoticeId, user: CurrentUser, session: SessionDep
) -> Notification:
    row = await n.mark_read(session, user.id, notification_id)
    if row is None:
        raise not_found("notification")
    return notification(row)
