"""The approval workflow's side effects: directory look-ups and the read-model/audit write.

Every activity here is idempotent. ``record_transition`` is keyed on
``(request_id, event.seq)``: a retry after a lost acknowledgement finds its
event row already written and writes nothing else.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from common.metrics import count_transitions
from db import directory, request_queries
from db import read_model as rows
from db.deliveries import wake_deliverers
from db.engine import transaction
from db.models import NotificationRow, PayoutRow, RequestRow
from domain import signing
from domain.constants import Activities
from domain.core.additions import addable_refusals
from domain.process import (
    AddableInput,
    AddableOutput,
    DelegatesInput,
    DelegatesOutput,
    EscalationInput,
    EscalationOutput,
    InactiveUsersInput,
    InactiveUsersOutput,
    MarkStuckInput,
    Notice,
    PayoutInput,
    PayoutOutput,
    PayoutStatus,
    ReadersInput,
    ReadersOutput,
    RequestView,
    ResolveAssigneesInput,
    ResolveAssigneesOutput,
    TransitionBatch,
    TransitionRecord,
    VerifyProofInput,
    VerifyProofOutput,
)

_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
_INSERT_NOTICES = (
    insert(_NOTIFICATIONS)
    .on_conflict_do_nothing(index_elements=[_NOTIFICATIONS.c.dedupe_key])
    .returning(_NOTIFICATIONS.c.recipient, _NOTIFICATIONS.c.template)
)


class ApprovalActivities:
    """Activities with an injected session factory and signing secret (the worker builds them)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], signing_secret: str) -> None:
        self._sessions = sessions
        self._signing_secret = signing_secret

    @activity.defn(name=Activities.VERIFY_PROOF)
    async def verify_proof(self, input: VerifyProofInput) -> VerifyProofOutput:
        """Does the message's proof vouch for its actor? (Run as a local activity.)

        The answer is recorded in the workflow's history, so a replay never needs
        the secret and a rotated secret never changes a running request's past.
        """
        reason = signing.check(
            self._signing_secret,
            input.request_id,
            input.message,
            input.payload,
            input.proof,
            datetime.now(UTC),
        )
        if reason is not None:
            activity.logger.warning(
                "unproven %s message for request %s: %s", input.message, input.request_id, reason
            )
        return VerifyProofOutput(reason=reason)

    @activity.defn(name=Activities.MARK_STUCK)
    async def mark_stuck(self, input: MarkStuckInput) -> None:
        """Flag the read-model: a transition of this request cannot be written yet.

        A small update of its own, so it succeeds where the transition's data fails.
        """
        async with transaction(self._sessions) as session:
            await session.execute(
                update(RequestRow)
                .where(RequestRow.id == input.request_id)
                .values(stuck_since=input.stuck.since, stuck_reason=input.stuck.reason[:2000])
            )
        activity.logger.error(
            "request %s is stuck since %s: %s",
            input.request_id,
            input.stuck.since.isoformat(),
            input.stuck.reason,
        )

    @activity.defn(name=Activities.INACTIVE_USERS)
    async def inactive_users(self, input: InactiveUsersInput) -> InactiveUsersOutput:
        """Which of these users the directory does not (or no longer) know as active."""
        async with self._sessions() as session:
            active = await directory.active_among(session, input.users)
        return InactiveUsersOutput(inactive=sorted(set(input.users) - active))

    @activity.defn(name=Activities.ACTIVE_DELEGATES)
    async def active_delegates(self, input: DelegatesInput) -> DelegatesOutput:
        """Whom each principal delegates to at ``at`` for the request type (read-only)."""
        async with self._sessions() as session:
            found = await directory.active_delegations(
                session, input.at, input.request_type, input.principals
            )
        delegates: dict[str, list[str]] = {}
        for d in found:
            delegates.setdefault(d.from_user, []).append(d.to_user)
        return DelegatesOutput(delegates=delegates)

    @activity.defn(name=Activities.READERS)
    async def readers(self, input: ReadersInput) -> ReadersOutput:
        """Which of these users may not read the request (a comment may not mention them)."""
        async with self._sessions() as session:
            refused = await request_queries.unreadable_among(session, input.request_id, input.users)
        return ReadersOutput(unreadable=refused)

    @activity.defn(name=Activities.ADDABLE_PEOPLE)
    async def addable_people(self, input: AddableInput) -> AddableOutput:
        """Which of these users ``adder`` may not add to a stage (加签), and why."""
        async with self._sessions() as session:
            active = await directory.active_among(session, input.users)
            chains: dict[str, list[str]] = {}
            if input.within == "reporting_line":
                for user in sorted({input.adder, *input.users}):
                    chains[user] = await directory.manager_chain(session, user)
        return AddableOutput(
            refused=addable_refusals(input.adder, input.users, input.within, active, chains)
        )

    @activity.defn(name=Activities.EXECUTE_PAYOUT)
    async def execute_payout(self, input: PayoutInput) -> PayoutOutput:
        """Instruct finance to pay, once per idempotency key; a retry returns the same reference."""
        reference = "PO-" + hashlib.sha256(input.idempotency_key.encode()).hexdigest()[:16].upper()
        async with transaction(self._sessions) as session:
            await session.execute(
                insert(PayoutRow)
                .values(
                    request_id=input.request_id,
                    idempotency_key=input.idempotency_key,
                    reference=reference,
                    amount=input.amount,
                    beneficiary=input.beneficiary,
                    method=input.method,
                    status=PayoutStatus.INSTRUCTED,
                )
                .on_conflict_do_nothing(index_elements=[PayoutRow.idempotency_key])
            )
            stored = await session.scalar(
                select(PayoutRow.reference).where(
                    PayoutRow.idempotency_key == input.idempotency_key
                )
            )
        assert stored is not None
        activity.logger.info("payout %s instructed for request %s", stored, input.request_id)
        return PayoutOutput(reference=stored)

    @activity.defn(name=Activities.RESOLVE_ASSIGNEES)
    async def resolve_assignees(self, input: ResolveAssigneesInput) -> ResolveAssigneesOutput:
        """Who may decide a stage that becomes active now (read-only)."""
        async with self._sessions() as session:
            slots = await directory.resolve_slots(
                session, input.requester, input.mode, input.approvers, input.at, input.request_type
            )
            detail = (
                await directory.resolve_detail(
                    session,
                    input.requester,
                    input.mode,
                    input.approvers,
                    input.at,
                    input.fallback_role,
                    input.request_type,
                )
                if input.detail
                else None
            )
        return ResolveAssigneesOutput(slots=slots, detail=detail)

    @activity.defn(name=Activities.RESOLVE_ESCALATION)
    async def resolve_escalation(self, input: EscalationInput) -> EscalationOutput:
        """Who is next up from each user (read-only); see :func:`db.directory.next_up`."""
        async with self._sessions() as session:
            next_up = await directory.next_up(
                session, input.users, input.requester, input.escalation_role
            )
        return EscalationOutput(next_up=next_up)

    @activity.defn(name=Activities.RECORD_TRANSITION)
    async def record_transition(self, record: TransitionRecord) -> None:
        """Write one transition: audit event, read-model, assignments, notices.

        One transaction, idempotent on ``(request_id, event.seq)``. A transition
        older than the one the read-model already shows (a late retry) still
        gets its audit row and notices, but never rolls the read-model back.
        """
        async with transaction(self._sessions) as session:
            written = await _write_transition(session, record)
        count_transitions(written)

    @activity.defn(name=Activities.RECORD_TRANSITIONS)
    async def record_transitions(self, batch: TransitionBatch) -> None:
        """Write the transitions of one message, in order, in one transaction.

        Idempotent on ``(request_id, event.seq)`` as :meth:`record_transition`: a
        retried batch writes only the events (and their notices) that are missing,
        and never moves the read-model back. A handful of statements whatever the
        batch's size: the read-model row, every event, the inbox, every notice.
        """
        written: list[str] = []
        async with transaction(self._sessions) as session:
            if batch.view is None:  # a batch from a worker that sent a view per record
                last = len(batch.records) - 1
                for i, record in enumerate(batch.records):
                    written += await _write_transition(session, record, read_model=i == last)
            else:
                written = await _write_batch(session, batch.view, batch.records)
        count_transitions(written)


