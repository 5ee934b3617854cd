"""Reconciliation: record requests whose workflow was ended outside the process.

A workflow that an operator terminates (Temporal UI, ``temporal workflow
terminate``), that times out, is cancelled or fails never writes its last
transition: its ``requests`` row would stay ``in_review`` and its approvers'
inbox rows pending forever. A pass of :class:`ReconcileActivities` finds those
requests and records them as ``terminated``, naming who ended the workflow as
Temporal recorded it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHistoryEventFilterType,
)
from temporalio.service import RPCError, RPCStatusCode

from db import attachments, delegations
from db.deliveries import wake_deliverers
from db.engine import transaction
from db.models import AssignmentRow, EventRow, NotificationRow, RequestRow, RequestStepRow
from domain.constants import WORKFLOW_NAME, Activities, Signals, workflow_id
from domain.process import (
    SYSTEM,
    TERMINAL,
    DirectoryChangedInput,
    EventKind,
    MilestoneStatus,
    RequestView,
    StageStatus,
    Status,
)
from domain.reconcile import Reconciled, ReconcileInput, ReconcileOutput

ENDED_OUTSIDE: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.FAILED: "Failed",
}
"""Closed statuses the process never reaches by itself, as visibility queries name them.

``Completed`` is the process's own end (it recorded its last transition first);
``ContinuedAsNew`` is a long-lived request carrying on in a new run.
"""

PAGE_SIZE = 200
"""Visibility rows per page, and request ids per read-model query."""

CONCURRENCY = 8
"""Requests examined at once (describe + close event): bounded to spare the frontend."""

ACTOR_MAX = 64  # events.actor
NOTICE_TEMPLATE = "terminated"


def closed_outside_query(since: datetime) -> str:
    """The visibility query for approval workflows ended outside the process since ``since``."""
    statuses = ", ".join(f'"{name}"' for name in ENDED_OUTSIDE.values())
    return (
        f'WorkflowType="{WORKFLOW_NAME}" AND ExecutionStatus IN ({statuses}) '
        f'AND CloseTime >= "{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"'
    )


def request_id_of(wf_id: str) -> str | None:
    """The request id of an approval workflow id, or None for any other workflow."""
    prefix = workflow_id("")
    return wf_id[len(prefix) :] if wf_id.startswith(prefix) and len(wf_id) > len(prefix) else None


class ReconcileActivities:
    """The reconciliation pass, with an injected session factory and Temporal client.

    How it finds the requests, and why that way: it asks Temporal's visibility
    store for approval workflows closed as Terminated, TimedOut, Canceled or
    Failed within a look-back window of close time (:func:`closed_outside_query`),
    then keeps those whose read-model row is still open (one indexed
    ``id IN (...)`` query per page). The cost of a pass follows the number of
    workflows that ended abnormally in the window, which is small, and not the
    number of open requests: with 20,000 requests in review, describing the
    workflow of every open row each minute would be 20,000 frontend calls a
    minute (about 330 a second) spent mostly on learning "still running". A
    request already reconciled costs only its share of the ``IN`` query until
    it leaves the window, so re-reading the window every minute is cheap and
    a reconciler that was down for less than the window misses nothing.

    Before writing, each candidate's *latest* run is described: a workflow
    reset terminates the old run and carries on in a new one, and that request
    must stay untouched. What ended the run (identity and reason) comes from
    its close event, or from the cancel request for a cancelled run.

    Each request is written in its own transaction, so a pass interrupted
    half-way keeps what it did; running it again writes nothing twice (see
    :func:`record_terminated`). After a batch terminate of thousands of
    requests a pass does three small calls and one transaction per request,
    :data:`CONCURRENCY` at a time, and names only the first of them in its
    result (``list_at_most``), which must stay under Temporal's payload limit.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: Client) -> None:
        self._sessions = sessions
        self._client = client

    @activity.defn(name=Activities.RECONCILE_CLOSED)
    async def reconcile_closed_requests(self, input: ReconcileInput) -> ReconcileOutput:
        """One pass: record every open request whose workflow ended outside the process.

        Also callable outside a worker (the ``approvals reconcile`` command).
        """
        since = datetime.now(UTC) - input.lookback
        out = ReconcileOutput()
        page: dict[str, WorkflowExecution] = {}
        async for execution in self._client.list_workflows(
            closed_outside_query(since), page_size=PAGE_SIZE
        ):
            out.examined += 1
            # Several runs of one workflow id may be listed; the latest is described below.
            page.setdefault(execution.id, execution)
            if len(page) >= PAGE_SIZE:
                self._add(out, await self._reconcile_page(page.keys()), input.list_at_most)
                page = {}
        if page:
            self._add(out, await self._reconcile_page(page.keys()), input.list_at_most)
        if out.recorded:
            activity.logger.info(
                "recorded %d request(s) whose workflow ended outside the process as terminated",
                out.recorded,
            )
        out.delegations_told = await self.tell_delegations(datetime.now(UTC))
        async with transaction(self._sessions) as session:
            out.uploads_deleted = await attachments.delete_stale(session, datetime.now(UTC))
        return out

    async def tell_delegations(self, now: datetime) -> int:
        """Delegations that start or end at a set time take effect here, within a pass.

        Made or ended through the API, one in force at once is told at once; one that
        starts or ends later (or comes from the org file) is told by the first pass
        after its time: the open steps of its delegator then gain or lose the delegate
        (:func:`db.delegations.tell`). The reconcile schedule runs a pass every minute,
        so a delegation takes effect on steps already open within about a minute of its
        time; a step that opens meanwhile asks the directory itself and is right at once.
        """
        told = await delegations.tell(self._sessions, self._signal_delegators, now)
        if told:
            activity.logger.info("told the open requests of %d delegation(s)", told)
        return told

    async def _signal_delegators(self, request_id: str, hint: DirectoryChangedInput) -> bool:
        handle = self._client.get_workflow_handle(workflow_id(request_id))
        try:
            await handle.signal(Signals.DIRECTORY_CHANGED, hint)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False  # closed meanwhile: no step to follow
            raise
        return True

    @staticmethod
    def _add(out: ReconcileOutput, done: list[Reconciled], list_at_most: int | None) -> None:
        out.recorded += len(done)
        room = len(done) if list_at_most is None else list_at_most - len(out.reconciled)
        out.reconciled += done[: max(room, 0)]

    async def _reconcile_page(self, workflow_ids: Iterable[str]) -> list[Reconciled]:
        by_request = {rid: wid for wid in workflow_ids if (rid := request_id_of(wid)) is not None}
        if not by_request:
            return []
        async with self._sessions() as session:
            open_ids = set(
                await session.scalars(
                    select(RequestRow.id).where(
                        RequestRow.id.in_(by_request),
                        RequestRow.status.not_in(TERMINAL),
                        RequestRow.closed_at.is_(None),
                    )
                )
            )
        if not open_ids:
            return []
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(rid: str) -> Reconciled | None:
            async with gate:
                return await self._reconcile_one(rid, by_request[rid])

        done = await asyncio.gather(*(one(rid) for rid in sorted(open_ids)))
        return [r for r in done if r is not None]

    async def _reconcile_one(self, request_id: str, wf_id: str) -> Reconciled | None:
        handle = self._client.get_workflow_handle(wf_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None  # gone from Temporal meanwhile (retention)
            raise
        status = desc.status
        if status not in ENDED_OUTSIDE or desc.close_time is None:
            # E.g. reset: the listed run was terminated, a newer run carries on.
            activity.logger.info("%s: latest run is %s; left alone", wf_id, status)
            return None
        actor, identity, reason = await self._who_ended(wf_id, desc.run_id, status)
        ended = Ended(
            workflow_id=wf_id,
            run_id=desc.run_id,
            execution_status=ENDED_OUTSIDE[status],
            actor=actor,
            identity=identity,
            reason=reason,
            closed_at=desc.close_time,
        )
        async with transaction(self._sessions) as session:
            seq = await record_terminated(session, request_id, ended)
        if seq is None:
            return None
        activity.logger.info(
            "request %s recorded as terminated (%s by %s: %s)",
            request_id,
            ended.execution_status,
            actor,
            reason,
        )
        return Reconciled(
            request_id=request_id,
            workflow_id=wf_id,
            run_id=desc.run_id,
            execution_status=ended.execution_status,
            actor=actor,
            reason=reason,
            closed_at=desc.close_time,
            seq=seq,
        )

    async def _who_ended(
        self, wf_id: str, run_id: str, status: WorkflowExecutionStatus
    ) -> tuple[str, str | None, str | None]:
        """(actor, identity, reason) of a run's end, from its history."""
        handle = self._client.get_workflow_handle(wf_id, run_id=run_id)
        if status == WorkflowExecutionStatus.CANCELED:
            # The canceled event carries no identity; the cancel request does.
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                    req = event.workflow_execution_cancel_requested_event_attributes
                    return req.identity or "unknown", req.identity or None, req.cause or None
            return SYSTEM, None, None
        async for event in handle.fetch_history_events(
            event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
        ):
            if event.HasField("workflow_execution_terminated_event_attributes"):
                term = event.workflow_execution_terminated_event_attributes
                return term.identity or "unknown", term.identity or None, term.reason or None
            if event.HasField("workflow_execution_failed_event_attributes"):
                failure = event.workflow_execution_failed_event_attributes.failure
                return SYSTEM, None, failure.message or None
            if event.HasField("workflow_execution_timed_out_event_attributes"):
                return SYSTEM, None, "workflow execution timed out"
        return SYSTEM, None, None


@dataclass(frozen=True)
class Ended:
    """How one workflow run ended, as Temporal recorded it."""

    workflow_id: str
    run_id: str
    execution_status: str
    actor: str
    identity: str | None
    reason: str | None
    closed_at: datetime

    def data(self) -> dict[str, Any]:
        return {
            "execution_status": self.execution_status,
            "reason": self.reason,
            "closed_at": self.closed_at.isoformat(),
            "identity": self.identity,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
        }


async def record_terminated(session: AsyncSession, request_id: str, ended: Ended) -> int | None:
    """Record one request as terminated; the event's seq, or None if nothing was written.

    The request row is locked first, so two passes (the schedule and the CLI)
    serialise and the second finds the request closed. A request the
    read-model already shows closed (any terminal status, or ``closed_at`` set,
    e.g. an approval that ended the process just before the terminate) is left
    alone. The event takes the next sequence number after everything
    recorded; if a transition the workflow sent just before it ended lands
    there at the same moment, the insert finds that row and this request is
    left for the next pass.
    """
    row = await session.scalar(
        select(RequestRow).where(RequestRow.id == request_id).with_for_update()
    )
    if row is None or row.status in TERMINAL or row.closed_at is not None:
        return None
    last = await session.scalar(
        select(func.max(EventRow.seq)).where(EventRow.request_id == request_id)
    )
    seq = max(row.last_seq, last or 0) + 1
    inserted = await session.scalar(
        insert(EventRow)
        .values(
            request_id=request_id,
            seq=seq,
            at=ended.closed_at,
            actor=ended.actor[:ACTOR_MAX],
            kind=str(EventKind.TERMINATED),
            comment=ended.reason,
            data=ended.data(),
        )
        .on_conflict_do_nothing(index_elements=[EventRow.request_id, EventRow.seq])
        .returning(EventRow.id)
    )
    if inserted is None:
        return None
    await session.execute(
        update(RequestRow)
        .where(RequestRow.id == request_id)
        .values(
            status=Status.TERMINATED.value,
            closed_at=ended.closed_at,
            current_approvers=[],
            last_seq=seq,
            view=_closed_view(row.view, ended.closed_at),
            # Nothing is retrying any more: the workflow is gone.
            stuck_since=None,
            stuck_reason=None,
        )
    )
    await session.execute(
        update(AssignmentRow)
        .where(AssignmentRow.request_id == request_id, AssignmentRow.pending.is_(True))
        .values(pending=False)
    )
    # As the closed view: an open step is closed, undecided (the SLA report reads these).
    await session.execute(
        update(RequestStepRow)
        .where(RequestStepRow.request_id == request_id, RequestStepRow.status == "active")
        .values(status=StageStatus.CLOSED.value)
    )
    await session.execute(
        insert(NotificationRow)
        .values(
            request_id=request_id,
            recipient=row.requester,
            channel="inbox",
            template=NOTICE_TEMPLATE,
            payload={
                "request_id": request_id,
                "title": row.title,
                "execution_status": ended.execution_status,
                "reason": ended.reason,
            },
            # The workflow's scheme: request, transition seq, template, recipient.
            dedupe_key=f"{request_id}:{seq}:{NOTICE_TEMPLATE}:{row.requester}",
            status="pending",
        )
        .on_conflict_do_nothing(index_elements=[NotificationRow.dedupe_key])
    )
    await wake_deliverers(session)
    return seq


def _closed_view(view: dict[str, Any] | None, closed_at: datetime) -> dict[str, Any] | None:
    """The workflow's last snapshot, closed: the API's request view reads this."""
    if view is None:
        return None  # the workflow never wrote one; the API builds the view from the row
    closed = RequestView.model_validate(view)
    closed.status = Status.TERMINATED.value
    closed.closed_at = closed_at
    closed.current_approvers = []
    for stage in closed.stages:
        if stage.status is StageStatus.ACTIVE:
            stage.status = StageStatus.CLOSED
    closed.milestones = [
        m.model_copy(update={"status": MilestoneStatus.CLOSED})
        if m.status is MilestoneStatus.OPEN
        else m
        for m in closed.milestones
    ]
    return closed.model_dump(mode="json")
