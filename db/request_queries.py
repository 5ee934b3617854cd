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

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    and_,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.directory import get_user
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


_GRANTS: ColumnElement[bool] = EventRow.kind != literal_column("'ignored'")
"""An event that lets its actor see the request: any but an invalid signal. Written
out, not bound: the predicate of the partial indexes on ``events`` (migration 0017),
which a generic plan could not use with the kind as a parameter."""


def _visible_ids(user_id: str) -> CompoundSelect:
    """The ids of the requests ``user_id`` takes part in, one index lookup per way in.

    The requester; anyone ever assigned (or acted for by a delegate); anyone who
    acted on it; anyone the system told about it (CC, escalations, overdue
    notices). Assignment rows follow the current route (a transfer or a
    resubmission rewrites them), so whoever acted on the request keeps seeing it
    through the audit trail. An invalid signal (recorded as ``ignored``) grants
    nothing: sending one must not open a request to its sender. Each lookup reads
    an index that leads with the person and holds the request id (migration
    0017); an id may come more than once.
    """
    mine = aliased(RequestRow)
    return union_all(
        select(mine.id).where(mine.requester == user_id),
        select(AssignmentRow.request_id).where(AssignmentRow.user_id == user_id),
        select(AssignmentRow.request_id).where(AssignmentRow.on_behalf_of == user_id),
        select(EventRow.request_id).where(EventRow.actor == user_id, _GRANTS),
        select(EventRow.request_id).where(EventRow.on_behalf_of == user_id, _GRANTS),
        select(NotificationRow.request_id).where(
            NotificationRow.recipient == user_id, NotificationRow.request_id.is_not(None)
        ),
    )


def _takes_part(user_id: str, row: Any = RequestRow) -> ColumnElement[bool]:
    """:func:`_visible_ids` tested on one request ``row`` at a time (``RequestRow`` or
    an alias of it).

    For a single request, or the newest rows of a long list: each way in is one
    probe of the same indexes with the row's id. One ``EXISTS`` over a ``UNION
    ALL``, not one ``EXISTS`` per way in ``OR``-ed: PostgreSQL plans those as
    hashed subplans, reading every request the person ever touched first.
    """

    def probe(*where: ColumnElement[bool]) -> Select[Any]:
        return select(literal_column("1")).correlate(row).where(*where)

    ways_in = union_all(
        probe(AssignmentRow.user_id == user_id, AssignmentRow.request_id == row.id),
        probe(AssignmentRow.on_behalf_of == user_id, AssignmentRow.request_id == row.id),
        probe(EventRow.actor == user_id, _GRANTS, EventRow.request_id == row.id),
        probe(EventRow.on_behalf_of == user_id, _GRANTS, EventRow.request_id == row.id),
        probe(NotificationRow.recipient == user_id, NotificationRow.request_id == row.id),
    )
    return or_(row.requester == user_id, ways_in.exists())


def _visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """Who may see a request, tested row by row (for one request): those who take
    part in it (:func:`_visible_ids`); admins and auditors see every request."""
    if viewer.sees_all:
        return true()
    return _takes_part(viewer.user_id)


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


@dataclass(frozen=True)
class RequestRef:
    """What an action needs to know of a request before it goes to the workflow."""

    id: str
    requester: str


async def get_visible_ref(
    session: AsyncSession, request_id: str, viewer: Viewer
) -> RequestRef | None:
    """The request's id and requester if ``viewer`` may see it, else None.

    Actions use this instead of :func:`get_visible_request`: the workflow answers
    with the view, so loading (and decoding) the stored one would be wasted.
    """
    found = (
        await session.execute(
            select(RequestRow.id, RequestRow.requester).where(
                RequestRow.id == request_id, _visible_to(viewer)
            )
        )
    ).one_or_none()
    return None if found is None else RequestRef(id=found.id, requester=found.requester)


async def unreadable_among(session: AsyncSession, request_id: str, users: list[str]) -> list[str]:
    """Those of ``users`` who may not read the request: unknown, inactive, or not taking
    part in it (:func:`_visible_to`). Admins and auditors read every request."""
    refused: list[str] = []
    for user_id in dict.fromkeys(users):
        user = await get_user(session, user_id)
        if user is None or not user.active:
            refused.append(user_id)
            continue
        viewer = Viewer(user_id=user.id, sees_all=user.is_admin or AUDITOR_ROLE in user.roles)
        if await get_visible_ref(session, request_id, viewer) is None:
            refused.append(user_id)
    return refused


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


FEW = 1000
"""Up to this many ways in (:func:`_visible_ids`, an id counted once per way), a list
reads them all and sorts their requests: a few milliseconds at most."""
WINDOW = 1000
"""Past :data:`FEW`, a list first tests the newest this many candidate rows one by one
(:func:`_takes_part`): someone who sees many requests finds a page among them."""