async def _write_batch(
    session: AsyncSession, view: RequestView, records: list[TransitionRecord]
) -> list[str]:
    """The transitions of ``records`` and the read-model ``view`` they lead to.

    Returns the kinds of the events written (not those a retry found already there).
    """
    last = records[-1].event
    # The row first (events refer to it); moved forward only, as in _write_transition.
    moved = await rows.update_request(session, view, last)
    created = not moved and await rows.insert_request_if_missing(session, view, last)
    written = set(
        (
            await session.execute(
                rows.INSERT_EVENTS,
                [rows.event_values(view.id, r.event) for r in records],
            )
        ).scalars()
    )
    replaced = set(
        await rows.replace_unrecorded(
            session, view.id, [r.event for r in records if r.event.seq not in written]
        )
    )
    if not written and not replaced:
        activity.logger.info(
            "transitions %s #%d-%d already recorded; nothing to do",
            view.id,
            records[0].event.seq,
            last.seq,
        )
        return []
    if replaced:
        _log_replaced(view.id, sorted(replaced))
        moved = moved or await rows.rewrite_request(session, view, last)
    if moved or created:
        await rows.rewrite_derived(session, view, last.at)
    await _insert_notices(
        session,
        view.id,
        [n for r in records if r.event.seq in written | replaced for n in r.notices],
    )
    return [str(r.event.kind) for r in records if r.event.seq in written]


