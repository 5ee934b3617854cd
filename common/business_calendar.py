"""Build the business calendar from the holiday source, the settings and the override file.

The source is the ``holidays`` package (pinned in ``pyproject.toml``): China's
statutory holidays, the days off the State Council moves (调休) and the make-up
workdays on weekends, year by year as the notices are published; for a year
without a notice yet it estimates the statutory holidays (the lunar dates and
their observed days) but has no make-up workdays. A year counts as *known* when
the source has its make-up workdays (every notice since 2001 has some) or the
override file gives its whole schedule.

The override file (``APPROVALS_CALENDAR_OVERRIDES``), YAML::

    days_off: [2026-12-31]         # company days off, on top of the statutory ones
    workdays: [2026-12-26]         # extra company working days (e.g. a Saturday)
    years:                         # whole-year official schedules the source lacks
      2027:
        holidays: [2027-01-01, 2027-02-05, ...]   # every day off on a weekday
        workdays: [2027-02-20, ...]               # the make-up workdays
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from common.settings import Settings
from domain.errors import field_problems
from domain.working_time import DEFAULT_HOURS, BusinessCalendar, parse_working_hours

log = logging.getLogger("approvals.calendar")

WARN_DAYS_BEFORE_NEW_YEAR = 60
_YEARS_BEHIND, _YEARS_AHEAD = 1, 4  # years of source data loaded around today


class CalendarError(Exception):
    """A calendar setting or override file that cannot be used; the message names it."""


class YearSchedule(BaseModel):
    """One year's official schedule, as the State Council's notice gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()


class CalendarOverrides(BaseModel):
    """The deployment's override file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_off: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()
    years: dict[int, YearSchedule] = {}


def load_overrides(path: Path) -> CalendarOverrides:
    """Read and validate the override file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read the calendar override file: {exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date like 2026-13-01
        raise CalendarError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return CalendarOverrides()
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: must be a mapping at the top level")
    try:
        overrides = CalendarOverrides.model_validate(data)
    except ValidationError as exc:
        raise CalendarError(f"{path}: {field_problems(exc)}") from exc
    for year, schedule in overrides.years.items():
        for field in ("holidays", "workdays"):
            stray = [d for d in getattr(schedule, field) if d.year != year]
            if stray:
                raise CalendarError(f"{path}: years.{year}.{field}: {stray[0]} is not in {year}")
        both = set(schedule.holidays) & set(schedule.workdays)
        if both:
            raise CalendarError(
                f"{path}: years.{year}: {min(both)} is both a holiday and a workday"
            )
    both = set(overrides.days_off) & set(overrides.workdays)
    if both:
        raise CalendarError(f"{path}: {min(both)} is in both days_off and workdays")
    return overrides


@lru_cache(maxsize=64)
def _source_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """China's days off and make-up workdays in ``year`` according to the source."""
    cn = holidays.country_holidays("CN", years=year)
    days_off = frozenset(d for d in cn if d.year == year)
    workdays = frozenset(d for d in cn.weekend_workdays if d.year == year)
    return days_off, workdays


def build_calendar(
    years: Iterable[int],
    *,
    time_zone: str = "Asia/Shanghai",
    working_hours: str | None = None,
    overrides: CalendarOverrides | None = None,
) -> BusinessCalendar:
    """The calendar of ``years`` from the source, with ``overrides`` on top."""
    overrides = overrides or CalendarOverrides()
    days_off: set[date] = set()
    workdays: set[date] = set()
    known: set[int] = set()
    for year in years:
        if year in overrides.years:
            continue
        off, work = _source_year(year)
        days_off |= off
        workdays |= work
        if work:
            known.add(year)
    for year, schedule in overrides.years.items():
        days_off = {d for d in days_off if d.year != year} | set(schedule.holidays)
        workdays = {d for d in workdays if d.year != year} | set(schedule.workdays)
        known.add(year)
    days_off = (days_off - set(overrides.workdays)) | set(overrides.days_off)
    workdays = (workdays - set(overrides.days_off)) | set(overrides.workdays)
    try:
        hours = parse_working_hours(working_hours) if working_hours else DEFAULT_HOURS
    except ValueError as exc:
        raise CalendarError(f"APPROVALS_WORKING_HOURS: {exc}") from exc
    try:
        return BusinessCalendar(
            time_zone=time_zone,
            hours=hours,
            holidays=frozenset(days_off),
            workdays=frozenset(workdays),
            known_years=frozenset(known),
        )
    except ValidationError as exc:
        names = {"time_zone": "APPROVALS_CALENDAR_TZ", "hours": "APPROVALS_WORKING_HOURS"}
        problems = "; ".join(
            f"{names.get(str(err['loc'][0]), 'calendar') if err['loc'] else 'calendar'}: "
            f"{err['msg']}"
            for err in exc.errors()
        )
        raise CalendarError(problems) from exc


def load_business_calendar(settings: Settings, today: date) -> BusinessCalendar:
    """The calendar the worker uses: source data around ``today``, settings, override file."""
    overrides = load_overrides(settings.calendar_overrides) if settings.calendar_overrides else None
    return build_calendar(
        range(today.year - _YEARS_BEHIND, today.year + _YEARS_AHEAD + 1),
        time_zone=settings.calendar_time_zone,
        working_hours=settings.working_hours,
        overrides=overrides,
    )


@lru_cache(maxsize=1)
def default_calendar(this_year: int) -> BusinessCalendar:
    """The calendar with default settings and no override file (tests, tools)."""
    return build_calendar(range(this_year - _YEARS_BEHIND, this_year + _YEARS_AHEAD + 1))


def calendar_warnings(calendar: BusinessCalendar, today: date) -> list[str]:
    """What an operator must fix before deadlines turn provisional (empty when all is well).

    Warns when this year's official schedule is unknown, and when the next year
    begins within 60 days and its schedule is unknown.
    """
    warnings: list[str] = []
    fix = (
        "add its schedule to the file APPROVALS_CALENDAR_OVERRIDES names (years: {y}: "
        "holidays, workdays) or upgrade the holidays package once it has the notice"
    )
    if today.year not in calendar.known_years:
        warnings.append(
            f"the official holiday schedule of {today.year} is unknown: working-time "
            f"deadlines are provisional (weekends and estimated statutory holidays only); "
            + fix.format(y=today.year)
        )
    next_year = today.year + 1
    days_left = (date(next_year, 1, 1) - today).days
    if days_left <= WARN_DAYS_BEFORE_NEW_YEAR and next_year not in calendar.known_years:
        warnings.append(
            f"the official holiday schedule of {next_year} is unknown and the year begins "
            f"in {days_left} days: working-time deadlines that reach into it are provisional "
            f"(weekends and estimated statutory holidays only); " + fix.format(y=next_year)
        )
    return warnings


def log_calendar_warnings(calendar: BusinessCalendar, today: date) -> list[str]:
    """Log each of :func:`calendar_warnings` as a WARNING and return them."""
    warnings = calendar_warnings(calendar, today)
    for warning in warnings:
        log.warning("business calendar: %s", warning)
    return warnings
