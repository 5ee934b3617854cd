"""Timers as data: the earliest deadline that applies to a state, and what it is for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.policy import Policy
from domain.process import DueKind, RequestState, Status

from .queries import active_stage, milestone_spec, open_milestone


class DeadlineKind(StrEnum):
    REPLY = "reply"
    RESOLVE = "resolve"
    RESUBMIT = "resubmit"
    PAYOUT_WINDOW = "payout_window"
    REVIEW = "review"
    WATCH_STEP = "watch_step"
    WATCH_REVIEW = "watch_review"
    MILESTONE_REMINDER = "milestone_reminder"
    MILESTONE_DUE = "milestone_due"
    REVOKE_WINDOW = "revoke_window"


@dataclass(frozen=True)
class Deadline:
    at: datetime
    summary: str
    """The timer's summary in the Temporal UI."""
    kind: DeadlineKind


def _summary(view: RequestState, kind: DueKind, at: datetime, text: str) -> str:
    """The timer's summary; it says so when the instant was counted in working time."""
    note = view.working_time.get(kind)
    if note is None or note.at != at:
        return text
    return f"{text} ({note.span}{', provisional' if note.provisional else ''})"


def next_deadline(view: RequestState, policy: Policy) -> Deadline | None:
    """The earliest deadline of the state; the first listed wins a tie."""
    options: list[Deadline] = []
    if view.status == Status.IN_REVIEW:
        stage = active_stage(view)
        if stage is not None and stage.reply_due is not None:
            summary = _summary(view, "reply", stage.reply_due, f"reply due: {stage.key}")
            options.append(Deadline(stage.reply_due, summary, DeadlineKind.REPLY))
        if view.resolve_due is not None and not view.resolve_fired:
            summary = _summary(view, "resolve", view.resolve_due, "resolve due")
            options.append(Deadline(view.resolve_due, summary, DeadlineKind.RESOLVE))
    elif view.status == Status.RETURNED and view.resubmit_due is not None:
        summary = _summary(view, "resubmit", view.resubmit_due, "resubmit due")
        options.append(Deadline(view.resubmit_due, summary, DeadlineKind.RESUBMIT))
    elif view.status == Status.AWAITING_PAYOUT and view.payout and view.payout.window_opens:
        options.append(
            Deadline(view.payout.window_opens, "payout window", DeadlineKind.PAYOUT_WINDOW)
        )
    elif view.status == Status.ACTIVE and view.next_review is not None:
        options.append(Deadline(view.next_review, "re-evaluation due", DeadlineKind.REVIEW))
    elif view.status == Status.WATCHING and view.watch is not None:
        if view.watch.next_at is not None:
            options.append(Deadline(view.watch.next_at, "ladder step", DeadlineKind.WATCH_STEP))
        options.append(Deadline(view.watch.review_at, "review due", DeadlineKind.WATCH_REVIEW))
    elif view.status is Status.AWAITING:
        m = open_milestone(view)
        if m is not None and m.due is not None:
            spec = milestone_spec(policy, m)
            if spec.remind_before is not None and not m.reminded:
                options.append(
                    Deadline(
                        m.due - spec.remind_before,
                        f"{m.name} reminder",
                        DeadlineKind.MILESTONE_REMINDER,
                    )
                )
            summary = _summary(view, "milestone", m.due, f"{m.name} due")
            options.append(Deadline(m.due, summary, DeadlineKind.MILESTONE_DUE))
    elif view.status in (Status.APPROVED, Status.COMPLETED) and view.revocable_until is not None:
        # Approved with nothing to follow, or completed: kept open for its revoke window.
        options.append(
            Deadline(view.revocable_until, "revoke window ends", DeadlineKind.REVOKE_WINDOW)
        )
    return min(options, key=lambda d: d.at) if options else None
