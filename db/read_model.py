"""The read-model's one write path: a request's row, its inbox (assignments), its audit rows.

The worker's ``record_transition`` activities (:mod:`activities.approvals`) and
``approvals resync`` (:mod:`cli.resync`) write through these functions, so a row
rewritten from a workflow's state is the row the workflow itself would have written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AssignmentRow, EventRow, RequestRow
from db.sla import write_steps
from domain.process import TERMINAL, HistoryEvent, RequestView

SLOT_LABEL_MAX = 200  # assignments.slot

# The write path's statements, built once on the tables (not the ORM classes): SQLAlchemy
# compiles each once and sends a list of rows as one multi-row INSERT, where building
# ``.values([...])`` per call compiled a new statement every time (7% of the worker's
# CPU under load), and ORM-enabled DML added its session bookkeeping.
_REQUESTS = cast(Table, RequestRow.__table__)
_EVENTS = cast(Table, EventRow.__table__)
_ASSIGNMENTS = cast(Table, AssignmentRow.__table__)

INSERT_EVENTS = (
    insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=[_EVENTS.c.request_id, _EVENTS.c.seq])
    .returning(_EVENTS.c.seq)
)

_UPSERT_ASSIGNMENTS = insert(_ASSIGNMENTS)
_UPSERT_ASSIGNMENTS = _UPSERT_ASSIGNMENTS.on_conflict_do_update(
    index_elements=[
        _ASSIGNMENTS.c.request_id,
        _ASSIGNMENTS.c.stage_index,
        _ASSIGNMENTS.c.slot,
        _ASSIGNMENTS.c.user_id,
    ],
    set_={
        col: _UPSERT_ASSIGNMENTS.excluded[col]
        for col in ("stage_key", "via", "on_behalf_of", "eligible_since", "due", "acted", "pending")
    },
)


def event_values(request_id: str, event: HistoryEvent) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "seq": event.seq,
        "at": event.at,
        "actor": event.actor,
        "on_behalf_of": event.on_behalf_of,
        "kind": str(event.kind),
        "comment": event.comment,
        "data": event.model_dump(mode="json")["data"],
    }


REPLACE_UNRECORDED = "approvals.replace_unrecorded"
"""The transaction setting that lets :func:`replace_unrecorded` update ``events``
(migration 0013); nothing else may."""


async def replace_unrecorded(
    session: AsyncSession, request_id: str, events: Sequence[HistoryEvent]
) -> list[int]:
    """Correct the stored audit rows that ``events`` (already stored at their sequence
    numbers) contradict; the sequence numbers corrected.

    A workflow task Temporal recorded replays identically, so a stored event that
    differs from the one the workflow writes now at the same number was written by a
    task that never completed (the worker died after the write): that transition is in
    no history. The workflow's is the true one, and replaces it.
    """
    if not events:
        return []
    stored = {
        row["seq"]: row
        for row in (
            await session.execute(
                select(_EVENTS).where(
                    _EVENTS.c.request_id == request_id,
                    _EVENTS.c.seq.in_([e.seq for e in events]),
                )
            )
        ).mappings()
    }
    wrong = [
        e
        for e in events
        if e.seq in stored
        and any(stored[e.seq][k] != v for k, v in event_values(request_id, e).items())
    ]
    if not wrong:
        return []
    await session.execute(text(f"SELECT set_config('{REPLACE_UNRECORDED}', 'on', true)"))
    for e in wrong:
        await session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.request_id == request_id, _EVENTS.c.seq == e.seq)
            .values(**event_values(request_id, e))
        )
    await session.execute(text(f"SELECT set_config('{REPLACE_UNRECORDED}', 'off', true)"))
    return [e.seq for e in wrong]


def request_values(view: RequestView, event: HistoryEvent) -> dict[str, Any]:
    """The columns of ``requests`` that mirror the workflow's view after ``event``."""
    view_json = view.model_dump(mode="json")
    closed_at = view.closed_at
    if closed_at is None and view.status in TERMINAL and view.revocable_until is None:
        # (A completed request with a revoke window stays open until the window ends.)
        closed_at = event.at
    stage_key = (
        view.stages[view.stage_index].key
        if view.stage_index is not None and 0 <= view.stage_index < len(view.stages)
        else None
    )
    return {
        "status": view.status,
        "stage_index": view.stage_index,
        "stage_key": stage_key,
        "resolve_due": view.resolve_due,
        "overdue": view.overdue,
        "current_approvers": list(view.current_approvers),
        "amount": view.amount,
        "fields": view_json["fields"],
        "title": view.title,
        "customer": view.customer,
        "policy_type": view.policy_type,
        "policy_version": view.policy_version,
        "view": view_json,
        "last_seq": event.seq,
        "closed_at": closed_at,
        # Written, so no longer stuck.
        "stuck_since": None,
        "stuck_reason": None,
    }


