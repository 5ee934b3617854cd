"""The business calendar: when is it working time, and when is a deadline due.

Pure: no clock, no Temporal, no database. The worker builds one
:class:`BusinessCalendar` at start-up (:mod:`common.business_calendar`) and the
``due_at`` activity computes deadlines with it, so the instant is recorded in the
workflow's history and a later calendar never changes a running request's past.

How deadlines count (what an operations manager in a Chinese company expects):

- **Working hours** (``PT4H working``, ``4 working hours``): only time inside the
  working-hours segments of working days counts; lunch, nights, weekends and
  holidays are skipped, make-up workdays (调休) count. Friday 17:00 + 4 working
  hours is Monday 12:00 (1 h on Friday, 3 h on Monday morning). A deadline that
  ends exactly at the end of a segment is due then (12:00), not after lunch.
- **Working days** (``P3D working``, ``3 working days``): the end of the working
  hours of the N-th working day *after* the day the clock starts. The day of
  submission does not count, as for every period in Chinese law (民法典 第201条:
  期间开始的当日不计入, and 第203条: the period ends when business stops on its
  last day). "Within 3 working days" from Friday 17:00 is Wednesday 18:00; from
  Monday 08:00 it is Thursday 18:00. A same-clock-time rule would give
  Wednesday 17:00 and punish whoever submits late in the day; the end of the
  day is what people mean by "回复 within 3 working days".
- **Calendar time** (``PT4H``, ``P3D``): plain elapsed time, as before.

A deadline is *provisional* when the computation crossed a date in a year whose
official schedule (State Council notice) the calendar does not know: it is then
counted on weekends, the statutory holiday dates the source estimates and the
deployment's override file, never on plain calendar days, and never refused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from domain.durations import Span, SpanUnit

DEFAULT_TIME_ZONE = "Asia/Shanghai"
_MAX_DAYS = 366 * 30  # a calendar with working days finds one long before this


class WorkingPeriod(BaseModel):
    """One segment of working hours in local time, e.g. 09:00-12:00."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> WorkingPeriod:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are local wall-clock times, without a time zone")
        if not self.start < self.end:
            raise ValueError(f"a working period ends after it starts ({self.label()})")
        return self

    @classmethod
    def parse(cls, text: str) -> WorkingPeriod:
        """``09:00-12:00``."""
        start, sep, end = text.strip().partition("-")
        if not sep:
            raise ValueError(f"{text!r}: write a working period as HH:MM-HH:MM")
        try:
            return cls(start=time.fromisoformat(start.strip()), end=time.fromisoformat(end.strip()))
        except ValueError as exc:
            raise ValueError(f"{text!r}: write a working period as HH:MM-HH:MM ({exc})") from None

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_working_hours(text: str) -> tuple[WorkingPeriod, ...]:
    """``09:00-12:00,13:30-18:00`` (the format of ``APPROVALS_WORKING_HOURS``)."""
    return tuple(WorkingPeriod.parse(part) for part in text.split(",") if part.strip())


DEFAULT_HOURS = (
    WorkingPeriod(start=time(9, 0), end=time(12, 0)),
    WorkingPeriod(start=time(13, 30), end=time(18, 0)),
)


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Asia/Shanghai)") from None
    return name


class Due(BaseModel):
    """When a deadline falls, and how it was counted."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    """The instant, in UTC."""
    working: bool
    """Counted in working time on the business calendar."""
    provisional: bool
    """The count crossed a year whose official holiday schedule is not known yet."""


class DueInput(BaseModel):
    """The ``due_at`` activity's one argument: when the clock starts and for how long."""

    model_config = ConfigDict(frozen=True)

    start: AwareDatetime
    span: Span