async def list_requests(
    session: AsyncSession,
    viewer: Viewer,
    filters: RequestFilters,
    *,
    after: Cursor | None,
    limit: int,
) -> tuple[Sequence[RequestRow], Cursor | None]:
    """One page of the requests ``viewer`` may see, newest first, and the next cursor.

    Which requests is one rule (:func:`_visible_ids`, :func:`_takes_part`, the same
    rows); how to find a page depends on how many the viewer sees. Someone who
    sees few (up to :data:`FEW` ways in, counted first with one capped index read)
    gets their requests by id and sorted. Someone who sees many finds a page
    among the newest :data:`WINDOW` candidates tested row by row; only when
    those hold less than a page (all they see is older) are all their requests
    read by id. Testing every row newest first until a page is found, as a single
    query would, reads the whole table for someone who sees few.
    """
    query = select(RequestRow)
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
    newest = (RequestRow.created_at.desc(), RequestRow.id.desc())
    rows: Sequence[RequestRow] | None = None
    if viewer.sees_all or filters.assignee == viewer.user_id:
        # My own pending steps: being assigned already lets me see each of them.
        rows = await _page(session, query.order_by(*newest).limit(limit + 1))
    else:
        ids = _visible_ids(viewer.user_id)
        ways_in = await session.scalar(
            select(func.count()).select_from(ids.limit(_inline(FEW + 1)).subquery())
        )
        if (ways_in or 0) > FEW:
            # Many: the newest candidates, each tested; a page among them is the page.
            window = aliased(RequestRow, query.order_by(*newest).limit(_inline(WINDOW)).subquery())
            found = await _page(
                session,
                select(window)
                .where(_takes_part(viewer.user_id, window))
                .order_by(window.created_at.desc(), window.id.desc())
                .limit(limit + 1),
            )
            if len(found) > limit:
                rows = found
            else:
                # Less than a page: unless the window held every candidate (a
                # narrow search), older ones the viewer sees may lie beyond it.
                candidates = await session.scalar(
                    select(func.count()).select_from(
                        query.with_only_columns(RequestRow.id).limit(_inline(WINDOW)).subquery()
                    )
                )
                if (candidates or 0) < WINDOW:
                    rows = found
        if rows is None:
            rows = await _page(
                session, query.where(RequestRow.id.in_(ids)).order_by(*newest).limit(limit + 1)
            )
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    last = page[-1]
    return page, Cursor(created_at=last.created_at, id=last.id)


def _inline(count: int) -> ColumnElement[int]:
    """A constant ``LIMIT`` written into the statement: PostgreSQL's generic plan (from a
    prepared statement's sixth run) knows it and keeps reading a narrow search's rows
    by its index instead of walking the whole table newest first."""
    return literal_column(str(int(count)), Integer)


async def _page(session: AsyncSession, query: Select[Any]) -> Sequence[RequestRow]:
    return (await session.execute(query)).scalars().all()


@dataclass(frozen=True)
class InboxCursor:
    """Where an inbox page ended: the last step's ``(due, eligible_since, id)``."""

    due: datetime | None
    since: datetime
    id: int

    def encode(self) -> str:
        due = self.due.isoformat() if self.due is not None else None
        raw = json.dumps([due, self.since.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> InboxCursor:
        """Parse a cursor made by :meth:`encode` (only that gets through).

        Raises:
            ValueError: the text is not a cursor this service made.
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            due, since, row_id = json.loads(raw)
            stamps = [_aware(since)] + ([_aware(due)] if due is not None else [])
            if not isinstance(row_id, int) or isinstance(row_id, bool) or not 0 < row_id < 2**63:
                raise ValueError("not a row id")
        except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
            raise ValueError("not a valid cursor") from exc
        return cls(due=stamps[1] if due is not None else None, since=stamps[0], id=row_id)


def _aware(text: object) -> datetime:
    if not isinstance(text, str):
        raise TypeError("not a timestamp")
    at = datetime.fromisoformat(text)
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive timestamp")
    return at.astimezone(UTC)


_NO_DUE: ColumnElement[Any] = literal_column("'infinity'::timestamptz")


def _inbox_order(a: Any) -> tuple[Any, ...]:
    """Most urgent first: due time (none last), then who waited longest, then the row."""
    return (func.coalesce(a.due, _NO_DUE), a.eligible_since, a.id)


def _my_steps(user_id: str) -> ColumnElement[bool]:
    """My pending steps, each stage of a request once (its most urgent slot)."""
    other = aliased(AssignmentRow)
    earlier = (
        exists()
        .where(
            other.request_id == AssignmentRow.request_id,
            other.stage_index == AssignmentRow.stage_index,
            other.user_id == AssignmentRow.user_id,
            other.pending,
            tuple_(*_inbox_order(other)) < tuple_(*_inbox_order(AssignmentRow)),
        )
        .correlate(AssignmentRow)
    )
    # ``pending`` as such (not ``IS TRUE``): the predicate of the partial index.
    return and_(AssignmentRow.user_id == user_id, AssignmentRow.pending, ~earlier)


async def inbox(
    session: AsyncSession,
    user_id: str,
    *,
    after: InboxCursor | None = None,
    limit: int = 100,
) -> tuple[list[tuple[AssignmentRow, RequestRow]], InboxCursor | None, int]:
    """One page of my pending steps with their requests, most urgent first; the total.

    A person holding several slots of one stage (or reached twice, by escalation
    and by role) sees the stage once, with its earliest due time. Keyset paging
    on the partial index ``ix_assignments_inbox``: a page costs the same with
    twenty or twenty thousand steps waiting.
    """
    query = (
        select(AssignmentRow, RequestRow)
        .join(RequestRow, RequestRow.id == AssignmentRow.request_id)
        .where(_my_steps(user_id))
        .order_by(*_inbox_order(AssignmentRow))
        .limit(limit + 1)
    )
    if after is not None:
        due = after.due if after.due is not None else _NO_DUE
        query = query.where(
            tuple_(*_inbox_order(AssignmentRow)) > tuple_(due, after.since, after.id)
        )
    rows = [(a, r) for a, r in (await session.execute(query)).all()]
    # Each stage of a request once, as the page shows it.
    steps = (
        select(AssignmentRow.request_id, AssignmentRow.stage_index)
        .where(AssignmentRow.user_id == user_id, AssignmentRow.pending)
        .distinct()
        .subquery()
    )
    total = await session.scalar(select(func.count()).select_from(steps))
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        following = InboxCursor(due=last.due, since=last.eligible_since, id=last.id)
    return rows, following, int(total or 0)
