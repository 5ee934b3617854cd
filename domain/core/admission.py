"""Which messages the process accepts in its current state (validators and loop alike)."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import DomainError, ErrorCode
from domain.policy import (
    SEND_BACK_TO_REQUESTER,
    AddApprovers,
    AddMode,
    AddPosition,
    BulkDecisions,
    Policy,
    RequesterApprover,
)
from domain.process import (
    TERMINAL,
    AddApproversInput,
    CcInput,
    CommentInput,
    DecideInput,
    MilestoneInput,
    ReassignInput,
    RequestState,
    RequestView,
    ResubmitInput,
    RevokeInput,
    SendBackInput,
    StageStatus,
    Status,
    TransferInput,
    UrgeInput,
    WithdrawInput,
)
from domain.requests import validate_fields
from domain.routing import Route, resolve_route

from .discussion import check_comment
from .inputs import Message
from .queries import active_stage, current_approvers, open_milestone, pending_on, step_round

WITHDRAWABLE = (Status.IN_REVIEW, Status.RETURNED, Status.ACTIVE, Status.WATCHING)
REVOCABLE = (
    Status.APPROVED,
    Status.AWAITING,
    Status.AWAITING_PAYOUT,
    Status.ACTIVE,
    Status.COMPLETED,
)
"""Approved: what follows the approval still runs (a milestone, the payout's window), or
it is in force (a credit line), or it was carried out (every milestone met) or nothing
follows, and the request is kept open for its revoke window. A payout made is never
revoked (checked before the status)."""


def _refuse(code: ErrorCode, message: str, **details: Any) -> DomainError:
    return DomainError(code, message, details)


def check(
    view: RequestState,
    policy: Policy,
    msg: Message,
    now: datetime | None = None,
    *,
    in_turn_alongside: bool = True,
) -> None:
    """Refuse ``msg`` when it is not allowed now (``now``: for rules with a time window;
    a validator without it leaves the window to the process, which checks it again).
    ``in_turn_alongside``: False while replaying a history made when people added
    alongside in turn were refused (see :data:`IN_TURN_ALONGSIDE`).

    Raises:
        DomainError: with the code the API maps to its status (409, 403, 422, 503).
    """
    if isinstance(msg, RevokeInput):
        check_revoke(view, policy, msg, now)
        return
    if view.finished or view.status in TERMINAL:
        raise _refuse(ErrorCode.INVALID_STATE, f"the request is {view.label}: no more actions")
    if view.stuck is not None:
        raise _refuse(
            ErrorCode.UNAVAILABLE,
            "the request cannot record changes right now "
            f"({view.stuck.reason}); it resumes by itself once the cause is fixed",
        )
    if isinstance(msg, DecideInput):
        check_may_decide(view, msg.actor)
        if msg.round_since is not None and step_round(view, msg.actor) != msg.round_since:
            raise _refuse(
                ErrorCode.ROUND_ENDED,
                f"the step this decision was made for no longer waits for {msg.actor}: "
                "the request was returned, resubmitted or handed on since; "
                "look at it again and decide on what it says now",
            )
        check_version_seen(view, msg)
        if msg.bulk:
            check_may_bulk(view, policy)
    elif isinstance(msg, TransferInput):
        check_may_decide(view, msg.actor)
        if msg.to_user == view.requester:
            raise _refuse(
                ErrorCode.VALIDATION,
                "a request cannot be transferred to its requester",
                field="to_user",
            )
        if msg.to_user == msg.actor:
            raise _refuse(ErrorCode.VALIDATION, "transfer to someone else", field="to_user")
    elif isinstance(msg, ResubmitInput):
        _check_requester(view, msg.actor, "resubmit")
        if view.status != Status.RETURNED:
            raise _refuse(
                ErrorCode.INVALID_STATE,
                f"only a returned request can be resubmitted; it is {view.label}",
            )
        resubmitted(view, policy, msg)  # raises when the new data is invalid
    elif isinstance(msg, WithdrawInput):
        _check_requester(view, msg.actor, "withdraw")
        if view.status not in WITHDRAWABLE:
            raise _refuse(
                ErrorCode.INVALID_STATE,
                f"a request can be withdrawn only before a final decision; it is {view.label}",
            )
    elif isinstance(msg, MilestoneInput):
        current = open_milestone(view)
        if current is None or current.name != msg.milestone:
            expected = current.name if current else "none"
            raise _refuse(
                ErrorCode.INVALID_STATE,
                f"milestone {msg.milestone!r} is not open (open milestone: {expected})",
            )
        if current.required is not None and msg.amount is None:
            raise _refuse(
                ErrorCode.VALIDATION, "amount is required for this milestone", field="amount"
            )
        if msg.amount is not None and msg.amount <= 0:
            raise _refuse(ErrorCode.VALIDATION, "amount must be positive", field="amount")
    elif isinstance(msg, SendBackInput):
        check_may_decide(view, msg.actor)
        if not policy.send_back.allowed:
            raise _refuse(
                ErrorCode.FORBIDDEN,
                f"requests of type {view.type!r} cannot be sent back (their policy says so); "
                "approve, reject or return it to the requester",
            )
        send_back_target(view, msg)
    elif isinstance(msg, AddApproversInput):
        check_may_add(view, policy, msg, in_turn_alongside=in_turn_alongside)
    elif isinstance(msg, CcInput):
        check_may_copy(view, msg)
    elif isinstance(msg, UrgeInput):
        check_may_urge(view, msg, now)
    elif isinstance(msg, ReassignInput):
        check_may_reassign(view, policy, msg)
    elif isinstance(msg, CommentInput):
        check_comment(msg)  # in every state while the request is open


def add_rule(policy: Policy, stage_key: str) -> AddApprovers:
    """What the policy's stage of this key says of adding people (the default if gone)."""
    spec = next((st for st in policy.stages if st.key == stage_key), None)
    return spec.add_approvers if spec is not None else AddApprovers()


IN_TURN_ALONGSIDE = "add-approvers-alongside-in-turn"
"""The change that lets people be added alongside in turn (refused before it)."""


def is_in_turn_alongside(msg: Message) -> bool:
    """People added alongside, deciding in turn: what the :data:`IN_TURN_ALONGSIDE` gate covers."""
    return (
        isinstance(msg, AddApproversInput)
        and msg.position is AddPosition.ALONGSIDE
        and msg.mode is AddMode.IN_TURN
    )


def check_may_add(
    view: RequestState, policy: Policy, msg: AddApproversInput, *, in_turn_alongside: bool = True
) -> None:
    """加签: a current approver adds people the stage's rule allows, with a reason.

    People added alongside in turn join the stage one after another, the adder's own
    step open beside them; a history made before that (``in_turn_alongside`` False)
    replays refusing them as it did then.
    """
    check_may_decide(view, msg.actor)
    stage = active_stage(view)
    assert stage is not None
    rule = add_rule(policy, stage.key)
    if not rule.allowed:
        raise _refuse(ErrorCode.FORBIDDEN, f"stage {stage.name!r} does not allow adding approvers")
    if msg.position not in rule.positions:
        allowed = ", ".join(p.value for p in rule.positions)
        raise _refuse(
            ErrorCode.VALIDATION,
            f"stage {stage.name!r} allows adding approvers only {allowed}",
            field="position",
        )
    if msg.mode not in rule.modes:
        allowed = ", ".join(m.value for m in rule.modes)
        raise _refuse(
            ErrorCode.VALIDATION,
            f"stage {stage.name!r} allows only these modes for added approvers: {allowed}",
            field="mode",
        )
    if not in_turn_alongside and is_in_turn_alongside(msg):
        raise _refuse(
            ErrorCode.VALIDATION,
            "people added alongside decide at once; to have them decide in turn, "
            "add them before or after yourself",
            field="mode",
        )
    if not (msg.comment or "").strip():
        raise _refuse(
            ErrorCode.VALIDATION, "say why you add approvers (a comment)", field="comment"
        )
    people = list(dict.fromkeys(msg.people))
    if len(people) > rule.max_people:
        raise _refuse(
            ErrorCode.VALIDATION,
            f"at most {rule.max_people} people may be added at once at stage {stage.name!r}",
            field="people",
        )
    if view.requester in people:
        raise _refuse(
            ErrorCode.VALIDATION, "the requester cannot approve their own request", field="people"
        )
    if msg.actor in people:
        raise _refuse(ErrorCode.VALIDATION, "add someone other than yourself", field="people")
    pending = sorted(set(people) & pending_on(stage))
    if pending:
        raise _refuse(
            ErrorCode.VALIDATION,
            f"already pending on stage {stage.name!r}: {', '.join(pending)}",
            field="people",
            pending=pending,
        )


def check_version_seen(view: RequestState, msg: DecideInput) -> None:
    """A decision made on a version of the request that is not its version now is refused:
    it changed since the decider saw it (never decided blind)."""
    if msg.version_seen is not None and msg.version_seen != view.seq:
        raise _refuse(
            ErrorCode.VERSION_CONFLICT,
            f"the request changed since you saw it (version {msg.version_seen}, now "
            f"{view.seq}): look at it again and decide on what it says now",
            version_seen=msg.version_seen,
            version=view.seq,
        )


def bulk_rule(policy: Policy, stage_key: str) -> BulkDecisions:
    """What the policy's stage of this key says of bulk decisions (the default if gone)."""
    spec = next((st for st in policy.stages if st.key == stage_key), None)
    return spec.bulk if spec is not None else BulkDecisions()


def check_may_bulk(view: RequestState, policy: Policy) -> None:
    """The active stage may be decided in bulk: its policy allows it, for this amount."""
    stage = active_stage(view)
    assert stage is not None  # check_may_decide came first
    rule = bulk_rule(policy, stage.key)
    if not rule.allowed:
        raise _refuse(
            ErrorCode.BULK_NOT_ALLOWED,
            f"stage {stage.name!r} is decided one request at a time (its policy forbids "
            "bulk decisions): open the request and decide it on its own",
            stage=stage.key,
            stage_name=stage.name,
        )
    limit, amount = rule.max_amount, view.amount
    if limit is not None and amount is not None and amount > limit:
        raise _refuse(
            ErrorCode.BULK_NOT_ALLOWED,
            f"stage {stage.name!r} is decided in bulk only up to {policy.amount.label} "
            f"{limit:,}; this request is for {amount:,}: open it and decide it on its own",
            stage=stage.key,
            stage_name=stage.name,
            max_amount=str(limit),
        )


def check_may_copy(view: RequestState, msg: CcInput) -> None:
    """抄送: the requester or a current approver copies in people not copied yet."""
    if msg.actor != view.requester:
        try:
            check_may_decide(view, msg.actor)
        except DomainError:
            raise _refuse(
                ErrorCode.FORBIDDEN,
                "only the requester or a current approver may copy people in",
            ) from None
    people = list(dict.fromkeys(msg.people))
    if view.requester in people:
        raise _refuse(
            ErrorCode.VALIDATION, "the requester follows their request already", field="people"
        )
    if all(u in view.cc for u in people):
        raise _refuse(ErrorCode.VALIDATION, "everyone named is copied already", field="people")


def check_may_urge(view: RequestState, msg: UrgeInput, now: datetime | None) -> None:
    """催办: the requester urges the open stage's approvers, once per round per interval.

    ``now`` None (a validator): the interval is left to the process, which checks again.

    Raises:
        DomainError: 403 for anyone but the requester; 409 with no open stage or nobody
            holding it; 429 ``too_soon`` (``next_allowed_at``, ``retry_after``) within the
            policy's interval of the last urge of the same round of the same stage.
    """
    if msg.actor != view.requester:
        raise _refuse(ErrorCode.FORBIDDEN, "only the requester may urge the approvers")
    stage = active_stage(view)
    if stage is None or view.status != Status.IN_REVIEW:
        raise _refuse(
            ErrorCode.INVALID_STATE,
            f"the request is {view.label}: no stage waits for a decision, nobody to urge",
        )
    if not current_approvers(view):
        raise _refuse(
            ErrorCode.INVALID_STATE,
            f"nobody holds stage {stage.name!r} now: there is nobody to urge",
        )
    wait = urge_wait(view, now)
    if wait is not None:
        last_at, next_at, seconds = wait
        raise _refuse(
            ErrorCode.TOO_SOON,
            f"stage {stage.name!r} was urged at {last_at:%Y-%m-%d %H:%M} UTC; "
            f"it may be urged again from {next_at:%Y-%m-%d %H:%M} UTC",
            next_allowed_at=next_at.isoformat(),
            retry_after=seconds,
        )


def urge_wait(view: RequestState, now: datetime | None) -> tuple[datetime, datetime, int] | None:
    """When the open stage was last urged, when it may be urged again and in how many
    seconds (at least 1), if not at ``now``: the last urge was of this round of this
    stage, within the interval."""
    last, stage = view.last_urge, active_stage(view)
    if now is None or last is None or stage is None:
        return None
    if last.stage != stage.index or last.round != stage.started_at or now >= last.next_at:
        return None
    return last.at, last.next_at, max(1, math.ceil((last.next_at - now).total_seconds()))


def check_may_reassign(view: RequestState, policy: Policy, msg: ReassignInput) -> None:
    """An administrator moves a pending step of the open stage from one holder to another.

    Raises:
        DomainError: 409 with no open stage; 422 naming ``from_user`` (holds nothing) or
            ``to_user`` (the same person, the requester, already holding the step).
    """
    stage = active_stage(view)
    if stage is None or view.status != Status.IN_REVIEW:
        raise _refuse(
            ErrorCode.INVALID_STATE,
            f"the request is {view.label}: no step is pending, nothing to reassign",
        )
    held = [s for s in stage.slots if s.decision is None and s.may_act(msg.from_user)]
    if not held:
        holders = sorted({a.user for s in stage.slots if s.decision is None for a in s.actors})
        raise _refuse(
            ErrorCode.VALIDATION,
            f"{msg.from_user} holds no pending step of stage {stage.name!r}"
            + (f" (held by {', '.join(holders)})" if holders else ""),
            field="from_user",
            holders=holders,
        )
    if msg.to_user == msg.from_user:
        raise _refuse(ErrorCode.VALIDATION, "reassign to someone else", field="to_user")
    if msg.to_user == view.requester and (
        policy.resolution.requester_approver is not RequesterApprover.SELF
    ):
        raise _refuse(
            ErrorCode.VALIDATION,
            "the requester cannot approve their own request",
            field="to_user",
        )
    if all(s.may_act(msg.to_user) for s in held):
        raise _refuse(
            ErrorCode.VALIDATION,
            f"{msg.to_user} already holds this step of stage {stage.name!r}",
            field="to_user",
        )


def check_revoke(
    view: RequestState, policy: Policy, msg: RevokeInput, now: datetime | None
) -> None:
    """The requester (or an administrator) may revoke an approval within the policy's window.

    Raises:
        DomainError: 409 with why not (no window, paid out, not approved, closed, window
            ended), 403 for anyone else, 503 while the request cannot record changes.
    """
    if policy.revoke is None:
        raise _refuse(ErrorCode.INVALID_STATE, not_revocable_type(policy.type))
    if msg.actor != view.requester and not msg.as_admin:
        raise _refuse(
            ErrorCode.FORBIDDEN, "only the requester or an administrator may revoke this request"
        )
    if view.payout is not None and view.payout.paid_at is not None:
        raise _refuse(ErrorCode.INVALID_STATE, paid_out_message(view.payout.reference))
    if view.finished or view.status not in REVOCABLE:
        raise _refuse(ErrorCode.INVALID_STATE, not_revocable_status(view.label))
    if view.stuck is not None:
        raise _refuse(
            ErrorCode.UNAVAILABLE,
            "the request cannot record changes right now "
            f"({view.stuck.reason}); it resumes by itself once the cause is fixed",
        )
    until = view.revocable_until
    if until is None or (now is not None and now >= until):
        ended = f" at {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
        raise _refuse(
            ErrorCode.INVALID_STATE,
            f"the revoke window of this approval ended{ended}: it can no longer be revoked",
            revocable_until=until.isoformat() if until is not None else None,
        )


def closed_revoke_refusal(view: RequestView) -> DomainError:
    """Why a request whose process has ended cannot be revoked (the API answers it: an
    update cannot reach a workflow that has ended)."""
    if view.payout is not None and view.payout.paid_at is not None:
        return _refuse(ErrorCode.INVALID_STATE, paid_out_message(view.payout.reference))
    if view.status == Status.APPROVED and view.revocable_until is None:
        return _refuse(ErrorCode.INVALID_STATE, not_revocable_type(view.type))
    if view.status == Status.COMPLETED and view.revocable_until is not None:
        return _refuse(
            ErrorCode.INVALID_STATE,
            "the request is completed and closed: its revoke window has ended, so it can no "
            "longer be revoked",
        )
    return _refuse(ErrorCode.INVALID_STATE, not_revocable_status(view.status))


def not_revocable_type(type_: str) -> str:
    return f"requests of type {type_!r} cannot be revoked: their policy sets no revoke window"


def paid_out_message(reference: str | None) -> str:
    ref = f" (reference {reference})" if reference else ""
    return f"the payout was made{ref}: a request whose payout was made cannot be revoked"


def not_revocable_status(label: str) -> str:
    """Why a request of this status cannot be revoked."""
    if label in (Status.IN_REVIEW, Status.RETURNED, Status.WATCHING):
        return f"only an approved request can be revoked; it is {label} (withdraw it instead)"
    if label == Status.COMPLETED:
        return (
            "the request is completed: the approval was carried out in full and its process "
            "has ended (its policy keeps no revoke window open), so it can no longer be revoked"
        )
    if label == Status.APPROVED:
        return (
            "the request is approved and closed: its revoke window has ended, so it can no "
            "longer be revoked"
        )
    if label == Status.REVOKED:
        return "the request is already revoked"
    return f"the request is {label}: there is no approval to revoke"


def _check_requester(view: RequestState, actor: str, what: str) -> None:
    if actor != view.requester:
        raise _refuse(ErrorCode.FORBIDDEN, f"only the requester may {what} this request")


def check_may_decide(view: RequestState, actor: str) -> None:
    """``actor`` may decide the active stage now (eligible, not decided yet)."""
    stage = active_stage(view)
    if stage is None or view.status != Status.IN_REVIEW:
        raise _refuse(ErrorCode.INVALID_STATE, f"the request is {view.label}, not in review")
    if any(s.decision is None and s.may_act(actor) for s in stage.slots):
        return
    if any(s.decided_by == actor for s in stage.slots):
        raise _refuse(
            ErrorCode.ALREADY_DECIDED, f"{actor} has already decided stage {stage.name!r}"
        )
    # Who may, then: the refusal reaches only those who may see the request (the API
    # answers 404 to anyone else before asking), so it names the step's holders.
    holders = list(
        dict.fromkeys(a.user for s in stage.slots if s.decision is None for a in s.actors)
    )
    raise _refuse(
        ErrorCode.NOT_ELIGIBLE,
        not_eligible_message(actor, stage.name, holders),
        stage=stage.key,
        stage_name=stage.name,
        holders=holders,
    )


def not_eligible_message(actor: str, stage_name: str, holders: list[str]) -> str:
    """Why ``actor`` may not decide, naming who may (``holders``: ids, or names and ids)."""
    held = f"it is held by {', '.join(holders)}" if holders else "nobody holds it now"
    return f"{actor} may not decide stage {stage_name!r}: {held}"


def resubmitted(
    view: RequestState, policy: Policy, msg: ResubmitInput
) -> tuple[Decimal | None, dict[str, Any], Route]:
    """The amount, fields and route a resubmission leads to.

    Raises:
        DomainError: the new amount or fields are invalid, or break a hard rule.
    """
    amount = msg.amount if msg.amount is not None else view.amount
    raw = msg.fields if msg.fields is not None else view.fields
    fields = validate_fields(policy, amount, raw)
    return amount, fields, resolve_route(policy, amount, fields)


def send_back_target(view: RequestState, msg: SendBackInput) -> int | None:
    """The index of the stage ``msg`` sends the request back to; None: its requester.

    Any stage the request has passed (every stage before the active one, approved),
    named by its key or its index, or ``requester``.

    Raises:
        DomainError: 422 naming ``to_stage`` and the stages it may name.
    """
    if msg.to_stage == SEND_BACK_TO_REQUESTER:
        return None
    stage = active_stage(view)
    assert stage is not None  # check_may_decide came first
    passed = [st for st in view.stages[: stage.index] if st.status is StageStatus.APPROVED]
    found = next(
        (
            st
            for st in view.stages
            if (st.index if isinstance(msg.to_stage, int) else st.key) == msg.to_stage
        ),
        None,
    )
    if found is not None and found in passed:
        return found.index
    allowed = [SEND_BACK_TO_REQUESTER, *(st.key for st in passed)]
    why = (
        f"there is no stage {msg.to_stage!r}"
        if found is None
        else f"stage {found.name!r} is not one the request has passed"
    )
    raise _refuse(
        ErrorCode.VALIDATION,
        f"{why}: send it back to one of {', '.join(allowed)} (a key, an index from 0, "
        "or requester)",
        field="to_stage",
        allowed=allowed,
    )
