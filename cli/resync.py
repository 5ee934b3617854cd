"""``approvals resync``: bring a read-model restored from an older backup back in step.

The workflows are the source of truth; the database restored from a backup shows
each request as it was when the backup was taken. For every approval workflow
that is running, or completed within ``--closed-since``, found through Temporal's
visibility store (not through the possibly stale database), resync asks the
workflow for its state (the ``state`` query, which carries the request's history)
and, in one transaction per request:

* rewrites the request's row (or creates it: a request submitted after the
  backup) with the code the worker writes it with (:mod:`db.read_model`), unless
  the row already shows a later transition;
* rewrites its inbox (assignment rows) the same way;
* inserts the audit rows the database lacks, by seq, never one already there
  (those older than a continue-as-new from the earlier runs, while Temporal keeps them).

Notices are not re-created: see docs/operations.md ("Restoring from a backup").
A second run changes nothing. ``dry_run`` does all of it and rolls back, so its
report is exactly what a real run would change.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from activities.reconcile import request_id_of
from db import read_model
from db.models import AssignmentRow, EventRow, RequestRow
from domain.constants import WORKFLOW_NAME, Queries
from domain.process import HistoryEvent, RequestView
from domain.resync import RequestResync, ResyncReport, changed_rows, missing_events

CONCURRENCY = 8
"""Requests resynced at once (one query and one transaction each)."""

QUERY_TIMEOUT = timedelta(seconds=30)
"""A query waits this long for a worker (a completed workflow is replayed to answer)."""

_INBOX_COLUMNS = (
    AssignmentRow.stage_index,
    AssignmentRow.slot,
    AssignmentRow.user_id,
    AssignmentRow.stage_key,
    AssignmentRow.via,
    AssignmentRow.on_behalf_of,
    AssignmentRow.eligible_since,
    AssignmentRow.due,
    AssignmentRow.acted,
    AssignmentRow.pending,
)


def workflows_query(task_queue: str, closed_since: datetime) -> str:
    """This deployment's approval workflows (on ``task_queue``) running now or completed
    since ``closed_since``.

    Runs closed otherwise (terminated, timed out...) are reconciliation's
    (``approvals reconcile``); a run that continued as new is followed by its
    latest run, which this lists.
    """
    return (
        f'WorkflowType="{WORKFLOW_NAME}" AND TaskQueue="{task_queue}" AND '
        f'(ExecutionStatus="Running" OR '
        f'(ExecutionStatus="Completed" AND '
        f'CloseTime >= "{closed_since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"))'
    )


async def resync(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    *,
    task_queue: str,
    closed_since: timedelta,
    dry_run: bool = False,
) -> ResyncReport:
    """Resync every running or recently completed request; see the module's docstring."""
    listed: dict[str, str] = {}
    async for execution in client.list_workflows(
        workflows_query(task_queue, datetime.now(UTC) - closed_since), page_size=200
    ):
        if request_id_of(execution.id) is not None and execution.status is not None:
            listed.setdefault(execution.id, execution.status.name.title())
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(wf_id: str) -> RequestResync:
        async with gate:
            try:
                view = await _state(client, wf_id)
                view = await _with_earlier_runs(client, sessions, wf_id, view)
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
                # No worker answers, or the workflow cannot replay: say so, go on.
                return RequestResync(
                    request_id=request_id_of(wf_id) or wf_id,
                    workflow_status=listed[wf_id],
                    row="failed",
                    error=" ".join(str(getattr(exc, "message", exc) or exc).split())[:300],
                )
            return await resync_request(sessions, view, listed[wf_id], dry_run=dry_run)

    report = ResyncReport()
    for done in await asyncio.gather(*(one(wf_id) for wf_id in sorted(listed))):
        report.add(done)
    return report


async def _state(client: Client, wf_id: str, run_id: str | None = None) -> RequestView:
    handle = client.get_workflow_handle(wf_id, run_id=run_id)
    return await handle.query(Queries.STATE, result_type=RequestView, rpc_timeout=QUERY_TIMEOUT)