async def insert_request_if_missing(
    session: AsyncSession, view: RequestView, event: HistoryEvent
) -> bool:
    """Create the read-model row if the API has not; True if this call created it."""
    stages = [s.model_dump(mode="json", exclude={"slots"}) for s in view.stages]
    created = await session.scalar(
        insert(_REQUESTS)
        .values(
            id=view.id,
            type=view.type,
            requester=view.requester,
            comment=view.comment,
            route={"stages": stages},
            created_at=view.submitted_at,
            **request_values(view, event),
        )
        .on_conflict_do_nothing(index_elements=[_REQUESTS.c.id])
        .returning(_REQUESTS.c.id)
    )
    return created is not None


async def update_request(session: AsyncSession, view: RequestView, event: HistoryEvent) -> bool:
    """Move the read-model forward to ``event``; False if it already shows a later one."""
    updated = await session.scalar(
        update(_REQUESTS)
        .where(_REQUESTS.c.id == view.id, _REQUESTS.c.last_seq < event.seq)
        .values(**request_values(view, event))
        .returning(_REQUESTS.c.id)
    )
    return updated is not None


async def rewrite_request(
    session: AsyncSession, view: RequestView, event: HistoryEvent, **extra: Any
) -> bool:
    """Rewrite the row to ``view`` after ``event`` unless it shows a later event.

    Unlike :func:`update_request` it also rewrites a row at the same event (whose
    columns a restore or a hand edit changed); ``extra`` sets further columns (the
    stuck flag). True if the row was rewritten.
    """
    updated = await session.scalar(
        update(_REQUESTS)
        .where(_REQUESTS.c.id == view.id, _REQUESTS.c.last_seq <= event.seq)
        .values(**{**request_values(view, event), **extra})
        .returning(_REQUESTS.c.id)
    )
    return updated is not None


async def rewrite_derived(session: AsyncSession, view: RequestView, at: datetime) -> None:
    """Every row derived from the request's view: its inbox (:func:`rewrite_assignments`)
    and its SLA step rows (:func:`db.sla.write_steps`), as of ``at``. One call, so that
    each writer (the transition activity, ``approvals resync``) keeps both in step."""
    await rewrite_assignments(session, view)
    await write_steps(session, view, at)


async def rewrite_assignments(session: AsyncSession, view: RequestView) -> None:
    """Make the request's assignment rows (the inbox) match the view.

    Rows are never deleted: whoever was ever assigned keeps a (no longer pending)
    row, after a transfer or a resubmission too, so "ever assigned" stays true
    for visibility and reports.
    """
    await session.execute(
        update(_ASSIGNMENTS).where(_ASSIGNMENTS.c.request_id == view.id).values(pending=False)
    )
    candidates = [
        {
            "request_id": view.id,
            "stage_index": stage.index,
            "stage_key": stage.key,
            "slot": slot.label[:SLOT_LABEL_MAX],
            "user_id": actor.user,
            "via": actor.via,
            "on_behalf_of": actor.on_behalf_of,
            "eligible_since": actor.since,
            "due": stage.reply_due,
            "acted": slot.decided_by == actor.user,
            "pending": (
                stage.status == "active" and slot.decision is None and view.status == "in_review"
            ),
        }
        for stage in view.stages
        for slot in stage.slots
        for actor in slot.actors
    ]
    # A user named twice in one slot (two specs, same label) is one inbox row.
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in candidates:
        unique.setdefault((row["stage_index"], row["slot"], row["user_id"]), row)
    rows = list(unique.values())
    if rows:
        await session.execute(_UPSERT_ASSIGNMENTS, rows)
