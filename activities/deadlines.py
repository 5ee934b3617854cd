"""When a deadline falls: the business calendar the worker loaded, behind an activity.

The workflow asks (as a local activity) and records the answer in its history,
so a calendar changed later (a new holiday notice, an edited override file)
never changes a running request on replay: deadlines already computed keep
their instant, later ones use the calendar of the worker that computes them.
"""

from __future__ import annotations

from temporalio import activity

from domain.constants import Activities
from domain.working_time import BusinessCalendar, Due, DueInput


class DeadlineActivities:
    """Deadline arithmetic with an injected calendar (the worker builds it at start-up)."""

    def __init__(self, calendar: BusinessCalendar) -> None:
        self._calendar = calendar

    @activity.defn(name=Activities.DUE_AT)
    async def due_at(self, input: DueInput) -> Due:
        """``input.start`` plus ``input.span``: working time on the calendar, or calendar time.

        Counted by :meth:`BusinessCalendar.deadline`, as the API's preview counts. Pure and
        idempotent: the same input on the same calendar gives the same answer.
        """
        return self._calendar.deadline(input.start, input.span)
