"""Building the calendar: the holiday source, the settings, the override file, the warnings."""

from __future__ import annotations

import logging
from datetime import date, time
from pathlib import Path

import pytest

from common.business_calendar import (
    CalendarError,
    build_calendar,
    calendar_warnings,
    load_business_calendar,
    load_overrides,
    log_calendar_warnings,
)
from common.settings import Settings


def settings(**env: object) -> Settings:
    return Settings.model_validate(env)


def test_the_source_knows_2026_and_not_2027() -> None:
    calendar = build_calendar(range(2025, 2029))
    assert {2025, 2026} <= calendar.known_years
    assert 2027 not in calendar.known_years and 2028 not in calendar.known_years
    # 2026's make-up workdays, as the State Council's notice gives them.
    assert {date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9)} | {
        date(2026, 9, 20),
        date(2026, 10, 10),
    } <= calendar.workdays
    # 2027 still has its estimated statutory holidays: never plain calendar days.
    assert date(2027, 1, 1) in calendar.holidays
    assert date(2027, 10, 1) in calendar.holidays


def test_the_override_file_adds_company_days_and_a_missing_year(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(
        "days_off: [2026-12-31]\n"
        "workdays: [2026-12-26]\n"
        "years:\n"
        "  2027:\n"
        "    holidays: [2027-01-01, 2027-02-08, 2027-02-09]\n"
        "    workdays: [2027-02-20]\n",
        encoding="utf-8",
    )
    calendar = load_business_calendar(
        settings(APPROVALS_CALENDAR_OVERRIDES=path), date(2026, 11, 30)
    )
    assert not calendar.is_working_day(date(2026, 12, 31))  # a Thursday, off for the company
    assert calendar.is_working_day(date(2026, 12, 26))  # a Saturday, worked
    assert 2027 in calendar.known_years
    assert calendar.is_working_day(date(2027, 2, 20))
    assert not calendar.is_working_day(date(2027, 2, 9))
    # The source's estimates for 2027 are replaced by the file's schedule.
    assert calendar.is_working_day(date(2027, 2, 10))
    assert calendar_warnings(calendar, date(2026, 11, 30)) == []


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("days_off: [2026-13-01]\n", "month must be in 1..12"),
        ("days_off: [soon]\n", "days_off.0: Input should be a valid date"),
        ("holidays: [2026-12-31]\n", "holidays: Extra inputs are not permitted"),
        ("years: {2027: {holidays: [2028-01-01]}}\n", "years.2027.holidays: 2028-01-01"),
        ("years: {2027: {workdays: nope}}\n", "years.2027.workdays"),
        ("- 2026-12-31\n", "must be a mapping"),
        ("days_off: [2026-12-31]\nworkdays: [2026-12-31]\n", "both days_off and workdays"),
        ("days_off: [2026-12-31\n", "not valid YAML"),
    ],
)
def test_a_bad_override_file_names_the_file_and_the_field(
    tmp_path: Path, content: str, where: str
) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalendarError) as info:
        load_overrides(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_a_missing_override_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="calendar override file"):
        load_overrides(tmp_path / "absent.yaml")


def test_settings_choose_the_time_zone_and_the_working_hours() -> None:
    calendar = load_business_calendar(
        settings(APPROVALS_CALENDAR_TZ="Asia/Taipei", APPROVALS_WORKING_HOURS="08:30-17:40"),
        date(2026, 11, 30),
    )
    assert calendar.time_zone == "Asia/Taipei"
    assert [(p.start, p.end) for p in calendar.hours] == [(time(8, 30), time(17, 40))]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"APPROVALS_CALENDAR_TZ": "Asia/Nowhere"}, "APPROVALS_CALENDAR_TZ"),
        ({"APPROVALS_WORKING_HOURS": "nine to six"}, "APPROVALS_WORKING_HOURS"),
        ({"APPROVALS_WORKING_HOURS": "09:00-12:00,11:00-18:00"}, "APPROVALS_WORKING_HOURS"),
    ],
)
def test_bad_calendar_settings_are_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(CalendarError, match=named):
        load_business_calendar(settings(**env), date(2026, 11, 30))


def test_an_unknown_next_year_within_60_days_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = build_calendar(range(2025, 2029))
    assert calendar_warnings(calendar, date(2026, 11, 1)) == []  # 61 days before
    with caplog.at_level(logging.WARNING, logger="approvals.calendar"):
        warnings = log_calendar_warnings(calendar, date(2026, 11, 30))
    assert len(warnings) == 1
    assert "2027" in warnings[0] and "32 days" in warnings[0] and "provisional" in warnings[0]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    # In an unknown year itself, the warning says so too.
    assert len(calendar_warnings(calendar, date(2027, 12, 1))) == 2
