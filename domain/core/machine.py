"""The approval process as a state machine: (state, input) → (state, effects).

The state is a value (:class:`~domain.process.RequestState`); an input
(:mod:`domain.core.inputs`) is a message, a deadline, a hint that the directory
changed, or what became of a write. :func:`transition` is the one entry: it
dispatches the input to its step, a generator that yields effects as data (write
this transition, ask the directory, check this proof, pay out), is sent their
results, and returns the next state. Nothing here imports Temporal, a database or
the clock (the clock is a function in the :class:`~domain.core.steps.Context`),
so every rule runs in a unit test in microseconds, and the workflow is a shell
that feeds inputs in, carries effects out and keeps the state the core returns.

The rules themselves live in :mod:`domain.core.review` (the stages) and
:mod:`domain.core.aftercare` (what follows an approval); :mod:`domain.core.admission`
says which messages are allowed; people see the state through
:func:`domain.core.projection.view_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from domain import signing
from domain.constants import Updates
from domain.errors import DomainError, ErrorCode
from domain.policy import Policy
from domain.process import (
    AddApproversInput,
    AppliedUpdate,
    ApprovalInput,
    Carried,
    CcInput,
    CommentInput,
    DecideInput,
    EventKind,
    MarkStuckInput,
    MilestoneInput,
    ReassignInput,
    RequestState,
    ResubmitInput,
    RevokeInput,
    SendBackInput,
    Status,
    StuckState,
    TransferInput,
    UrgeInput,
    VerifyProofInput,
    VerifyProofOutput,
    WithdrawInput,
    stages_of,
)

from . import additions, admission, aftercare, delegates, discussion, handover, review, urging
from .deadlines import Deadline, DeadlineKind, next_deadline
from .effects import FlagStuck, Patched, Step, Unflag, Verify
from .inputs import (
    DeadlineReached,
    DirectoryChanged,
    Handle,
    Input,
    Message,
    Submit,
    Unreadable,
    WriteFailed,
    WriteSucceeded,
)
from .queries import handled
from .steps import Context, put, record

MESSAGE_NAMES: dict[type, str] = {
    DecideInput: Updates.DECIDE,
    ResubmitInput: Updates.RESUBMIT,
    WithdrawInput: Updates.WITHDRAW,
    TransferInput: Updates.TRANSFER,
    MilestoneInput: Updates.RECORD_MILESTONE,
    SendBackInput: Updates.SEND_BACK,
    AddApproversInput: Updates.ADD_APPROVERS,
    CcInput: Updates.ADD_CC,
    RevokeInput: Updates.REVOKE,
    UrgeInput: Updates.URGE,
    ReassignInput: Updates.REASSIGN,
    CommentInput: Updates.COMMENT,
}
"""The name a message's proof is signed for: the update's, for its signal too."""

MAX_NONCES = 2000
UNKNOWN_SENDER = "(unreadable)"
"""The actor of an ignored signal whose payload could not be read (not a valid user id)."""
MAX_APPLIED = 500
"""Update ids remembered across continue-as-new (the most recent ones)."""
KEEP_EVENTS_ON_CONTINUE = 50

CLOSED = "the request is closed"


@dataclass(frozen=True)
class Outcome:
    """The state after an input, and why the input was refused (None: it was not)."""

    state: RequestState
    refusal: DomainError | None = None


# ------------------------------------------------------------------ the state


def start(inp: ApprovalInput, now: datetime) -> RequestState:
    """The state a run starts from: the one carried over, or a request just submitted."""
    if inp.carried is not None:
        return inp.carried.state
    return RequestState(
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
        submitted_at=now,
        submitted_files=tuple(inp.attachments),
    )


def carry(inp: ApprovalInput, s: RequestState) -> ApprovalInput:
    """The input of the next run (continue-as-new): the state, a short history."""
    kept = put(s, history=s.history[-KEEP_EVENTS_ON_CONTINUE:], continue_requested=False)
    return inp.model_copy(update={"carried": Carried(state=kept)})


def deadline(s: RequestState, policy: Policy) -> Deadline | None:
    """The earliest deadline of the state (timers as data); None once closed."""
    return None if s.finished else next_deadline(s, policy)


def check(s: RequestState, policy: Policy, msg: Message, update_id: str | None = None) -> None:
    """Refuse ``msg`` when it is not allowed now (an update's validator).

    An update id handled before is let through: it is answered as it was then.

    Raises:
        DomainError: with the code the API maps to its status.
    """
    if update_id is not None and handled(s, update_id) is not None:
        return
    admission.check(s, policy, msg)


# -------------------------------------------------------------- the one entry


def transition(ctx: Context, s: RequestState, inp: Input) -> Step[Outcome]:
    """Apply one input to ``s``: the effects it takes, then the next state."""
    if isinstance(inp, Submit):
        return Outcome((yield from review.submit(ctx, s)))
    if isinstance(inp, Handle):
        return (yield from _handle(ctx, s, inp))
    if isinstance(inp, DeadlineReached):
        return Outcome((yield from _DEADLINES[inp.kind](ctx, s)))
    if isinstance(inp, WriteFailed | WriteSucceeded):
        return Outcome((yield from _written(s, inp)))
    if s.finished:
        return Outcome(s, DomainError(ErrorCode.INVALID_STATE, CLOSED))
    if isinstance(inp, DirectoryChanged):
        # Someone may have left: the directory itself says who (the hint proves nothing).
        s = yield from review.reassign_departed(ctx, s)
        # A delegation started or ended: the open step follows (asked only when named).
        return Outcome((yield from delegates.follow_delegations(ctx, s, inp.hint.delegators)))
    return Outcome((yield from _ignore_unreadable(ctx, s, inp)))


_DEADLINES: dict[DeadlineKind, Callable[[Context, RequestState], Step[RequestState]]] = {
    DeadlineKind.REPLY: review.on_reply_due,
    DeadlineKind.RESOLVE: review.on_resolve_due,
    DeadlineKind.RESUBMIT: review.on_resubmit_due,
    DeadlineKind.PAYOUT_WINDOW: aftercare.on_payout_window,
    DeadlineKind.REVIEW: review.on_review_due,
    DeadlineKind.WATCH_STEP: aftercare.on_watch_step,
    DeadlineKind.WATCH_REVIEW: review.on_watch_review,
    DeadlineKind.MILESTONE_REMINDER: aftercare.on_milestone_reminder,
    DeadlineKind.MILESTONE_DUE: aftercare.on_milestone_due,
    DeadlineKind.REVOKE_WINDOW: aftercare.on_revoke_window,
}


# ---------------------------------------------------------------- messages


def _handle(ctx: Context, s: RequestState, inp: Handle) -> Step[Outcome]:
    """Admit and apply one message; an update's outcome is remembered under its id.

    A refused signal is recorded as ``ignored`` (nobody waits for its answer); a
    refused update's caller gets the refusal. A message nobody vouches for is
    recorded either way.
    """
    msg = inp.message
    # Asked only of such a message: a request whose history refused one refuses it again.
    in_turn_alongside = not admission.is_in_turn_alongside(msg) or (
        yield Patched(admission.IN_TURN_ALONGSIDE)
    )
    refusal = _admission(s, ctx.policy, msg, ctx.now(), in_turn_alongside=in_turn_alongside)
    if refusal is not None:
        if inp.from_signal:
            s = yield from _ignore(ctx, s, msg, refusal, inp.from_signal)
    else:
        s, unproven = yield from _unproven(ctx, s, msg)
        if unproven is not None:
            refusal = DomainError(ErrorCode.UNAUTHENTICATED, unproven)
            s = yield from _ignore(ctx, s, msg, refusal, inp.from_signal)
        else:
            operator = msg.proof.operator if msg.proof and msg.proof.by == "operator" else None
            s, refusal = yield from _apply(ctx, s, msg, operator)
            if refusal is not None and inp.from_signal:
                s = yield from _ignore(ctx, s, msg, refusal, inp.from_signal)
    if inp.update_id is not None:
        s = remember(s, inp.update_id, refusal, ctx.now())
    return Outcome(s, refusal)


def _admission(
    s: RequestState, policy: Policy, msg: Message, now: datetime, *, in_turn_alongside: bool
) -> DomainError | None:
    if s.finished:
        return DomainError(ErrorCode.INVALID_STATE, CLOSED)
    try:
        admission.check(s, policy, msg, now, in_turn_alongside=in_turn_alongside)
    except DomainError as err:
        return err
    return None


def _apply(
    ctx: Context, s: RequestState, msg: Message, operator: str | None
) -> Step[tuple[RequestState, DomainError | None]]:
    """Apply an admitted message; a step that asks the directory may still refuse it."""
    if isinstance(msg, DecideInput):
        return (yield from review.decide(ctx, s, msg, operator)), None
    if isinstance(msg, TransferInput):
        return (yield from review.transfer(ctx, s, msg, operator)), None
    if isinstance(msg, ResubmitInput):
        return (yield from review.resubmit(ctx, s, msg, operator)), None
    if isinstance(msg, WithdrawInput):
        return (yield from review.withdraw(ctx, s, msg, operator)), None
    if isinstance(msg, SendBackInput):
        return (yield from review.send_back(ctx, s, msg, operator)), None
    if isinstance(msg, AddApproversInput):
        return (yield from additions.add_approvers(ctx, s, msg, operator))
    if isinstance(msg, CcInput):
        return (yield from additions.add_cc(ctx, s, msg, operator))
    if isinstance(msg, RevokeInput):
        return (yield from aftercare.revoke(ctx, s, msg, operator)), None
    if isinstance(msg, UrgeInput):
        return (yield from urging.urge(ctx, s, msg, operator)), None
    if isinstance(msg, ReassignInput):
        return (yield from handover.reassign(ctx, s, msg, operator))
    if isinstance(msg, CommentInput):
        return (yield from discussion.comment(ctx, s, msg, operator))
    return (yield from aftercare.record_milestone(ctx, s, msg, operator)), None


def _ignore(
    ctx: Context, s: RequestState, msg: Message, err: DomainError, from_signal: bool
) -> Step[RequestState]:
    """Record a refused message: who tried what, and why it was refused."""
    return (
        yield from record(
            ctx,
            s,
            EventKind.IGNORED,
            actor=msg.actor,
            comment=msg.comment,
            data={
                "signal" if from_signal else "update": type(msg).__name__,
                "reason": err.message,
                "code": err.code.value,
            },
        )
    )


def _ignore_unreadable(ctx: Context, s: RequestState, inp: Unreadable) -> Step[RequestState]:
    """Record a signal whose payload could not be read: nobody is named, nothing changes.

    Its sender is unknown (the actor is part of what could not be read), so the row
    names :data:`UNKNOWN_SENDER`, which no directory user can be.
    """
    return (
        yield from record(
            ctx,
            s,
            EventKind.IGNORED,
            actor=UNKNOWN_SENDER,
            comment=None,
            data={
                "signal": inp.signal,
                "reason": inp.problem,
                "code": ErrorCode.VALIDATION.value,
            },
        )
    )


def remember(
    s: RequestState, update_id: str, refusal: DomainError | None, at: datetime
) -> RequestState:
    """``s`` remembering how an update ended, so that the same id is answered alike later."""
    applied = {k: v for k, v in s.applied.items() if k != update_id}  # the latest goes last
    applied[update_id] = AppliedUpdate(
        at=at,
        code=refusal.code.value if refusal is not None else None,
        message=refusal.message if refusal is not None else None,
    )
    # dicts keep insertion order: the oldest go first.
    return put(s, applied=dict(list(applied.items())[-MAX_APPLIED:]))


# ---------------------------------------------------------------- identity


def _unproven(ctx: Context, s: RequestState, msg: Message) -> Step[tuple[RequestState, str | None]]:
    """Why nobody vouches for ``msg.actor`` (None when a valid, fresh proof does), and
    ``s`` with that proof's nonce spent."""
    proof = msg.proof
    if proof is not None and proof.nonce in s.nonces:
        return s, "the message's proof was already used"
    out = yield Verify(
        VerifyProofInput(
            request_id=s.id,
            message=MESSAGE_NAMES[type(msg)],
            payload=signing.payload_of(msg),
            proof=proof,
        )
    )
    assert isinstance(out, VerifyProofOutput)
    if out.reason is None and proof is not None:
        horizon = ctx.now() - signing.MAX_AGE - signing.CLOCK_SKEW
        kept = {n: at for n, at in s.nonces.items() if at >= horizon}
        kept[proof.nonce] = proof.issued_at
        # Bounded: the oldest go first (their proofs expire first anyway).
        s = put(s, nonces=dict(sorted(kept.items(), key=lambda item: item[1])[-MAX_NONCES:]))
    return s, out.reason


# ------------------------------------------------------------------ writes


def _written(s: RequestState, inp: WriteFailed | WriteSucceeded) -> Step[RequestState]:
    """A write failed (the request is stuck until one succeeds), or succeeded."""
    if isinstance(inp, WriteSucceeded):
        if s.stuck is None:
            return s
        s = put(s, stuck=None)
        yield Unflag(s.id)
        return s
    since = s.stuck.since if s.stuck is not None else inp.at
    stuck = StuckState(since=since, reason=inp.reason, attempts=inp.attempts)
    s = put(s, stuck=stuck)
    yield FlagStuck(MarkStuckInput(request_id=s.id, stuck=stuck), s)
    return s


__all__ = [
    "MESSAGE_NAMES",
    "Outcome",
    "carry",
    "check",
    "deadline",
    "remember",
    "start",
    "transition",
]
