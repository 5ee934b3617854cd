"""Calendar arithmetic for business windows. Pure, so workflows can use it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta


def next_payout_window(
    now: datetime, windows: Sequence[tuple[int, int]], utc_offset: timedelta
) -> datetime:
    """When the next payout may be made: ``now`` if inside a window, else the next opening.

    ``windows`` are inclusive (first day, last day) ranges of the month in the
    company's local time, ``utc_offset`` ahead of UTC. The result is in UTC.
    """
    local = now.astimezone(UTC) + utc_offset
    year, month = local.year, local.month
    for _ in range(3):  # this month, or the next: a window always comes within two
        for first, last in sorted(windows):
            opens = datetime(year, month, first, tzinfo=UTC) - utc_offset
            closes = datetime(year, month, last, tzinfo=UTC) + timedelta(days=1) - utc_offset
            if now < closes:
                return max(opens, now)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("unreachable: every month has a window")
