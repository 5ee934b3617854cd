"""The business calendar: working hours, working days, China's holidays and 调休.

The real-date tests use the calendar built from the pinned ``holidays`` package
(2026's official schedule: National Day 1-7 October, make-up workdays Sunday
20 September and Saturday 10 October); the properties use a plain calendar
with a few holidays and make-up days so that hypothesis explores every shape.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.business_calendar import build_calendar
from common.policy_store import load_policies
from db.directory import read_org_file
from domain.core.inputs import Submit
from domain.deadline_preview import preview_deadlines
from domain.durations import Span
from domain.working_time import BusinessCalendar, Due, WorkingPeriod, parse_working_hours
from tests.support.machine_driver import ORG_FILE, Driver, FakeDirectory, Request, approval_input

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[2]


def sh(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


@pytest.fixture(scope="module")
def china() -> BusinessCalendar:
    """The calendar the worker would build for 2026 with default settings."""
    return build_calendar(range(2025, 2029))


def local(due: Due) -> datetime:
    return due.at.astimezone(SH)


# -- working hours -------------------------------------------------------------------


def test_friday_1700_plus_4_working_hours_is_monday_noon(china: BusinessCalendar) -> None:
    # Friday 17:00-18:00 is 1 h; Monday 09:00-12:00 the other 3: due at Monday 12:00.
    due = china.due(sh(2026, 11, 27, 17), Span.parse("4 working hours"))
    assert local(due) == sh(2026, 11, 30, 12)
    assert due.working and not due.provisional
    assert due.at.tzinfo is UTC


def test_lunch_is_skipped(china: BusinessCalendar) -> None:
    # Monday 11:00-12:00 is 1 h, lunch until 13:30, then 1 h more.
    assert local(china.due(sh(2026, 11, 30, 11), Span.parse("PT2H working"))) == sh(
        2026, 11, 30, 14, 30
    )


def test_a_request_at_night_starts_counting_next_morning(china: BusinessCalendar) -> None:
    due = china.add_working_time(sh(2026, 11, 30, 22), timedelta(hours=1))
    assert local(due) == sh(2026, 12, 1, 10)


def test_a_request_during_the_national_day_holiday_waits_for_the_8th(
    china: BusinessCalendar,
) -> None:
    # 2026: 1-7 October off; Thursday the 8th is the first working day.
    for day in range(1, 8):
        assert not china.is_working_day(date(2026, 10, day))
    due = china.due(sh(2026, 10, 2, 10), Span.parse("4 working hours"))
    assert local(due) == sh(2026, 10, 8, 14, 30)
    assert local(china.due(sh(2026, 10, 2, 10), Span.parse("1 working day"))) == sh(2026, 10, 8, 18)


def test_the_make_up_workdays_of_national_day_2026_count(china: BusinessCalendar) -> None:
    # Sunday 20 September and Saturday 10 October 2026 are working days (调休).
    assert date(2026, 9, 20).weekday() == 6 and date(2026, 10, 10).weekday() == 5
    assert china.is_working_day(date(2026, 9, 20))
    assert china.is_working_day(date(2026, 10, 10))
    # Saturday 19 September is an ordinary Saturday.
    assert not china.is_working_day(date(2026, 9, 19))
    due = china.due(sh(2026, 9, 19, 12), Span.parse("2 working hours"))
    assert local(due) == sh(2026, 9, 20, 11)
    # Friday 9 October 17:00 + 2 working hours: 1 h on Friday, 1 h on Saturday the 10th.
    due = china.due(sh(2026, 10, 9, 17), Span.parse("PT2H working"))
    assert local(due) == sh(2026, 10, 10, 10)


def test_weekday_holidays_moved_by_the_state_council_are_off(china: BusinessCalendar) -> None:
    # 2026: Friday 2 January off (for Sunday 4 January, a workday); 16-23 February off.
    assert not china.is_working_day(date(2026, 1, 2))
    assert china.is_working_day(date(2026, 1, 4))
    assert not china.is_working_day(date(2026, 2, 23))
    assert china.is_working_day(date(2026, 2, 28))


# -- working days ---------------------------------------------------------------------


def test_3_working_days_from_friday_1700_end_on_wednesday_evening(
    china: BusinessCalendar,
) -> None:
    # The day the clock starts never counts: Monday, Tuesday, Wednesday; due at 18:00.
    due = china.due(sh(2026, 11, 27, 17), Span.parse("3 working days"))
    assert local(due) == sh(2026, 12, 2, 18)
    assert due.working and not due.provisional


def test_working_days_skip_the_holiday_week_and_count_the_make_up_saturday(
    china: BusinessCalendar,
) -> None:
    # Wednesday 30 September: Oct 1-7 off, Thursday 8th, Friday 9th, Saturday 10th (调休).
    due = china.due(sh(2026, 9, 30, 10), Span.parse("P3D working"))
    assert local(due) == sh(2026, 10, 10, 18)


def test_working_days_before_opening_still_start_the_next_day(china: BusinessCalendar) -> None:
    assert local(china.add_working_days(sh(2026, 11, 30, 8), 3)) == sh(2026, 12, 3, 18)


# -- provisional: a year without the official schedule --------------------------------


def test_a_deadline_into_a_year_without_official_data_is_provisional(
    china: BusinessCalendar,
) -> None:
    assert 2026 in china.known_years and 2027 not in china.known_years
    # Thursday 31 December 2026 + 3 working days: 1 January 2027 is off (statutory,
    # estimated), the weekend too: Monday 4, Tuesday 5, Wednesday 6 January.
    due = china.due(sh(2026, 12, 31, 10), Span.parse("3 working days"))
    assert local(due) == sh(2027, 1, 6, 18)
    assert due.provisional and due.working


def test_an_unknown_year_still_counts_weekends_and_statutory_holidays(
    china: BusinessCalendar,
) -> None:
    # Not calendar days: 1 May 2027 (Saturday) to 4 May are estimated off.
    due = china.due(sh(2027, 4, 30, 17), Span.parse("2 working hours"))
    assert local(due) == sh(2027, 5, 5, 10)
    assert due.provisional


def test_calendar_time_is_plain_elapsed_time_and_never_provisional(
    china: BusinessCalendar,
) -> None:
    due = china.due(sh(2026, 12, 31, 10), Span.parse("P3D"))
    assert due == Due(at=sh(2027, 1, 3, 10).astimezone(UTC), working=False, provisional=False)
    assert china.due(sh(2026, 12, 31, 10), timedelta(hours=4)).at == sh(2026, 12, 31, 14)


# -- configuration ----------------------------------------------------------------------


def test_working_hours_parse_and_refuse_nonsense() -> None:
    assert parse_working_hours("08:30-12:00, 13:00-17:40") == (
        WorkingPeriod(start=time(8, 30), end=time(12)),
        WorkingPeriod(start=time(13), end=time(17, 40)),
    )
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_working_hours("9 to 5")
    with pytest.raises(ValueError, match="ends after it starts"):
        parse_working_hours("18:00-09:00")
    with pytest.raises(ValidationError, match="not overlap"):
        BusinessCalendar(hours=parse_working_hours("09:00-12:00,11:00-18:00"))
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessCalendar(time_zone="Mars/Olympus")


def test_the_calendar_round_trips_through_json(china: BusinessCalendar) -> None:
    assert BusinessCalendar.model_validate_json(china.model_dump_json()) == china


def test_naive_instants_are_refused(china: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        china.due(datetime(2026, 11, 30, 10), Span.parse("PT1H working"))


# -- properties -----------------------------------------------------------------------

PLAIN = BusinessCalendar(
    holidays=frozenset({date(2026, 10, d) for d in range(1, 8)} | {date(2027, 1, 1)}),
    workdays=frozenset({date(2026, 9, 20), date(2026, 10, 10)}),
    known_years=frozenset({2026}),
)

instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 30), timezones=st.just(UTC)
)
minutes = st.integers(min_value=0, max_value=60 * 200)


@settings(max_examples=200, deadline=None)
@given(instants, minutes, minutes)
def test_a_longer_span_never_ends_earlier(start: datetime, a: int, b: int) -> None:
    short, long = sorted((a, b))
    assert (
        PLAIN.add_working_time(start, timedelta(minutes=short)).at
        <= PLAIN.add_working_time(start, timedelta(minutes=long)).at
    )


@settings(max_examples=200, deadline=None)
@given(instants, st.integers(min_value=1, max_value=60 * 200))
def test_working_time_never_lands_outside_working_hours(start: datetime, n: int) -> None:
    due = PLAIN.add_working_time(start, timedelta(minutes=n))
    assert PLAIN.is_working_time(due.at)
    assert due.at > start


@settings(max_examples=100, deadline=None)
@given(instants)
def test_zero_adds_nothing(start: datetime) -> None:
    assert PLAIN.add_working_time(start, timedelta(0)).at == start
    assert PLAIN.add_working_days(start, 0).at == start


@settings(max_examples=200, deadline=None)
@given(instants, minutes, minutes)
def test_working_minutes_add_up(start: datetime, a: int, b: int) -> None:
    once = PLAIN.add_working_time(start, timedelta(minutes=a + b)).at
    twice = PLAIN.add_working_time(
        PLAIN.add_working_time(start, timedelta(minutes=a)).at, timedelta(minutes=b)
    ).at
    assert once == twice


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=40))
def test_working_days_are_monotone_and_end_at_closing_time(start: datetime, a: int, b: int) -> None:
    short, long = sorted((a, b))
    first = PLAIN.add_working_days(start, short)
    assert first.at <= PLAIN.add_working_days(start, long).at
    end = first.at.astimezone(SH)
    assert PLAIN.is_working_day(end.date()) and end.time() == time(18)
    assert end.date() > start.astimezone(SH).date()


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(min_value=1, max_value=60 * 200))
def test_provisional_exactly_when_an_unknown_year_is_crossed(start: datetime, n: int) -> None:
    due = PLAIN.add_working_time(start, timedelta(minutes=n))
    years = range(start.astimezone(SH).year, due.at.astimezone(SH).year + 1)
    assert due.provisional == any(y != 2026 for y in years)


# -- preview ---------------------------------------------------------------------------


def test_preview_shows_the_deadlines_a_request_would_get(china: BusinessCalendar) -> None:
    policies = load_policies(ROOT / "policies")
    friday = sh(2026, 11, 27, 17)
    reply, resolve = preview_deadlines(policies["special_discount"], china, friday)
    assert (reply.clock, reply.span, reply.due.working) == (
        "reply",
        Span.parse("PT4H working"),
        True,
    )
    assert local(reply.due) == sh(2026, 11, 30, 12)  # not 21:00 on Friday evening
    assert resolve.span == Span.parse("3 working days")
    assert local(resolve.due) == sh(2026, 12, 2, 18) and resolve.due.working
    complaint_reply, _ = preview_deadlines(policies["customer_complaint"], china, friday)
    assert local(complaint_reply.due) == sh(2026, 11, 30, 12)
    # The JSON the API would show says which kind of time each is.
    assert resolve.model_dump(mode="json")["span"] == "P3D working"


def test_the_preview_counts_from_the_whole_minute_as_the_workflow_does() -> None:
    """A start at 10:00:30: the workflow counts 4 working hours from 10:00, so 15:30:00
    (lunch 12:00-13:30 skipped); the preview said 15:30:30 before it used the same clock."""
    policy = load_policies(ROOT / "policies")["customer_complaint"]
    calendar = BusinessCalendar(known_years=frozenset({2026}))
    monday = datetime(2026, 11, 30, 10, 0, 30, 250_000, tzinfo=SH)

    reply, _ = preview_deadlines(policy, calendar, monday)
    assert local(reply.due) == sh(2026, 11, 30, 15, 30)

    fields = {"category": "staff", "major": False, "description": "rude on the phone"}
    driver = Driver(FakeDirectory(read_org_file(ORG_FILE), calendar=calendar))
    process = Request(approval_input(policy, None, fields), lambda: monday, driver)
    process.feed(Submit())
    assert process.state.stages[0].reply_due == reply.due.at


def test_a_contract_previewed_on_sunday_evening_is_due_in_working_hours(
    china: BusinessCalendar,
) -> None:
    """Issue 14: the preview said 01:19 at night for a contract submitted Sunday 19:19."""
    contract = load_policies(ROOT / "policies")["big_customer_contract"]
    reply, resolve = preview_deadlines(contract, china, sh(2026, 12, 6, 19, 19))
    assert local(reply.due) == sh(2026, 12, 7, 14, 30)  # Monday: 09:00-12:00, 13:30-14:30
    assert local(resolve.due) == sh(2026, 12, 9, 18)  # the 3rd working day, at closing
    assert china.is_working_time(reply.due.at) and china.is_working_time(resolve.due.at)
