"""What follows an approval: milestones, the payout, periodic review, the receivable ladder.

Each function is a step of :class:`~domain.core.machine.Process`, like those of
:mod:`domain.core.review`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

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
    StageStatus,
    Status,
    WatchState,
    stages_of,
)
from domain.requests import condition_values
from domain.routing import resolve_route

from . import review
from .effects import Pay, Step
from .milestones import milestone_state
from .queries import active_stage, current_approvers, milestone_spec, money, open_milestone
from .queries import outstanding as outstanding_of

if TYPE_CHECKING:
    from .machine import Process


def approve(p: Process) -> Step[None]:
    v = p.view
    v.status = Status.APPROVED
    v.stage_index = None
    data: dict[str, Any] = {}
    if not v.stages:
        data["within_authority"] = True
    if v.review_cycle:
        data["review_cycle"] = v.review_cycle
    # Decide what follows before recording, so that an approval that ends the
    # request is recorded as closed (closed_at in the read-model).
    if p.policy.watch is not None:
        # The write-off is approved: stop waiting for the money.
        for m in v.milestones:
            if m.status is MilestoneStatus.OPEN:
                m.status = MilestoneStatus.CLOSED
        p.close(Status.APPROVED)
    elif not v.review_cycle:  # a re-evaluation keeps the milestones met the first time
        values = condition_values(v.amount, v.fields)
        v.milestones = [
            milestone_state(spec, v)
            for spec in p.policy.milestones
            if spec.when is None or evaluate(spec.when, values)
        ]
        if not v.milestones and not p.policy.payout and not p.policy.review_cycle:
            p.close(Status.APPROVED)  # nothing follows: the approval is final
    yield from p.record(
        EventKind.REQUEST_APPROVED, SYSTEM, None, data, notices=[p.notice(v.requester, "approved")]
    )
    if p.finished:
        return
    if v.review_cycle:
        yield from enter_force(p)
        return
    yield from open_next_milestone(p)


# ------------------------------------------------------------------ milestones


def record_milestone(p: Process, msg: MilestoneInput) -> Step[None]:
    m = open_milestone(p.view)
    assert m is not None  # admitted
    m.payments.append(Payment(amount=msg.amount, reference=msg.reference, by=msg.actor, at=p.now()))
    if msg.amount is not None:
        m.paid = money(m.paid + msg.amount)
    data = {
        "milestone": m.name,
        "amount": str(msg.amount) if msg.amount is not None else None,
        "paid": str(m.paid),
        "required": str(m.required) if m.required is not None else None,
        "reference": msg.reference,
    }
    yield from p.record(EventKind.MILESTONE, msg.actor, msg.comment, data)
    if m.required is None or m.paid >= m.required:
        m.status = MilestoneStatus.MET
        yield from p.record(
            EventKind.MILESTONE_MET,
            SYSTEM,
            None,
            data,
            notices=[p.notice(p.view.requester, "milestone_met", milestone=m.title)],
        )
        if p.policy.watch is not None and m.name == p.policy.watch.settles_with:
            yield from settle_receivable(p)
        else:
            yield from open_next_milestone(p)


def open_next_milestone(p: Process) -> Step[None]:
    v = p.view
    nxt = next((m for m in v.milestones if m.status is MilestoneStatus.PENDING), None)
    if nxt is None:
        yield from after_milestones(p)
        return
    spec = milestone_spec(p.policy, nxt)
    now = p.now()
    nxt.status = MilestoneStatus.OPEN
    nxt.opened_at = now
    nxt.due = yield from p.due("milestone", now, spec.due)
    v.await_milestone(nxt.name)
    yield from p.record(
        EventKind.MILESTONE_OPENED,
        SYSTEM,
        None,
        {
            "milestone": nxt.name,
            "due": nxt.due.isoformat(),
            "required": str(nxt.required) if nxt.required is not None else None,
        },
        notices=[
            p.notice(
                v.requester,
                "milestone_opened",
                milestone=nxt.title,
                **p.due_facts("milestone", nxt.due),
            )
        ],
    )


def after_milestones(p: Process) -> Step[None]:
    """Everything the customer owed is done: pay out, stay in force, or finish."""
    v = p.view
    if p.policy.payout is not None and v.payout is None:
        yield from schedule_payout(p)
    elif p.policy.review_cycle is not None:
        yield from enter_force(p)
    else:
        p.close(Status.COMPLETED)
        yield from p.record(EventKind.COMPLETED, SYSTEM, None)


def on_milestone_reminder(p: Process) -> Step[None]:
    m = open_milestone(p.view)
    assert m is not None
    m.reminded = True
    yield from p.record(
        EventKind.MILESTONE_REMINDED,
        SYSTEM,
        None,
        {"milestone": m.name, "due": m.due.isoformat() if m.due else None, "paid": str(m.paid)},
        notices=[p.notice(p.view.requester, "milestone_reminder", milestone=m.title)],
    )


def on_milestone_due(p: Process) -> Step[None]:
    m = open_milestone(p.view)
    assert m is not None
    m.status = MilestoneStatus.LAPSED
    p.close(Status.LAPSED)
    yield from p.record(
        EventKind.LAPSED,
        SYSTEM,
        f"{m.title} not completed in time: the approval lapsed",
        {
            "milestone": m.name,
            "paid": str(m.paid),
            "required": str(m.required) if m.required is not None else None,
        },
        notices=[p.notice(p.view.requester, "lapsed", milestone=m.title)],
    )


# ---------------------------------------------------------------------- payout


def schedule_payout(p: Process) -> Step[None]:
    spec = p.policy.payout
    assert spec is not None
    v = p.view
    opens = next_payout_window(p.now(), spec.windows, timedelta(hours=spec.utc_offset_hours))
    v.payout = PayoutState(title=spec.title, amount=v.amount, window_opens=opens)
    v.status = Status.AWAITING_PAYOUT
    yield from p.record(
        EventKind.PAYOUT_SCHEDULED,
        SYSTEM,
        None,
        {"window_opens": opens.isoformat(), "amount": str(v.amount), "method": spec.method},
    )


def on_payout_window(p: Process) -> Step[None]:
    spec = p.policy.payout
    v = p.view
    assert spec is not None and v.payout is not None
    out = yield Pay(
        PayoutInput(
            request_id=v.id,
            idempotency_key=f"{v.id}:payout:{v.review_cycle}",
            amount=v.payout.amount,
            beneficiary=v.customer,
            method=spec.method,
        ),
        summary=f"{spec.title}: {v.payout.amount} CNY",
    )
    assert isinstance(out, PayoutOutput)
    v.payout.paid_at = p.now()
    v.payout.reference = out.reference
    yield from p.record(
        EventKind.PAID_OUT,
        SYSTEM,
        None,
        {"reference": out.reference, "amount": str(v.payout.amount)},
        notices=[p.notice(v.requester, "paid_out", reference=out.reference)],
    )
    p.close(Status.COMPLETED)
    yield from p.record(EventKind.COMPLETED, SYSTEM, None)


# -------------------------------------------------------------- periodic review


def enter_force(p: Process) -> Step[None]:
    """Approved and in force until the next periodic re-evaluation (credit lines)."""
    cycle = p.policy.review_cycle
    assert cycle is not None
    v = p.view
    v.status = Status.ACTIVE
    v.stage_index = None
    v.next_review = p.now() + cycle.every
    yield from p.record(
        EventKind.IN_FORCE,
        SYSTEM,
        None,
        {"next_review": v.next_review.isoformat(), "cycle": v.review_cycle},
        notices=[p.notice(v.requester, "in_force", next_review=v.next_review.isoformat())],
    )
    # Each cycle starts a fresh run: the history of a years-long process stays small.
    p.continue_requested = True


def on_review_due(p: Process) -> Step[None]:
    cycle = p.policy.review_cycle
    assert cycle is not None
    v = p.view
    v.review_cycle += 1
    v.next_review = None
    route = resolve_route(p.policy, v.amount, v.fields)
    v.stages = stages_of(route)
    v.overdue = False
    v.resolve_due = yield from p.due("resolve", p.now(), p.policy.timers.resolve)
    p.resolve_fired = False
    yield from p.record(
        EventKind.REVIEW_STARTED,
        SYSTEM,
        cycle.title,
        {"cycle": v.review_cycle, "stages": [s.key for s in route.stages]},
        notices=[p.notice(v.requester, "review_started")],
    )
    yield from review.advance(p, 0)


# ----------------------------------------------------------- receivable ladder


def start_watch(p: Process) -> Step[None]:
    """Receivables: a ladder of notices while the money may still arrive."""
    w = p.policy.watch
    assert w is not None
    v = p.view
    now = p.now()
    anchor = now
    raw = v.fields.get(w.anchor_field) if w.anchor_field else None
    if isinstance(raw, str):
        anchor = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    v.watch = WatchState(
        anchor=anchor,
        next_step=0,
        next_at=anchor + w.steps[0].after if w.steps else None,
        review_at=anchor + w.review_after,
    )
    v.milestones = [
        MilestoneState(
            name=w.settles_with,
            title=w.settles_title,
            required=v.amount,
            status=MilestoneStatus.OPEN,
            opened_at=now,
        )
    ]
    v.status = Status.WATCHING
    yield from p.record(
        EventKind.MILESTONE_OPENED,
        SYSTEM,
        None,
        {
            "milestone": w.settles_with,
            "required": str(v.amount),
            "ladder": [{"after": str(st.after), "title": st.title} for st in w.steps],
            "review_at": v.watch.review_at.isoformat(),
        },
    )


def on_watch_step(p: Process) -> Step[None]:
    w = p.policy.watch
    v = p.view
    assert w is not None and v.watch is not None and v.watch.next_at is not None
    i = v.watch.next_step
    step = w.steps[i]
    people = yield from p.people(f"told: {step.title}", step.notify)
    yield from p.record(
        EventKind.WATCH_NOTICE,
        SYSTEM,
        step.title,
        {"step": i, "people": people, "outstanding": str(outstanding_of(v))},
        notices=[p.notice(u, "watch_notice", step=step.title) for u in people],
    )
    now = p.now()
    following = v.watch.anchor + w.steps[i + 1].after if i + 1 < len(w.steps) else v.watch.review_at
    if step.repeat_every is not None:
        nxt = v.watch.next_at + step.repeat_every
        while nxt <= now:  # submitted late: no burst of past reminders
            nxt += step.repeat_every
        if nxt < following:
            v.watch.next_at = nxt
            return
    v.watch.next_step = i + 1
    v.watch.next_at = following if i + 1 < len(w.steps) else None


def on_watch_review(p: Process) -> Step[None]:
    v = p.view
    assert v.watch is not None
    v.watch.next_at = None
    v.resolve_due = yield from p.due("resolve", p.now(), p.policy.timers.resolve)
    yield from p.record(
        EventKind.REVIEW_STARTED,
        SYSTEM,
        "still unpaid: the decision goes to the route's approvers",
        {"outstanding": str(outstanding_of(v))},
    )
    yield from review.advance(p, 0)


def settle_receivable(p: Process) -> Step[None]:
    """The money arrived in full: the receivable process ends, whatever its stage."""
    told = current_approvers(p.view)
    stage = active_stage(p.view)
    if stage is not None:
        stage.status = StageStatus.CLOSED
    p.close(Status.COMPLETED)
    yield from p.record(
        EventKind.SETTLED, SYSTEM, None, notices=[p.notice(u, "settled") for u in told]
    )
