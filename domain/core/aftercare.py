"""What follows an approval: milestones, the payout, the in-force period, the receivable ladder.

Each function is a step over immutable state, like those of :mod:`domain.core.review`
(which opens the review again when a re-evaluation or a receivable's review is due).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.calendar import next_payout_window
from domain.conditions import evaluate
from domain.process import (
    SYSTEM,
    EventKind,
    MilestoneInput,
    MilestoneState,
    MilestoneStatus,
    Payment,
    PayoutInput,
    PayoutOutput,
    PayoutState,
    RequestState,
    Reversal,
    RevokeInput,
    StageStatus,
    Status,
    WatchState,
)
from domain.requests import condition_values

from .effects import Pay, Step
from .milestones import milestone_state
from .queries import active_stage, current_approvers, milestone_spec, money, open_milestone
from .queries import outstanding as outstanding_of
from .steps import (
    Context,
    close,
    due,
    due_facts,
    notice,
    people,
    put,
    record,
    with_milestone,
    with_stage,
)


def approve(ctx: Context, s: RequestState) -> Step[RequestState]:
    policy = ctx.policy
    s = put(s, status=Status.APPROVED, stage_index=None)
    if policy.revoke is not None:
        # The window counts from this approval (a re-evaluation's approval starts it again).
        s = put(s, revocable_until=ctx.now() + policy.revoke.within)
    kept_open = False
    data: dict[str, Any] = {}
    if not s.stages:
        data["within_authority"] = True
    if s.review_cycle:
        data["review_cycle"] = s.review_cycle
    # Decide what follows before recording, so that an approval that ends the
    # request is recorded as closed (closed_at in the read-model).
    if policy.watch is not None:
        # The write-off is approved: stop waiting for the money.
        milestones = tuple(
            put(m, status=MilestoneStatus.CLOSED) if m.status is MilestoneStatus.OPEN else m
            for m in s.milestones
        )
        s = close(ctx, put(s, milestones=milestones), Status.APPROVED)
    elif not s.review_cycle:  # a re-evaluation keeps the milestones met the first time
        values = condition_values(s.amount, s.fields)
        s = put(
            s,
            milestones=tuple(
                milestone_state(spec, s)
                for spec in policy.milestones
                if spec.when is None or evaluate(spec.when, values)
            ),
        )
        if not s.milestones and not policy.payout and not policy.review_cycle:
            # Nothing follows: the approval is final, but it stays open (approved) while
            # it may be revoked; the revoke window's deadline closes it.
            kept_open = s.revocable_until is not None
            if not kept_open:
                s = close(ctx, s, Status.APPROVED)
    if s.revocable_until is not None:
        data["revocable_until"] = s.revocable_until.isoformat()
    s = yield from record(
        ctx,
        s,
        EventKind.REQUEST_APPROVED,
        SYSTEM,
        None,
        data,
        notices=[notice(s, s.requester, "approved")],
    )
    if s.finished or kept_open:
        return s
    if s.review_cycle:
        return (yield from enter_force(ctx, s))
    return (yield from open_next_milestone(ctx, s))


# ---------------------------------------------------------------------- revoke


def revoke(
    ctx: Context, s: RequestState, msg: RevokeInput, operator: str | None
) -> Step[RequestState]:
    """The approval is taken back (撤销): what still followed it ends, the request closes.

    Milestones not yet met close as revoked; payments already recorded stay in the
    history and are listed as needing reversal; a payout not made yet is never made.
    Everyone who decided is told (and whoever recorded a payment; the requester too
    when an administrator revoked).
    """
    was = s.label
    to_reverse = tuple(
        Reversal(milestone=m.name, amount=p.amount, reference=p.reference, by=p.by, at=p.at)
        for m in s.milestones
        for p in m.payments
    )
    revoked = [
        m.name for m in s.milestones if m.status in (MilestoneStatus.OPEN, MilestoneStatus.PENDING)
    ]
    milestones = tuple(
        put(m, status=MilestoneStatus.REVOKED) if m.name in revoked else m for m in s.milestones
    )
    payout_cancelled = s.payout is not None and s.payout.paid_at is None
    deciders = {slot.decided_by for st in s.stages for slot in st.slots if slot.decided_by}
    told = deciders | {p.by for p in to_reverse}
    if msg.actor != s.requester:
        told.add(s.requester)
    told.discard(msg.actor)
    s = close(ctx, put(s, milestones=milestones, to_reverse=to_reverse), Status.REVOKED)
    data: dict[str, Any] = {
        "as": "admin" if msg.actor != s.requester else "requester",
        "was": was,
        "milestones_revoked": revoked,
        "to_reverse": [r.model_dump(mode="json") for r in to_reverse],
    }
    if payout_cancelled:
        data["payout_cancelled"] = True
    return (
        yield from record(
            ctx,
            s,
            EventKind.REVOKED,
            msg.actor,
            msg.comment,
            data,
            notices=[notice(s, u, "revoked", reversals=len(to_reverse)) for u in sorted(told)],
            operator=operator,
        )
    )


def on_revoke_window(ctx: Context, s: RequestState) -> Step[RequestState]:
    """The revoke window ended: the request closes as it stands (approved with nothing
    to follow, or completed)."""
    s = close(ctx, s, s.status)
    until = s.revocable_until
    return (
        yield from record(
            ctx,
            s,
            EventKind.REVOKE_WINDOW_CLOSED,
            SYSTEM,
            None,
            {"revocable_until": until.isoformat() if until else None},
        )
    )


# ------------------------------------------------------------------ milestones


def record_milestone(
    ctx: Context, s: RequestState, msg: MilestoneInput, operator: str | None
) -> Step[RequestState]:
    m = open_milestone(s)
    assert m is not None  # admitted
    payment = Payment(amount=msg.amount, reference=msg.reference, by=msg.actor, at=ctx.now())
    m = put(
        m,
        payments=(*m.payments, payment),
        paid=money(m.paid + msg.amount) if msg.amount is not None else m.paid,
    )
    s = with_milestone(s, m)
    data = {
        "milestone": m.name,
        "amount": str(msg.amount) if msg.amount is not None else None,
        "paid": str(m.paid),
        "required": str(m.required) if m.required is not None else None,
        "reference": msg.reference,
    }
    s = yield from record(
        ctx, s, EventKind.MILESTONE, msg.actor, msg.comment, data, operator=operator
    )
    if m.required is not None and m.paid < m.required:
        return s
    s = with_milestone(s, put(m, status=MilestoneStatus.MET))
    s = yield from record(
        ctx,
        s,
        EventKind.MILESTONE_MET,
        SYSTEM,
        None,
        data,
        notices=[notice(s, s.requester, "milestone_met", milestone=m.title)],
    )
    watch = ctx.policy.watch
    if watch is not None and m.name == watch.settles_with:
        return (yield from settle_receivable(ctx, s))
    return (yield from open_next_milestone(ctx, s))


def open_next_milestone(ctx: Context, s: RequestState) -> Step[RequestState]:
    nxt = next((m for m in s.milestones if m.status is MilestoneStatus.PENDING), None)
    if nxt is None:
        return (yield from after_milestones(ctx, s))
    spec = milestone_spec(ctx.policy, nxt)
    now = ctx.now()
    s, at = yield from due(s, "milestone", now, spec.due)
    nxt = put(nxt, status=MilestoneStatus.OPEN, opened_at=now, due=at)
    s = put(with_milestone(s, nxt), status=Status.AWAITING, awaiting=nxt.name)
    return (
        yield from record(
            ctx,
            s,
            EventKind.MILESTONE_OPENED,
            SYSTEM,
            None,
            {
                "milestone": nxt.name,
                "due": at.isoformat(),
                "required": str(nxt.required) if nxt.required is not None else None,
            },
            notices=[
                notice(
                    s,
                    s.requester,
                    "milestone_opened",
                    milestone=nxt.title,
                    **due_facts(s, "milestone", at),
                )
            ],
        )
    )


def after_milestones(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Everything the customer owed is done: pay out, stay in force, or finish."""
    if ctx.policy.payout is not None and s.payout is None:
        return (yield from schedule_payout(ctx, s))
    if ctx.policy.review_cycle is not None:
        return (yield from enter_force(ctx, s))
    until = s.revocable_until
    if until is not None and ctx.now() < until:
        # Carried out, yet still revocable: it stays open (completed) until the revoke
        # window's deadline closes it, as an approval with nothing after it does.
        s = put(s, status=Status.COMPLETED)
        data = {"revocable_until": until.isoformat()}
        return (yield from record(ctx, s, EventKind.COMPLETED, SYSTEM, None, data))
    s = close(ctx, s, Status.COMPLETED)
    return (yield from record(ctx, s, EventKind.COMPLETED, SYSTEM, None))


