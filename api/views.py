"""Turn read-model rows into the API's answers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from api.deps import Reader
from api.schemas import InboxItem, RequestSummary
from db.models import AssignmentRow, EventRow, RequestRow
from domain.localize import span_text
from domain.process import EventKind, HistoryEvent, RequestView, stage_views_of
from domain.routing import Route


def history_event(row: EventRow) -> HistoryEvent:
    return HistoryEvent(
        seq=row.seq,
        at=row.at,
        kind=EventKind(row.kind),
        actor=row.actor,
        on_behalf_of=row.on_behalf_of,
        comment=row.comment,
        data=row.data or {},
    )


def request_view(row: RequestRow, events: Iterable[EventRow]) -> RequestView:
    """The full view: the workflow's last snapshot, or the route alone before it ran.

    The history always comes from the audit table, in sequence order.
    """
    history = [history_event(e) for e in events]
    if row.view:
        view = RequestView.model_validate(row.view)
        return view.model_copy(update={"history": history, "version": row.last_seq})
    route = Route.model_validate(row.route)
    return RequestView(
        id=row.id,
        type=row.type,
        title=row.title,
        requester=row.requester,
        customer=row.customer,
        amount=row.amount,
        fields=row.fields or {},
        comment=row.comment,
        policy_type=row.policy_type,
        policy_version=row.policy_version,
        status=row.status,
        stage_index=row.stage_index,
        stages=stage_views_of(route),
        submitted_at=row.created_at,
        resolve_due=row.resolve_due,
        overdue=row.overdue,
        closed_at=row.closed_at,
        current_approvers=list(row.current_approvers or []),
        history=history,
        version=row.last_seq,
    )


def summary(row: RequestRow) -> RequestSummary:
    return RequestSummary(
        id=row.id,
        type=row.type,
        title=row.title,
        requester=row.requester,
        customer=row.customer,
        amount=row.amount,
        status=row.status,
        stage_key=row.stage_key,
        current_approvers=list(row.current_approvers or []),
        overdue=row.overdue,
        resolve_due=row.resolve_due,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        version=row.last_seq,
    )


def _stage_name(request: RequestRow, key: str, reader: Reader) -> str:
    """The stage's name in the reader's language (as stored if its policy lacks the key)."""
    return reader.stage_name(request.policy_type, key, _stored_stage_name(request, key))


def _stored_stage_name(request: RequestRow, key: str) -> str:
    sources: list[Any] = []
    if request.view:
        sources.append(request.view.get("stages") or [])
    sources.append((request.route or {}).get("stages") or [])
    for stages in sources:
        for stage in stages:
            if isinstance(stage, dict) and stage.get("key") == key:
                return str(stage.get("name") or key)
    return key


def inbox_item(
    assignment: AssignmentRow, request: RequestRow, now: datetime, reader: Reader
) -> InboxItem:
    late = assignment.due is not None and assignment.due <= now
    # The request's view notes the reply deadline when it counts working time.
    noted = ((request.view or {}).get("working_time") or {}).get("reply")
    reply = (
        noted if isinstance(noted, dict) and assignment.stage_index == request.stage_index else None
    )
    return InboxItem(
        request_id=request.id,
        type=request.type,
        title=request.title,
        requester=request.requester,
        customer=request.customer,
        amount=request.amount,
        status=request.status,
        stage_index=assignment.stage_index,
        stage_key=assignment.stage_key,
        stage_name=_stage_name(request, assignment.stage_key, reader),
        via=assignment.via,
        on_behalf_of=assignment.on_behalf_of,
        eligible_since=assignment.eligible_since,
        due=assignment.due,
        due_working_time=span_text(str(reply.get("span")), reader.lang) if reply else None,
        due_provisional=bool(reply.get("provisional")) if reply else False,
        overdue=late or request.overdue,
        version=request.last_seq,
    )
