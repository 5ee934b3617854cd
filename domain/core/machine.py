"""The approval process as a state machine: (state, input) → (state, effects).

:class:`Process` holds the internal state of one request. Its inputs are a
message (decide, transfer, resubmit, withdraw, milestone), a hint that the
directory changed, or a deadline; each input is a :data:`~domain.core.effects.Step`
that yields effects as data (write this transition, ask the directory, check
this proof, pay out) and is resumed with their results. Nothing here imports
Temporal, a database or the clock (the clock is a function passed in), so every
rule runs in a unit test in microseconds, and the workflow is a shell that feeds
inputs in and carries effects out.

The rules themselves live in :mod:`domain.core.review` (the stages) and
:mod:`domain.core.aftercare` (what follows an approval); this module keeps the
state, the admission of messages and the bookkeeping every transition shares.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from domain import signing
from domain.constants import Activities, Updates
from domain.durations import Span
from domain.errors import DomainError, ErrorCode
from domain.policy import ApproverSpec, Policy, StageMode
from domain.process import (
    SYSTEM,
    AppliedUpdate,
    ApprovalInput,
    Carried,
    DecideInput,
    DirectoryChangedInput,
    DueKind,
    DueNote,
    EventKind,
    HistoryEvent,
    MilestoneInput,
    Notice,
    ProcessState,
    RequestView,
    ResolveAssigneesInput,
    ResolveAssigneesOutput,
    ResubmitInput,
    Slot,
    Status,
    TransferInput,
    VerifyProofInput,
    VerifyProofOutput,
    WithdrawInput,
    stages_of,
)
from domain.working_time import Due, DueInput, clock_start

from . import admission, aftercare, review
from .deadlines import Deadline, DeadlineKind, next_deadline
from .effects import LookUp, Step, Verify, Write
from .queries import current_approvers

Message = DecideInput | ResubmitInput | WithdrawInput | TransferInput | MilestoneInput

MESSAGE_NAMES: dict[type, str] = {
    DecideInput: Updates.DECIDE,
    ResubmitInput: Updates.RESUBMIT,
    WithdrawInput: Updates.WITHDRAW,
    TransferInput: Updates.TRANSFER,
    MilestoneInput: Updates.RECORD_MILESTONE,
}
"""The name a message's proof is signed for: the update's, for its signal too."""

OUTCOMES = frozenset(
    {
        EventKind.REQUEST_APPROVED,
        EventKind.REJECTED,
        EventKind.WITHDRAWN,
        EventKind.LAPSED,
        EventKind.EXPIRED,
        EventKind.COMPLETED,
        EventKind.SETTLED,
    }
)
"""Transitions the people copied (CC) are told of."""

MAX_NONCES = 2000
UNKNOWN_SENDER = "(unreadable)"
"""The actor of an ignored signal whose payload could not be read (not a valid user id)."""
MAX_APPLIED = 500
"""Update ids remembered across continue-as-new (the most recent ones)."""
KEEP_EVENTS_ON_CONTINUE = 50

_R = TypeVar("_R", bound=BaseModel)


class Process:
    """One request's process state and the steps that change it.

    Args:
        inp: the workflow's input: the request, its policy snapshot and route,
            and (after continue-as-new) the state carried over.
        clock: the current instant; the workflow passes ``workflow.now``.
    """

    def __init__(self, inp: ApprovalInput, clock: Callable[[], datetime]) -> None:
        self.input = inp
        self.policy: Policy = inp.policy
        self.now = clock
        self.finished = False
        self.continue_requested = False
        self.operator: str | None = None  # who vouches for the message in hand (operators)
        self.nonces: dict[str, datetime] = {}
        self.applied: dict[str, AppliedUpdate] = {}
        if inp.carried is not None:
            self.view = inp.carried.view
            self.seq = inp.carried.seq
            self.resolve_fired = inp.carried.resolve_fired
            self.nonces = dict(inp.carried.nonces)
            self.applied = dict(inp.carried.applied)
            self.resumed = True
        else:
            self.view = ProcessState(
                id=inp.request_id,
                type=inp.policy.type,
                title=inp.title,
                requester=inp.requester,
                customer=inp.customer,
                amount=inp.amount,
                fields=inp.fields,
                comment=inp.comment,
                policy_type=inp.policy.type,
                policy_version=inp.policy.version,
                status=Status.IN_REVIEW,
                stages=stages_of(inp.route),
                milestones=[],
                submitted_at=clock(),
            )
            self.seq = 0
            self.resolve_fired = False
            self.resumed = False

    # ------------------------------------------------------------ inputs

    def submit(self) -> Step[None]:
        """The request arrives: record it, copy people in, open the first stage."""
        yield from review.submit(self)

    def check(self, msg: Message) -> None:
        """Refuse ``msg`` when it is not allowed now.

        Raises:
            DomainError: with the code the API maps to its status.
        """
        admission.check(self.view, self.policy, self.finished, msg)

    def handle(self, msg: Message, from_signal: bool) -> Step[DomainError | None]:
        """Admit and apply one message; returns the refusal, if any.

        A refused signal is recorded as ``ignored`` (nobody waits for its
        answer); a refused update's caller gets the refusal. A message nobody
        vouches for is recorded either way.
        """
        try:
            self.check(msg)
        except DomainError as err:
            if from_signal:
                yield from self.ignore(msg, err, from_signal)
            return err
        unproven = yield from self._unproven(msg)
        if unproven is not None:
            refusal = DomainError(ErrorCode.UNAUTHENTICATED, unproven)
            yield from self.ignore(msg, refusal, from_signal)
            return refusal
        self.operator = msg.proof.operator if msg.proof and msg.proof.by == "operator" else None
        try:
            yield from review.apply(self, msg)
        finally:
            self.operator = None
        return None

    def refuse_closed(self, msg: Message, from_signal: bool) -> Step[DomainError]:
        """A message that arrived after the request closed."""
        err = DomainError(ErrorCode.INVALID_STATE, "the request is closed")
        if from_signal:
            yield from self.ignore(msg, err, from_signal)
        return err

    def directory_changed(self, hint: DirectoryChangedInput) -> Step[None]:
        """Someone may have left: the directory itself says who (the hint proves nothing)."""
        if not self.finished:
            yield from review.reassign_departed(self)

    def next_deadline(self) -> Deadline | None:
        """The earliest deadline of the current state (timers as data)."""
        return next_deadline(self.view, self.policy, self.resolve_fired)

    def on_deadline(self, kind: DeadlineKind) -> Step[None]:
        """A deadline of :meth:`next_deadline` has come."""
        handlers: dict[DeadlineKind, Callable[[Process], Step[None]]] = {
            DeadlineKind.REPLY: review.on_reply_due,
            DeadlineKind.RESOLVE: review.on_resolve_due,
            DeadlineKind.RESUBMIT: review.on_resubmit_due,
            DeadlineKind.PAYOUT_WINDOW: aftercare.on_payout_window,
            DeadlineKind.REVIEW: aftercare.on_review_due,
            DeadlineKind.WATCH_STEP: aftercare.on_watch_step,
            DeadlineKind.WATCH_REVIEW: aftercare.on_watch_review,
            DeadlineKind.MILESTONE_REMINDER: aftercare.on_milestone_reminder,
            DeadlineKind.MILESTONE_DUE: aftercare.on_milestone_due,
        }
        yield from handlers[kind](self)

    def carry(self) -> ApprovalInput:
        """The input of the next run (continue-as-new): the state, a short history."""
        view = self.view.model_copy(
            update={"history": self.view.history[-KEEP_EVENTS_ON_CONTINUE:]}
        )
        return self.input.model_copy(
            update={
                "carried": Carried(
                    view=view,
                    seq=self.seq,
                    resolve_fired=self.resolve_fired,
                    nonces=self.nonces,
                    applied=self.applied,
                )
            }
        )

    def handled(self, update_id: str) -> AppliedUpdate | None:
        """How the update with this id ended, if this process (any run) handled it."""
        return self.applied.get(update_id)

    def remember(self, update_id: str, refusal: DomainError | None) -> None:
        """Record how an update ended, so that the same id is answered alike later."""
        self.applied.pop(update_id, None)  # the latest outcome goes last
        self.applied[update_id] = AppliedUpdate(
            at=self.now(),
            code=refusal.code.value if refusal is not None else None,
            message=refusal.message if refusal is not None else None,
        )
        if len(self.applied) > MAX_APPLIED:
            # dicts keep insertion order: the oldest go first.
            for stale in list(self.applied)[: len(self.applied) - MAX_APPLIED]:
                del self.applied[stale]

    # ------------------------------------------------------- bookkeeping

    def close(self, status: Status) -> None:
        self.view.status = status
        self.view.closed_at = self.now()
        self.finished = True

    def notice(self, recipient: str, template: str, **payload: Any) -> Notice:
        """A notice for the next transition; :meth:`record` gives it its dedupe key."""
        return Notice(
            recipient=recipient,
            template=template,
            payload={"request_id": self.view.id, "title": self.view.title, **payload},
            dedupe_key="",
        )

    def record(
        self,
        kind: EventKind,
        actor: str,
        comment: str | None,
        data: dict[str, Any] | None = None,
        *,
        notices: list[Notice] | None = None,
        on_behalf_of: str | None = None,
    ) -> Step[None]:
        """One transition: the audit event, its notices and the state after it, written."""
        if self.operator is not None and actor != SYSTEM:
            data = {**(data or {}), "operator": self.operator}
        if kind in OUTCOMES and self.view.cc:
            notices = [
                *(notices or []),
                *(self.notice(u, "cc_outcome", outcome=kind.value) for u in self.view.cc),
            ]
        self.seq += 1
        # Keyed by the transition's sequence number: unique per transition, and
        # stable across retries of its activity.
        keyed = [
            n.model_copy(
                update={"dedupe_key": f"{self.view.id}:{self.seq}:{n.template}:{n.recipient}"}
            )
            for n in notices or []
        ]
        self.view.current_approvers = current_approvers(self.view)
        event = HistoryEvent(
            seq=self.seq,
            at=self.now(),
            kind=kind,
            actor=actor,
            on_behalf_of=on_behalf_of,
            comment=comment,
            data=data or {},
        )
        self.view.history.append(event)
        yield Write(event, keyed)

    def snapshot(self) -> RequestView:
        """The read-model as the process stands: the public view, without history."""
        return self.view.public(history=False)

    def ignore(self, msg: Message, err: DomainError, from_signal: bool) -> Step[None]:
        """Record a refused message: who tried what, and why it was refused."""
        yield from self.record(
            EventKind.IGNORED,
            actor=msg.actor,
            comment=msg.comment,
            data={
                "signal" if from_signal else "update": type(msg).__name__,
                "reason": err.message,
                "code": err.code.value,
            },
        )

    def ignore_unreadable(self, signal: str, problem: str) -> Step[None]:
        """Record a signal whose payload could not be read: nobody is named, nothing changes.

        Its sender is unknown (the actor is part of what could not be read), so the row
        names :data:`UNKNOWN_SENDER`, which no directory user can be.
        """
        if self.finished:
            return
        yield from self.record(
            EventKind.IGNORED,
            actor=UNKNOWN_SENDER,
            comment=None,
            data={"signal": signal, "reason": problem, "code": ErrorCode.VALIDATION.value},
        )

    def look_up(
        self, activity: str, arg: BaseModel, result_type: type[_R], summary: str
    ) -> Step[_R]:
        out = yield LookUp(activity, arg, result_type, summary)
        assert isinstance(out, result_type)
        return out

    def resolve_slots(
        self, key: str, mode: StageMode, approvers: tuple[ApproverSpec, ...], summary: str
    ) -> Step[list[Slot]]:
        """Who the directory names for ``approvers`` now (the requester never among them)."""
        out = yield from self.look_up(
            Activities.RESOLVE_ASSIGNEES,
            ResolveAssigneesInput(
                request_id=self.view.id,
                requester=self.view.requester,
                stage_key=key,
                mode=mode,
                approvers=approvers,
                at=self.now(),
            ),
            ResolveAssigneesOutput,
            summary,
        )
        return out.slots

    def due(self, kind: DueKind, start: datetime, span: timedelta) -> Step[datetime]:
        """When a deadline of ``span`` from ``start`` falls.

        Calendar time is plain arithmetic (no effect, so no command: the histories of
        calendar-time requests are unchanged). Working time is asked of the business
        calendar through a look-up whose answer the history records, so a calendar
        updated later never changes this request's replay; the note says how it was
        counted (and whether provisionally) for the API, the inbox and the notices.
        """
        if not (isinstance(span, Span) and span.working):
            self.view.working_time.pop(kind, None)
            return start + span
        out = yield from self.look_up(
            Activities.DUE_AT,
            DueInput(start=clock_start(start, span), span=span),
            Due,
            f"{kind} due: {span.describe()}",
        )
        self.view.working_time[kind] = DueNote(
            at=out.at, span=span.describe(), provisional=out.provisional
        )
        return out.at

    def due_facts(self, kind: DueKind, at: datetime | None) -> dict[str, Any]:
        """What a notice says of a deadline: its instant and how it was counted."""
        if at is None:
            return {}
        note = self.view.working_time.get(kind)
        if note is None or note.at != at:
            return {"due": at.isoformat()}
        return {"due": at.isoformat(), "working_time": note.span, "provisional": note.provisional}

    def people(self, key: str, approvers: tuple[ApproverSpec, ...]) -> Step[list[str]]:
        """Everyone ``approvers`` names today; the requester only where named as such."""
        v = self.view
        named = {v.requester} if any(a.requester for a in approvers) else set()
        others = tuple(a for a in approvers if not a.requester)
        if not others:
            return sorted(named)
        slots = yield from self.resolve_slots(key, StageMode.ANY, others, f"who is {key}")
        return sorted(named | {a.user for s in slots for a in s.actors})

    # ---------------------------------------------------------- identity

    def _unproven(self, msg: Message) -> Step[str | None]:
        """Why nobody vouches for ``msg.actor``, or None when a valid, fresh proof does."""
        proof = msg.proof
        if proof is not None and proof.nonce in self.nonces:
            return "the message's proof was already used"
        out = yield Verify(
            VerifyProofInput(
                request_id=self.view.id,
                message=MESSAGE_NAMES[type(msg)],
                payload=signing.payload_of(msg),
                proof=proof,
            )
        )
        assert isinstance(out, VerifyProofOutput)
        if out.reason is None and proof is not None:
            self._remember_nonce(proof.nonce, proof.issued_at)
        return out.reason

    def _remember_nonce(self, nonce: str, issued_at: datetime) -> None:
        horizon = self.now() - signing.MAX_AGE - signing.CLOCK_SKEW
        kept = {n: at for n, at in self.nonces.items() if at >= horizon}
        kept[nonce] = issued_at
        # Bounded: the oldest go first (their proofs expire first anyway).
        newest = sorted(kept.items(), key=lambda item: item[1])[-MAX_NONCES:]
        self.nonces = dict(newest)


__all__ = ["MESSAGE_NAMES", "Message", "Process"]