def on_milestone_reminder(ctx: Context, s: RequestState) -> Step[RequestState]:
    m = open_milestone(s)
    assert m is not None
    s = with_milestone(s, put(m, reminded=True))
    return (
        yield from record(
            ctx,
            s,
            EventKind.MILESTONE_REMINDED,
            SYSTEM,
            None,
            {
                "milestone": m.name,
                "due": m.due.isoformat() if m.due else None,
                "paid": str(m.paid),
            },
            notices=[notice(s, s.requester, "milestone_reminder", milestone=m.title)],
        )
    )


def on_milestone_due(ctx: Context, s: RequestState) -> Step[RequestState]:
    m = open_milestone(s)
    assert m is not None
    s = close(ctx, with_milestone(s, put(m, status=MilestoneStatus.LAPSED)), Status.LAPSED)
    return (
        yield from record(
            ctx,
            s,
            EventKind.LAPSED,
            SYSTEM,
            f"{m.title} not completed in time: the approval lapsed",
            {
                "milestone": m.name,
                "paid": str(m.paid),
                "required": str(m.required) if m.required is not None else None,
            },
            notices=[notice(s, s.requester, "lapsed", milestone=m.title)],
        )
    )


# ---------------------------------------------------------------------- payout


def schedule_payout(ctx: Context, s: RequestState) -> Step[RequestState]:
    spec = ctx.policy.payout
    assert spec is not None
    opens = next_payout_window(ctx.now(), spec.windows, timedelta(hours=spec.utc_offset_hours))
    s = put(
        s,
        payout=PayoutState(title=spec.title, amount=s.amount, window_opens=opens),
        status=Status.AWAITING_PAYOUT,
    )
    return (
        yield from record(
            ctx,
            s,
            EventKind.PAYOUT_SCHEDULED,
            SYSTEM,
            None,
            {"window_opens": opens.isoformat(), "amount": str(s.amount), "method": spec.method},
        )
    )


