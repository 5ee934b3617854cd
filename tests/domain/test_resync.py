"""Resync's pure part: which audit rows a restored database lacks, the window it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.process import EventKind, HistoryEvent
from domain.resync import (
    RequestResync,
    ResyncReport,
    changed_rows,
    missing_events,
    seq_ranges,
    window,
)

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def event(seq: int) -> HistoryEvent:
    return HistoryEvent(seq=seq, at=AT, kind=EventKind.COMMENTED, actor="am_li")


def test_missing_events_are_those_the_database_lacks_in_seq_order() -> None:
    to_add, lost = missing_events([1, 2], [event(4), event(2), event(3), event(1)])
    assert [e.seq for e in to_add] == [3, 4]
    assert lost == []


def test_nothing_is_missing_twice() -> None:
    to_add, lost = missing_events([1, 2, 3], [event(1), event(2), event(3)])
    assert to_add == [] and lost == []


def test_seqs_neither_holds_are_lost_after_continue_as_new() -> None:
    # The workflow carried only its latest events; the backup stopped at #2.
    to_add, lost = missing_events([1, 2], [event(6), event(7)])
    assert [e.seq for e in to_add] == [6, 7]
    assert lost == [3, 4, 5]


def test_changed_rows_counts_added_and_changed_not_unchanged() -> None:
    before = {("a",): {"pending": True}, ("b",): {"pending": True}}
    after = {("a",): {"pending": True}, ("b",): {"pending": False}, ("c",): {"pending": True}}
    assert changed_rows(before, after) == 2
    assert changed_rows(after, after) == 0


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("P30D", timedelta(days=30)),
        ("30 days", timedelta(days=30)),
    ],
)
def test_window_reads_short_and_policy_forms(text: str, length: timedelta) -> None:
    assert window(text) == length


@pytest.mark.parametrize("text", ["0d", "soon", "3 working days", "-1d", ""])
def test_window_refuses_what_is_not_a_positive_calendar_length(text: str) -> None:
    with pytest.raises(ValueError):
        window(text)


def test_the_report_lists_what_changed_and_what_failed_only() -> None:
    report = ResyncReport()
    report.add(RequestResync(request_id="a", workflow_status="Running", seq=3))
    report.add(
        RequestResync(request_id="b", workflow_status="Running", row="rewritten", events_added=[3])
    )
    report.add(RequestResync(request_id="c", workflow_status="Running", row="failed", error="x"))
    assert (report.checked, report.rewritten, report.events_added, report.failed) == (3, 1, 1, 1)
    assert [r.request_id for r in report.requests] == ["b", "c"]


def test_seq_ranges_keep_a_report_line_short() -> None:
    assert seq_ranges([7, 1, 2, 3, 9, 10]) == "#1-3, #7, #9-10"
    assert seq_ranges([]) == ""


def test_an_audit_row_corrected_to_the_workflows_history_is_a_change() -> None:
    report = ResyncReport()
    one = RequestResync(request_id="d", workflow_status="Running", seq=2, events_corrected=[2])
    assert one.changed
    report.add(one)
    assert (report.rewritten, report.requests) == (1, [one])