async def _with_earlier_runs(
    client: Client, sessions: async_sessionmaker[AsyncSession], wf_id: str, view: RequestView
) -> RequestView:
    """``view`` with the events its run no longer carries that the database lacks.

    A workflow that continued as new carries only its latest events; the earlier
    runs, while Temporal keeps them (the namespace's retention), still answer the
    query with the events they held. They are asked only when the database lacks
    one of the events the latest run does not carry.
    """
    first = min((e.seq for e in view.history), default=1)
    if first <= 1:
        return view
    async with sessions() as session:
        stored = set(
            await session.scalars(
                select(EventRow.seq).where(EventRow.request_id == view.id, EventRow.seq < first)
            )
        )
    wanted = set(range(1, first)) - stored
    found: dict[int, HistoryEvent] = {}
    async for run in client.list_workflows(
        f'WorkflowId="{wf_id}" AND ExecutionStatus="ContinuedAsNew"', page_size=50
    ):
        if not wanted - found.keys():
            break
        earlier = await _state(client, wf_id, run.run_id)
        found.update({e.seq: e for e in earlier.history if e.seq in wanted})
    if not found:
        return view
    return view.model_copy(update={"history": sorted([*found.values(), *view.history], key=_seq)})


def _seq(event: HistoryEvent) -> int:
    return event.seq


async def resync_request(
    sessions: async_sessionmaker[AsyncSession],
    view: RequestView,
    workflow_status: str,
    *,
    dry_run: bool = False,
) -> RequestResync:
    """Bring one request's row, inbox and audit rows in step with its workflow's ``view``."""
    async with sessions() as session:
        try:
            out = await _resync(session, view, workflow_status)
        except BaseException:
            await session.rollback()
            raise
        if dry_run:
            await session.rollback()
        else:
            await session.commit()
    return out


async def _resync(session: AsyncSession, view: RequestView, workflow_status: str) -> RequestResync:
    out = RequestResync(request_id=view.id, workflow_status=workflow_status, seq=view.version)
    if not view.history:  # not submitted yet: nothing written, nothing to write
        return out
    last = max(view.history, key=lambda e: e.seq)
    # The row as the worker writes it: without history (the audit table) nor stuck flag.
    stored = view.model_copy(update={"history": [], "stuck": None})
    stuck: dict[str, Any] = (
        {"stuck_since": view.stuck.since, "stuck_reason": view.stuck.reason[:2000]}
        if view.stuck is not None
        else {}
    )
    target = {**read_model.request_values(stored, last), **stuck}
    row = (
        await session.execute(
            select(
                RequestRow.last_seq,
                RequestRow.view,
                RequestRow.closed_at,
                RequestRow.stuck_since,
                RequestRow.stuck_reason,
            )
            .where(RequestRow.id == view.id)
            .with_for_update()  # the worker's next write of this request waits for ours
        )
    ).first()
    before = await _inbox(session, view.id)
    if row is None:
        await read_model.insert_request_if_missing(session, stored, last)
        if stuck:
            await read_model.rewrite_request(session, stored, last, **stuck)
        out.row = "created"
    elif row.last_seq > last.seq:
        out.row = "ahead"
    elif (row.last_seq, row.view, row.closed_at, row.stuck_since, row.stuck_reason) != (
        target["last_seq"],
        target["view"],
        target["closed_at"],
        target.get("stuck_since"),
        target.get("stuck_reason"),
    ):
        await read_model.rewrite_request(session, stored, last, **stuck)
        out.row = "rewritten"
    if out.row != "ahead":
        await read_model.rewrite_derived(session, stored, last.at)
        out.inbox_rows = changed_rows(before, await _inbox(session, view.id))
    have_seqs = list(
        await session.scalars(select(EventRow.seq).where(EventRow.request_id == view.id))
    )
    to_add, out.events_lost = missing_events(have_seqs, view.history)
    if to_add:
        written = await session.execute(
            read_model.INSERT_EVENTS, [read_model.event_values(view.id, e) for e in to_add]
        )
        out.events_added = sorted(written.scalars())
    out.events_corrected = await read_model.replace_unrecorded(
        session, view.id, [e for e in view.history if e.seq in set(have_seqs)]
    )
    return out


async def _inbox(session: AsyncSession, request_id: str) -> dict[Any, dict[str, Any]]:
    rows = await session.execute(
        select(*_INBOX_COLUMNS).where(AssignmentRow.request_id == request_id)
    )
    return {(r.stage_index, r.slot, r.user_id): dict(r._mapping) for r in rows}