class BusinessCalendar(BaseModel):
    """Working hours, weekends, holidays and make-up workdays in one time zone.

    Serializable (a frozen pydantic model), so it can be logged, compared or
    carried in a workflow's input if ever needed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_zone: Annotated[str, AfterValidator(_known_zone)] = DEFAULT_TIME_ZONE
    hours: tuple[WorkingPeriod, ...] = Field(default=DEFAULT_HOURS, min_length=1)
    weekend: frozenset[int] = frozenset({5, 6})
    """Days of the week off (Monday is 0): Saturday and Sunday."""
    holidays: frozenset[date] = frozenset()
    """Days off on what would be a working day: statutory holidays, company days off."""
    workdays: frozenset[date] = frozenset()
    """Working days on what would be a weekend: make-up workdays (调休), extra workdays."""
    known_years: frozenset[int] = frozenset()
    """Years whose official schedule is known; a deadline crossing any other is provisional."""

    @field_serializer("weekend", "holidays", "workdays", "known_years")
    def _sorted(self, days: frozenset[int] | frozenset[date]) -> list[int] | list[date]:
        return sorted(days)  # type: ignore[return-value]  # the same output on every run

    @field_validator("hours")
    @classmethod
    def _in_order(cls, hours: tuple[WorkingPeriod, ...]) -> tuple[WorkingPeriod, ...]:
        for earlier, later in pairwise(hours):
            if later.start < earlier.end:
                raise ValueError(
                    f"working periods must be in order and not overlap: "
                    f"{earlier.label()} then {later.label()}"
                )
        return hours

    @model_validator(mode="after")
    def _consistent(self) -> BusinessCalendar:
        if not self.weekend <= set(range(7)):
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday)")
        if len(self.weekend) == 7 and not self.workdays:
            raise ValueError("a calendar without any working day")
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"days both off and working: {sorted(map(str, both))}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # ZoneInfo caches its instances

    # -- days ---------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def is_known(self, day: date) -> bool:
        """Is the official schedule of ``day``'s year known?"""
        return day.year in self.known_years

    def is_working_time(self, instant: datetime) -> bool:
        """Inside working hours (a segment's end counts as inside: a deadline may fall there)."""
        local = instant.astimezone(self.zone)
        if not self.is_working_day(local.date()):
            return False
        t = local.time().replace(tzinfo=None)
        return any(p.start <= t <= p.end for p in self.hours)

    def next_working_instant(self, instant: datetime) -> datetime:
        """``instant`` itself when it falls inside working hours, else the opening of the
        next working period (the first instant anyone is at work again), in UTC.

        Inside means from a period's opening up to, not including, its closing: a notice
        held at 18:00 waits for the next morning rather than arrive as the office shuts.
        Nights, lunch, weekends and holidays move to the next opening; make-up workdays
        (调休) are working days.
        """
        _require_aware(instant)
        local = instant.astimezone(self.zone).replace(tzinfo=None)
        day = local.date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                for period in self.hours:
                    opens = datetime.combine(day, period.start)
                    closes = datetime.combine(day, period.end)
                    if local < closes:
                        if local >= opens:
                            return instant.astimezone(UTC)
                        return opens.replace(tzinfo=self.zone).astimezone(UTC)
            day += timedelta(days=1)
        raise AssertionError("unreachable: the calendar validator guarantees working days")

    def working_day_length(self) -> timedelta:
        return sum((_span(p) for p in self.hours), timedelta(0))

    # -- deadlines ------------------------------------------------------------------

    def deadline(self, start: datetime, span: timedelta) -> Due:
        """When a deadline of ``span`` whose clock starts at ``start`` falls, counted as the
        workflow counts it (:func:`clock_start`, then :meth:`due`).

        The one function for every deadline shown or kept: the ``due_at`` activity the
        workflow asks and the API's preview both call it, so a preview never says
        15:30:30 where the request will say 15:30.
        """
        return self.due(clock_start(start, span), span)

    def due(self, start: datetime, span: timedelta) -> Due:
        """When ``span`` from ``start`` is due: working hours, working days or calendar time.

        A plain ``timedelta`` (or a calendar :class:`Span`) is calendar time.
        """
        _require_aware(start)
        if isinstance(span, Span) and span.working:
            if span.unit is SpanUnit.DAYS:
                return self.add_working_days(start, span.days)
            return self.add_working_time(start, span)
        return Due(at=(start + span).astimezone(UTC), working=False, provisional=False)

    def add_working_time(self, start: datetime, amount: timedelta) -> Due:
        """``start`` plus ``amount`` of working hours. Zero gives ``start`` itself."""
        _require_aware(start)
        if amount < timedelta(0):
            raise ValueError("working time cannot be negative")
        local = start.astimezone(self.zone).replace(tzinfo=None)
        if amount == timedelta(0):
            return Due(at=start.astimezone(UTC), working=True, provisional=False)
        remaining = amount
        day = local.date()
        for _ in range(_MAX_DAYS + amount.days * 7):
            if self.is_working_day(day):
                for period in self.hours:
                    opens = datetime.combine(day, period.start)
                    closes = datetime.combine(day, period.end)
                    cursor = max(opens, local)
                    if cursor >= closes:
                        continue
                    available = closes - cursor
                    if remaining <= available:
                        return self._due(local.date(), cursor + remaining)
                    remaining -= available
            day += timedelta(days=1)
        raise AssertionError("unreachable: the calendar validator guarantees working days")

    def add_working_days(self, start: datetime, days: int) -> Due:
        """The end of working hours on the ``days``-th working day after ``start``'s day.

        The day the clock starts never counts, whatever the hour (民法典 第201条).
        Zero gives ``start`` itself.
        """
        _require_aware(start)
        if days < 0:
            raise ValueError("working days cannot be negative")
        if days == 0:
            return Due(at=start.astimezone(UTC), working=True, provisional=False)
        first = start.astimezone(self.zone).date()
        day, counted = first, 0
        for _ in range(_MAX_DAYS + days * 7):
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
                if counted == days:
                    return self._due(first, datetime.combine(day, self.hours[-1].end))
        raise AssertionError("unreachable: the calendar validator guarantees working days")

    def _due(self, first: date, local_end: datetime) -> Due:
        """Due at ``local_end`` (naive local); provisional if a year on the way is unknown."""
        at = local_end.replace(tzinfo=self.zone).astimezone(UTC)
        years = range(first.year, local_end.year + 1)
        return Due(at=at, working=True, provisional=any(y not in self.known_years for y in years))


def clock_start(start: datetime, span: timedelta) -> datetime:
    """The instant a deadline of ``span`` counts from, when its clock starts at ``start``.

    Working time counts from the whole minute, as people read deadlines: a request
    that arrives at 17:00:00.024 is due when one that arrived at 17:00 is, not after
    lunch. Calendar time counts from ``start`` itself (the workflow adds it without a
    look-up, so the histories of calendar-time requests never change).
    """
    if isinstance(span, Span) and span.working:
        return start.replace(second=0, microsecond=0)
    return start


def _span(period: WorkingPeriod) -> timedelta:
    today = date(2000, 1, 3)
    return datetime.combine(today, period.end) - datetime.combine(today, period.start)


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a deadline starts at an aware instant (with a time zone)")