def on_payout_window(ctx: Context, s: RequestState) -> Step[RequestState]:
    spec = ctx.policy.payout
    payout = s.payout
    assert spec is not None and payout is not None
    out = yield Pay(
        PayoutInput(
            request_id=s.id,
            idempotency_key=f"{s.id}:payout:{s.review_cycle}",
            amount=payout.amount,
            beneficiary=s.customer,
            method=spec.method,
        ),
        summary=f"{spec.title}: {payout.amount} CNY",
    )
    assert isinstance(out, PayoutOutput)
    s = put(s, payout=put(payout, paid_at=ctx.now(), reference=out.reference))
    s = yield from record(
        ctx,
        s,
        EventKind.PAID_OUT,
        SYSTEM,
        None,
        {"reference": out.reference, "amount": str(payout.amount)},
        notices=[notice(s, s.requester, "paid_out", reference=out.reference)],
    )
    s = close(ctx, s, Status.COMPLETED)
    return (yield from record(ctx, s, EventKind.COMPLETED, SYSTEM, None))


# ------------------------------------------------------------ in force, reviewed


def enter_force(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Approved and in force until the next periodic re-evaluation (credit lines)."""
    cycle = ctx.policy.review_cycle
    assert cycle is not None
    next_review = ctx.now() + cycle.every
    # Each cycle starts a fresh run: the history of a years-long process stays small.
    s = put(
        s,
        status=Status.ACTIVE,
        stage_index=None,
        next_review=next_review,
        continue_requested=True,
    )
    return (
        yield from record(
            ctx,
            s,
            EventKind.IN_FORCE,
            SYSTEM,
            None,
            {"next_review": next_review.isoformat(), "cycle": s.review_cycle},
            notices=[notice(s, s.requester, "in_force", next_review=next_review.isoformat())],
        )
    )


# ----------------------------------------------------------- receivable ladder


def start_watch(ctx: Context, s: RequestState) -> Step[RequestState]:
    """Receivables: a ladder of notices while the money may still arrive."""
    w = ctx.policy.watch
    assert w is not None
    now = ctx.now()
    anchor = now
    raw = s.fields.get(w.anchor_field) if w.anchor_field else None
    if isinstance(raw, str):
        anchor = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    watch = WatchState(
        anchor=anchor,
        next_step=0,
        next_at=anchor + w.steps[0].after if w.steps else None,
        review_at=anchor + w.review_after,
    )
    settles = MilestoneState(
        name=w.settles_with,
        title=w.settles_title,
        required=s.amount,
        status=MilestoneStatus.OPEN,
        opened_at=now,
    )
    s = put(s, watch=watch, milestones=(settles,), status=Status.WATCHING)
    return (
        yield from record(
            ctx,
            s,
            EventKind.MILESTONE_OPENED,
            SYSTEM,
            None,
            {
                "milestone": w.settles_with,
                "required": str(s.amount),
                "ladder": [{"after": str(st.after), "title": st.title} for st in w.steps],
                "review_at": watch.review_at.isoformat(),
            },
        )
    )


def on_watch_step(ctx: Context, s: RequestState) -> Step[RequestState]:
    w = ctx.policy.watch
    watch = s.watch
    assert w is not None and watch is not None and watch.next_at is not None
    i = watch.next_step
    step = w.steps[i]
    told = yield from people(ctx, s, f"told: {step.title}", step.notify)
    s = yield from record(
        ctx,
        s,
        EventKind.WATCH_NOTICE,
        SYSTEM,
        step.title,
        {"step": i, "people": told, "outstanding": str(outstanding_of(s))},
        notices=[notice(s, u, "watch_notice", step=step.title) for u in told],
    )
    now = ctx.now()
    following = watch.anchor + w.steps[i + 1].after if i + 1 < len(w.steps) else watch.review_at
    if step.repeat_every is not None:
        nxt = watch.next_at + step.repeat_every
        while nxt <= now:  # submitted late: no burst of past reminders
            nxt += step.repeat_every
        if nxt < following:
            return put(s, watch=put(watch, next_at=nxt))
    return put(
        s,
        watch=put(watch, next_step=i + 1, next_at=following if i + 1 < len(w.steps) else None),
    )


def settle_receivable(ctx: Context, s: RequestState) -> Step[RequestState]:
    """The money arrived in full: the receivable process ends, whatever its stage."""
    told = current_approvers(s)
    stage = active_stage(s)
    if stage is not None:
        s = with_stage(s, put(stage, status=StageStatus.CLOSED))
    s = close(ctx, s, Status.COMPLETED)
    return (
        yield from record(
            ctx, s, EventKind.SETTLED, SYSTEM, None, notices=[notice(s, u, "settled") for u in told]
        )
    )
