"""Reminders and urgent notices wait for the next working hour (issue 14, item 9).

The rule is pure: :meth:`BusinessCalendar.next_working_instant` finds the next instant
anyone is at work, :func:`domain.delivery.deliver_not_before` says which deliveries
wait for it. The real-date cases use the calendar built from the pinned ``holidays``
package (2026: National Day 1-7 October, make-up workday Saturday 10 October); the
properties use plain calendars with a few holidays and make-up days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.business_calendar import build_calendar
from domain.delivery import HELD_CHANNELS, HELD_KINDS, deliver_not_before
from domain.working_time import BusinessCalendar, parse_working_hours

SH = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=SH)


@pytest.fixture(scope="module")
def china() -> BusinessCalendar:
    return build_calendar(range(2025, 2029))


def held(calendar: BusinessCalendar, at: datetime) -> datetime:
    return calendar.next_working_instant(at).astimezone(SH)


def test_a_reminder_planned_at_night_waits_for_the_morning(china: BusinessCalendar) -> None:
    # Monday 1 December 2026, 01:19: the hour the old 4-hour reply fell due.
    assert held(china, sh(2026, 12, 1, 1, 19)) == sh(2026, 12, 1, 9)
    assert held(china, sh(2026, 11, 30, 18, 30)) == sh(2026, 12, 1, 9)  # after closing


def test_a_weekend_waits_for_monday(china: BusinessCalendar) -> None:
    assert held(china, sh(2026, 12, 5, 10)) == sh(2026, 12, 7, 9)  # Saturday morning
    assert held(china, sh(2026, 12, 6, 19, 19)) == sh(2026, 12, 7, 9)  # Sunday evening


def test_a_holiday_waits_for_the_first_working_day_after_it(china: BusinessCalendar) -> None:
    # National Day 2026: 1-7 October off (a Thursday to a Wednesday); back on the 8th.
    assert held(china, sh(2026, 10, 1, 10)) == sh(2026, 10, 8, 9)
    # The make-up workday (调休), Saturday 10 October, is a working day.
    assert held(china, sh(2026, 10, 9, 20)) == sh(2026, 10, 10, 9)


def test_lunch_waits_for_the_afternoon(china: BusinessCalendar) -> None:
    assert held(china, sh(2026, 12, 1, 12, 0)) == sh(2026, 12, 1, 13, 30)
    assert held(china, sh(2026, 12, 1, 12, 45)) == sh(2026, 12, 1, 13, 30)


def test_inside_working_hours_nothing_waits(china: BusinessCalendar) -> None:
    for at in (sh(2026, 12, 1, 9), sh(2026, 12, 1, 10, 7, 31), sh(2026, 12, 1, 17, 59, 59)):
        assert held(china, at) == at
    assert china.next_working_instant(sh(2026, 12, 1, 10)).tzinfo is UTC


def test_only_reminders_and_urgent_notices_to_people_wait(china: BusinessCalendar) -> None:
    night = sh(2026, 12, 1, 1, 19)
    morning = sh(2026, 12, 1, 9)
    for kind in ("reminder", "escalated", "overdue", "milestone_reminder"):
        assert kind in HELD_KINDS
        for channel in ("email", "dingtalk", "wecom", "feishu"):
            assert deliver_not_before(kind, channel, night, china) == morning
    # A new step, an outcome: sent at once. A webhook goes to a system: at once.
    assert deliver_not_before("assigned", "email", night, china) == night
    assert deliver_not_before("approved", "email", night, china) == night
    assert deliver_not_before("reminder", "webhook", night, china) == night
    # The policy asks for them at once; or no calendar was given (tests, tools).
    assert deliver_not_before("reminder", "email", night, china, hold=False) == night
    assert deliver_not_before("reminder", "email", night, None) == night


def test_the_held_kinds_are_notices_that_exist() -> None:
    """A misspelt kind would silently never be held."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    for locale in ("en", "zh-CN"):
        path = root / "notify" / "templates" / f"notices.{locale}.yaml"
        known = set(yaml.safe_load(path.read_text(encoding="utf-8")))
        assert known >= HELD_KINDS, (locale, HELD_KINDS - known)


# -- properties ------------------------------------------------------------------------

PLAIN = BusinessCalendar(
    holidays=frozenset({date(2026, 10, d) for d in range(1, 8)} | {date(2027, 1, 1)}),
    workdays=frozenset({date(2026, 9, 20), date(2026, 10, 10)}),
    known_years=frozenset({2026}),
)
"""Weekends, a holiday week, make-up days; 09:00-12:00 and 13:30-18:00 in Shanghai."""
OFFICE = BusinessCalendar(
    time_zone="Europe/Berlin",
    hours=parse_working_hours("08:30-17:40"),
    weekend=frozenset({4, 5, 6}),
    holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)
"""One long period, a three-day weekend, a time zone with summer time."""

calendars = st.sampled_from([PLAIN, OFFICE])
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(UTC)
)


def inside(calendar: BusinessCalendar, at: datetime) -> bool:
    """From a period's opening up to, not including, its closing, on a working day."""
    local = at.astimezone(calendar.zone)
    t = local.time().replace(tzinfo=None)
    return calendar.is_working_day(local.date()) and any(
        p.start <= t < p.end for p in calendar.hours
    )


@settings(max_examples=300, deadline=None)
@given(
    calendars, instants, st.sampled_from(sorted(HELD_KINDS)), st.sampled_from(sorted(HELD_CHANNELS))
)
def test_a_held_notice_is_never_early_and_always_inside_working_hours(
    calendar: BusinessCalendar, planned: datetime, kind: str, channel: str
) -> None:
    at = deliver_not_before(kind, channel, planned, calendar)
    assert at >= planned
    assert inside(calendar, at) and calendar.is_working_time(at)
    if inside(calendar, planned):
        assert at == planned  # already inside working hours: not held at all


@settings(max_examples=300, deadline=None)
@given(calendars, instants)
def test_a_notice_waits_no_longer_than_the_next_opening(
    calendar: BusinessCalendar, planned: datetime
) -> None:
    """The first working instant, not merely some later one: a held notice goes at a
    period's opening, and no minute between the plan and then was working time."""
    at = calendar.next_working_instant(planned)
    if at == planned:
        return
    local = at.astimezone(calendar.zone)
    assert local.time().replace(tzinfo=None) in {p.start for p in calendar.hours}
    assert local.second == 0 and local.microsecond == 0
    probe = planned
    while probe < at:
        assert not inside(calendar, probe)
        probe += timedelta(minutes=15)
    assert at - planned < timedelta(days=30)


@settings(max_examples=100, deadline=None)
@given(calendars, instants, st.sampled_from(["assigned", "approved", "cc_submitted", "settled"]))
def test_other_notices_go_at_once(calendar: BusinessCalendar, planned: datetime, kind: str) -> None:
    assert deliver_not_before(kind, "email", planned, calendar) == planned


def test_end_of_period_is_not_inside_for_holding() -> None:
    # 18:00 on the dot: the office shuts; the notice waits for the next morning.
    assert held(PLAIN, sh(2026, 12, 1, 18)) == sh(2026, 12, 2, 9)
    assert time(18) == PLAIN.hours[-1].end
