"""The API's queries on the read-model: visibility, listing with a cursor, the inbox.

The workflow owns every change after submission (through its activities); the
API writes only the ``submitted`` row it creates before starting the workflow,
and removes that row again when the start fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AssignmentRow, EventRow, NotificationRow, RequestRow

AUDITOR_ROLE = "auditor"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: admins and auditors see every request."""

    user_id: str
    sees_all: bool


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's ``(created_at, id)``, newest first."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor made by :meth:`encode`.

        Only what :meth:`encode` can make gets through: an aware timestamp that is
        a real instant (in UTC too, so the database can compare it) and a request
        id that is a UUID. A crafted cursor must never reach the query, where an
        out-of-range date or a NUL in the id fails in the driver instead.

        Raises:
            ValueError: the text is not a cursor this service made.
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, rid = json.loads(raw)
            created = datetime.fromisoformat(at)
            if created.tzinfo is None or created.utcoffset() is None:
                raise ValueError("naive timestamp")
            created = created.astimezone(UTC)
            if not isinstance(rid, str):
                raise TypeError("the id is not a string")
            rid = str(uuid.UUID(rid))
        except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
            raise ValueError("not a valid cursor") from exc
        return cls(created_at=created, id=rid)


@dataclass(frozen=True)
class RequestFilters:
    status: str | None = None
    type: str | None = None
    requester: str | None = None
    assignee: str | None = None
    """Requests with a pending step for this user."""
    overdue: bool | None = None
    customer: str | None = None


@dataclass(frozen=True)
class NewRequest:
    """The row the API writes before it starts the request's workflow."""

    id: str
    type: str
    title: str
    requester: str
    customer: str | None
    amount: Decimal | None
    fields: dict[str, Any]
    comment: str | None
    policy_type: str
    policy_version: int
    route: dict[str, Any]
    idempotency_key: str | None
    body_hash: str


def _visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """Who may see a request.

    The requester; anyone ever assigned (or acted for by a delegate); anyone who
    acted on it; anyone the system told about it (CC, escalations, overdue
    notices); admins and auditors. An invalid signal (recorded as ``ignored``)
    grants nothing: sending one must not open a request to its sender.
    """
    if viewer.sees_all:
        return true()
    assigned = exists().where(
        AssignmentRow.request_id == RequestRow.id,
        or_(AssignmentRow.user_id == viewer.user_id, AssignmentRow.on_behalf_of == viewer.user_id),
    )
    # Assignment rows follow the current route (a transfer or a resubmission
    # rewrites them), so whoever acted on the request keeps seeing it too.
    acted = exists().where(
        EventRow.request_id == RequestRow.id,
        EventRow.kind != "ignored",
        or_(EventRow.actor == viewer.user_id, EventRow.on_behalf_of == viewer.user_id),
    )
    told = exists().where(
        NotificationRow.request_id == RequestRow.id,
        NotificationRow.recipient == viewer.user_id,
    )
    return or_(RequestRow.requester == viewer.user_id, assigned, acted, told)


async def insert_request(session: AsyncSession, new: NewRequest) -> None:
    """Add the ``submitted`` row; the caller commits before starting the workflow."""
    session.add(
        RequestRow(
            id=new.id,
            type=new.type,
            title=new.title,
            requester=new.requester,
            customer=new.customer,
            amount=new.amount,
            fields=new.fields,
            comment=new.comment,
            policy_type=new.policy_type,
            policy_version=new.policy_version,
            route=new.route,
            status="submitted",
            overdue=False,
            current_approvers=[],
            last_seq=0,
            idempotency_key=new.idempotency_key,
            body_hash=new.body_hash,
        )
    )


async def delete_unstarted_request(session: AsyncSession, request_id: str) -> None:
    """Remove a row whose workflow never started (nothing was recorded for it)."""
    await session.execute(
        delete(RequestRow).where(
            RequestRow.id == request_id,
            RequestRow.status == "submitted",
            RequestRow.last_seq == 0,
        )
    )


async def find_by_idempotency_key(
    session: AsyncSession, requester: str, key: str
) -> RequestRow | None:
    return (
        await session.execute(
            select(RequestRow).where(
                RequestRow.requester == requester, RequestRow.idempotency_key == key
            )
        )
    ).scalar_one_or_none()


async def get_request(session: AsyncSession, request_id: str) -> RequestRow | None:
    return await session.get(RequestRow, request_id, populate_existing=True)


async def get_visible_request(
    session: AsyncSession, request_id: str, viewer: Viewer
) -> RequestRow | None:
    """The request if ``viewer`` may see it, else None (the API answers 404 either way)."""
    return (
        await session.execute(
            select(RequestRow)
            .where(RequestRow.id == request_id, _visible_to(viewer))
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def request_history(session: AsyncSession, request_id: str) -> Sequence[EventRow]:
    """The audit rows of a request in sequence order."""
    return (
        (
            await session.execute(
                select(EventRow).where(EventRow.request_id == request_id).order_by(EventRow.seq)
            )
        )
        .scalars()
        .all()
    )


async def list_requests(
    session: AsyncSession,
    viewer: Viewer,
    filters: RequestFilters,
    *,
    after: Cursor | None,
    limit: int,
) -> tuple[Sequence[RequestRow], Cursor | None]:
    """One page of the requests ``viewer`` may see, newest first, and the next cursor."""
    query = select(RequestRow).where(_visible_to(viewer))
    if filters.status is not None:
        query = query.where(RequestRow.status == filters.status)
    if filters.type is not None:
        query = query.where(RequestRow.type == filters.type)
    if filters.requester is not None:
        query = query.where(RequestRow.requester == filters.requester)
    if filters.customer is not None:
        query = query.where(RequestRow.customer == filters.customer)
    if filters.overdue is not None:
        query = query.where(RequestRow.overdue.is_(filters.overdue))
    if filters.assignee is not None:
        query = query.where(
            exists().where(
                AssignmentRow.request_id == RequestRow.id,
                AssignmentRow.user_id == filters.assignee,
                AssignmentRow.pending.is_(True),
            )
        )
    if after is not None:
        query = query.where(
            tuple_(RequestRow.created_at, RequestRow.id) < tuple_(after.created_at, after.id)
        )
    query = query.order_by(RequestRow.created_at.desc(), RequestRow.id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).scalars().all()
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    return page, Cursor(created_at=last.created_at, id=last.id)


async def inbox(session: AsyncSession, user_id: str) -> list[tuple[AssignmentRow, RequestRow]]:
    """My pending steps with their requests, most urgent first (no due date last).

    A person holding several slots of one stage (or reached twice, by escalation
    and by role) sees the stage once, with its earliest due time.
    """
    rows = (
        await session.execute(
            select(AssignmentRow, RequestRow)
            .join(RequestRow, RequestRow.id == AssignmentRow.request_id)
            .where(AssignmentRow.user_id == user_id, AssignmentRow.pending.is_(True))
            .order_by(
                AssignmentRow.due.asc().nulls_last(),
                AssignmentRow.eligible_since.asc(),
                AssignmentRow.id.asc(),
            )
        )
    ).all()
    seen: set[tuple[str, int]] = set()
    out: list[tuple[AssignmentRow, RequestRow]] = []
    for assignment, request in rows:
        key = (assignment.request_id, assignment.stage_index)
        if key in seen:
            continue
        seen.add(key)
        out.append((assignment, request))
    return out
