"""The deadlines a request would get if submitted now (for the API's preview).

Pure: the caller gives the policy, the business calendar and the instant. Only
the clocks that start at submission are shown: the first stage's reply and the
request's resolve. Later stages' replies start when the stage opens, and
milestone deadlines when the request is approved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.durations import Span
from domain.policy import Policy
from domain.working_time import BusinessCalendar, Due


class DeadlinePreview(BaseModel):
    """One deadline: which clock, its length as the policy writes it, and when it falls."""

    model_config = ConfigDict(frozen=True)

    clock: Literal["reply", "resolve"]
    span: Span
    due: Due


def preview_deadlines(
    policy: Policy, calendar: BusinessCalendar, submitted_at: datetime
) -> tuple[DeadlinePreview, ...]:
    """The reply (first stage) and resolve deadlines of a request submitted at ``submitted_at``.

    Counted by :meth:`BusinessCalendar.deadline`, the function the workflow's ``due_at``
    look-up uses, so working time counts from the whole minute here as it does there.
    A policy without stages (approved at once) has none.
    """
    if not policy.stages:
        return ()
    timers = policy.timers
    return (
        DeadlinePreview(
            clock="reply", span=timers.reply, due=calendar.deadline(submitted_at, timers.reply)
        ),
        DeadlinePreview(
            clock="resolve",
            span=timers.resolve,
            due=calendar.deadline(submitted_at, timers.resolve),
        ),
    )
