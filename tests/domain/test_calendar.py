"""Payout windows: the 7th-10th and 25th-27th, inclusive, in China Standard Time."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.calendar import next_payout_window

CST = timedelta(hours=8)
WINDOWS = ((7, 10), (25, 27))


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A China Standard Time wall-clock moment, as the UTC instant it is."""
    return datetime(y, m, d, hh, mm, tzinfo=UTC) - CST


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2026, 11, 6, 23, 59), local(2026, 11, 7)),  # the day before: wait for the 7th
        (local(2026, 11, 7), local(2026, 11, 7)),  # first day: at once
        (local(2026, 11, 10, 23, 59), local(2026, 11, 10, 23, 59)),  # last minute of the 10th
        (local(2026, 11, 11), local(2026, 11, 25)),  # just after: the next window
        (local(2026, 11, 27, 12), local(2026, 11, 27, 12)),
        (local(2026, 11, 28), local(2026, 12, 7)),  # after the last window: next month
        (local(2026, 12, 28), local(2027, 1, 7)),  # across the year
    ],
)
def test_next_payout_window(now: datetime, expected: datetime) -> None:
    assert next_payout_window(now, WINDOWS, CST) == expected


def test_local_day_decides_not_the_utc_day() -> None:
    # 2026-11-10 17:00 UTC is already the 11th in China: the window has closed.
    now = datetime(2026, 11, 10, 17, 0, tzinfo=UTC)
    assert next_payout_window(now, WINDOWS, CST) == local(2026, 11, 25)
