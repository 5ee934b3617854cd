"""The rules the workflow shell asks of the core: write retries, batch summaries, and
what a request publishes to the Temporal UI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.core.publishing import published
from domain.core.writes import (
    STUCK_RETRY_FIRST,
    STUCK_RETRY_MAX,
    batch_summary,
    stuck_pause,
    write_failed,
)
from domain.process import EventKind, HistoryEvent, TransitionRecord

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_a_stuck_write_waits_twice_as_long_each_time_up_to_five_minutes() -> None:
    assert [stuck_pause(n) for n in (1, 2, 3)] == [
        STUCK_RETRY_FIRST,
        2 * STUCK_RETRY_FIRST,
        4 * STUCK_RETRY_FIRST,
    ]
    assert stuck_pause(30) == STUCK_RETRY_MAX == timedelta(minutes=5)


def test_a_failed_write_tells_its_attempts_and_a_bounded_reason() -> None:
    failed = write_failed("record #3: approved", "x" * 2000, T0, failures=2, attempts_each=3)
    assert (failed.at, failed.attempts) == (T0, 6)
    assert failed.reason.startswith("record #3: approved: xxx") and len(failed.reason) == 1000


def test_a_batch_is_summarised_by_its_span_and_kinds() -> None:
    def rec(seq: int, kind: EventKind) -> TransitionRecord:
        return TransitionRecord(event=HistoryEvent(seq=seq, at=T0, kind=kind, actor="a"))

    assert batch_summary([rec(3, EventKind.APPROVED)]) == "record #3: approved"
    assert (
        batch_summary([rec(3, EventKind.APPROVED), rec(4, EventKind.REJECTED)])
        == "record #3-4: approved, rejected"
    )


def test_what_a_request_publishes_and_which_values_count_as_a_change() -> None:
    from tests.domain.test_revoke import CREDIT_FIELDS, POLICIES, Clock, submitted

    s = submitted(POLICIES["credit_line"], "100000", CREDIT_FIELDS, Clock(T0)).state
    p = published(s)
    assert (p.status, p.request_type, p.requester) == (s.label, s.type, s.requester)
    assert p.amount == (float(s.amount) if s.amount is not None else None)
    assert p.changes == (p.status, p.approvers, p.overdue, p.amount)
    assert published(s.model_copy(update={"overdue": True})).changes != p.changes
    assert published(s.model_copy(update={"customer": ""})).customer is None