async def _write_transition(
    session: AsyncSession, record: TransitionRecord, *, read_model: bool = True
) -> list[str]:
    """Audit event and notices of one transition, and (``read_model``) the row and inbox.

    Returns the kind of the event, or nothing when a retry found it already written.

    In a batch only the last transition moves the read-model: its snapshot is the
    state after all of them, and assignment rows are never deleted, so nothing an
    earlier snapshot would have written is lost.
    """
    view, event = record.view, record.event
    if view is None:
        raise ValueError(f"transition #{event.seq} carries no view to write")
    created = await rows.insert_request_if_missing(session, view, event)
    new_event = (
        await session.execute(rows.INSERT_EVENTS, [rows.event_values(view.id, event)])
    ).first()
    if new_event is None:
        if not await rows.replace_unrecorded(session, view.id, [event]):
            activity.logger.info(
                "transition %s #%d already recorded; nothing to do", view.id, event.seq
            )
            return []
        _log_replaced(view.id, [event.seq])
        if read_model and await rows.rewrite_request(session, view, event):
            await rows.rewrite_derived(session, view, event.at)
        await _insert_notices(session, view.id, record.notices)
        return []
    if created or (read_model and await rows.update_request(session, view, event)):
        await rows.rewrite_derived(session, view, event.at)
    await _insert_notices(session, view.id, record.notices)
    return [str(event.kind)]


def _log_replaced(request_id: str, seqs: list[int]) -> None:
    activity.logger.warning(
        "transitions %s #%s were written by a workflow task Temporal never recorded "
        "(its worker stopped before the task completed); corrected to the recorded ones",
        request_id,
        ", ".join(map(str, seqs)),
    )


async def _insert_notices(session: AsyncSession, request_id: str, notices: list[Notice]) -> None:
    """The notices, each once (keyed on its dedupe key): one statement for them all."""
    if not notices:
        return
    inserted = await session.execute(
        _INSERT_NOTICES,
        [
            {
                "request_id": request_id,
                "recipient": n.recipient,
                "channel": "inbox",
                "template": n.template,
                "payload": n.model_dump(mode="json")["payload"],
                "dedupe_key": n.dedupe_key,
                "status": "pending",
            }
            for n in notices
        ],
    )
    for recipient, template in inserted:
        activity.logger.info("notice for %s: %s (request %s)", recipient, template, request_id)
    # Delivered at commit, with the notices: the deliverer plans and sends them at once.
    await wake_deliverers(session)
