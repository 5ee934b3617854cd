"""Policy durations: calendar or working time, read from YAML, written back unchanged.

Old policies and stored workflow histories hold ``PT4H`` and ``P3D``: they must
read as calendar time and serialize byte-identically, and a ``Span`` must keep
behaving as the ``timedelta`` it is wherever the workflow adds one to an instant.
"""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from common.policy_store import PolicyError, load_policies, load_policy_file
from domain.durations import Span, SpanUnit
from domain.policy import Policy

ROOT = Path(__file__).resolve().parents[2]
SPAN: TypeAdapter[Span] = TypeAdapter(Span)
OLD: TypeAdapter[timedelta] = TypeAdapter(timedelta)


@pytest.mark.parametrize(
    ("text", "length", "working", "unit", "canonical"),
    [
        ("PT4H", timedelta(hours=4), False, SpanUnit.HOURS, "PT4H"),
        ("P3D", timedelta(days=3), False, SpanUnit.DAYS, "P3D"),
        ("P182D", timedelta(days=182), False, SpanUnit.DAYS, "P182D"),
        ("3 days", timedelta(days=3), False, SpanUnit.DAYS, "P3D"),
        ("4 hours", timedelta(hours=4), False, SpanUnit.HOURS, "PT4H"),
        ("1 day", timedelta(days=1), False, SpanUnit.DAYS, "P1D"),
        ("2 weeks", timedelta(days=14), False, SpanUnit.DAYS, "P14D"),
        ("PT4H working", timedelta(hours=4), True, SpanUnit.HOURS, "PT4H working"),
        ("P3D working", timedelta(days=3), True, SpanUnit.DAYS, "P3D working"),
        ("3 working days", timedelta(days=3), True, SpanUnit.DAYS, "P3D working"),
        ("1 working day", timedelta(days=1), True, SpanUnit.DAYS, "P1D working"),
        ("4 working hours", timedelta(hours=4), True, SpanUnit.HOURS, "PT4H working"),
        ("90 working minutes", timedelta(minutes=90), True, SpanUnit.HOURS, "PT1H30M working"),
        ("PT24H working", timedelta(days=1), True, SpanUnit.HOURS, "PT24H working"),
        ("  P3D  Working ", timedelta(days=3), True, SpanUnit.DAYS, "P3D working"),
    ],
)
def test_the_forms_a_policy_may_use(
    text: str, length: timedelta, working: bool, unit: SpanUnit, canonical: str
) -> None:
    span = SPAN.validate_python(text)
    assert isinstance(span, timedelta)
    assert timedelta(span.days, span.seconds, span.microseconds) == length
    assert (span.working, span.unit) == (working, unit)
    assert SPAN.dump_python(span, mode="json") == canonical
    assert SPAN.validate_python(canonical) == span


def test_24_working_hours_are_not_1_working_day() -> None:
    assert Span.parse("PT24H working") != Span.parse("P1D working")
    assert Span.parse("P3D working") != Span.parse("P3D")
    assert Span.parse("P3D") == timedelta(days=3)  # calendar spans compare as before
    assert hash(Span.parse("P3D")) == hash(timedelta(days=3))


def test_a_span_is_still_a_timedelta_for_the_workflow() -> None:
    start = datetime(2026, 11, 27, 17, tzinfo=UTC)
    # Until the workflow asks the calendar, a working span counts its length in calendar time.
    assert start + Span.parse("P3D working") == start + timedelta(days=3)
    assert start - Span.parse("P1D") == start - timedelta(days=1)
    assert Span.parse("PT4H working") > timedelta(0)


def test_copy_and_pickle_keep_the_kind_of_time() -> None:
    span = Span.parse("3 working days")
    assert pickle.loads(pickle.dumps(span)) == span
    assert pickle.loads(pickle.dumps(span)).working
    assert copy.deepcopy(span).unit is SpanUnit.DAYS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "is not a duration"),
        ("", "an empty duration"),
        ("3 working weeks", "working weeks are ambiguous; write working days"),
        ("P1DT2H working", "whole days .* or hours"),
        ("P1W working", "whole days .* or hours"),
        ("working", "is not a working-time duration"),
        ("3 days working", "is not a working-time duration"),
        ("-PT4H working", "is not a working-time duration"),
    ],
)
def test_garbage_is_refused_with_a_message_that_shows_the_forms(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        SPAN.validate_python(text)
    assert "working" in str(info.value)


def test_non_text_durations_are_read_as_before() -> None:
    assert SPAN.validate_python(timedelta(hours=2)) == timedelta(hours=2)
    assert SPAN.validate_python(3600) == timedelta(hours=1)  # seconds, as a timedelta reads
    with pytest.raises(ValidationError, match="must be text"):
        SPAN.validate_python([1, 2])


iso_lengths = st.builds(
    timedelta,
    days=st.integers(min_value=0, max_value=400),
    hours=st.integers(min_value=0, max_value=23),
    minutes=st.integers(min_value=0, max_value=59),
    seconds=st.integers(min_value=0, max_value=59),
)


@given(iso_lengths)
def test_calendar_spans_serialize_exactly_as_a_timedelta_did(length: timedelta) -> None:
    old = OLD.dump_python(length, mode="json")
    span = SPAN.validate_python(old)
    assert not span.working
    assert SPAN.dump_python(span, mode="json") == old
    assert span == length


@given(st.integers(min_value=0, max_value=10_000), st.booleans())
def test_working_spans_round_trip(n: int, days: bool) -> None:
    span = Span.parse(f"{n} working {'days' if days else 'minutes'}")
    text = SPAN.dump_python(span, mode="json")
    assert text.endswith(" working")
    again = SPAN.validate_python(text)
    assert again == span and again.unit == span.unit and again.working


@given(st.text(max_size=30))
def test_any_text_is_a_span_or_a_clear_refusal(text: str) -> None:
    try:
        span = SPAN.validate_python(text)
    except ValidationError as exc:
        assert "duration" in str(exc)
    else:
        assert SPAN.validate_python(SPAN.dump_python(span, mode="json")) == span


# -- policies -----------------------------------------------------------------------


def test_every_shipped_policy_round_trips_through_json_as_the_workflow_input_does() -> None:
    for policy in load_policies(ROOT / "policies").values():
        assert Policy.model_validate_json(policy.model_dump_json()) == policy
        timers = policy.model_dump(mode="json")["timers"]
        assert timers["resubmit"] == "P5D working"
        assert timers["reply"] == "PT4H working"
        assert timers["resolve"] in ("P3D", "P3D working")


def test_the_policies_mark_working_time_where_the_documents_say_so() -> None:
    policies = load_policies(ROOT / "policies")
    resolve = policies["special_discount"].timers.resolve
    assert resolve.working and resolve.unit is SpanUnit.DAYS
    assert resolve == Span.parse("3 working days")
    assert timedelta(resolve.days, resolve.seconds) == timedelta(days=3)  # length unchanged
    complaint = policies["customer_complaint"].timers
    assert complaint.reply == Span.parse("PT4H working")
    assert not complaint.resolve.working  # 三日内解决: calendar days
    deposit = policies["retail_bulk_discount"].milestones[0].due
    assert not deposit.working  # the 7-day deposit is calendar time


def test_every_human_deadline_counts_working_time_but_the_complaints_3_days() -> None:
    """Issue 14: a 4-hour reply due at 01:19 escalated every evening request overnight.
    Reply, resolve and resubmit count working time in every shipped policy; the one
    calendar-time exception is the complaint's resolve, which POLICIES.md keeps in days."""
    calendar_time = {
        (policy.type, clock)
        for policy in load_policies(ROOT / "policies").values()
        for clock in ("reply", "resolve", "resubmit")
        if not getattr(policy.timers, clock).working
    }
    assert calendar_time == {("customer_complaint", "resolve")}


def _policy_with(tmp_path: Path, reply: str) -> Path:
    text = (ROOT / "policies" / "customer_gift.yaml").read_text(encoding="utf-8")
    assert "  reply: PT4H working\n" in text
    path = tmp_path / "customer_gift.yaml"
    path.write_text(
        text.replace("  reply: PT4H working\n", f"  reply: {reply}\n"), encoding="utf-8"
    )
    return path


def test_a_bad_duration_in_a_policy_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = _policy_with(tmp_path, "4 workin hours")
    with pytest.raises(PolicyError) as info:
        load_policy_file(path)
    message = str(info.value)
    assert str(path) in message and "timers.reply" in message
    assert "not a duration" in message


def test_a_working_duration_in_a_policy_is_accepted(tmp_path: Path) -> None:
    policy = load_policy_file(_policy_with(tmp_path, "4 working hours"))
    assert policy.timers.reply == Span.parse("PT4H working")
    assert load_policy_file(_policy_with(tmp_path, "PT4H")).timers.reply == Span.parse("PT4H")


def test_a_zero_working_reply_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"timers.reply.*positive"):
        load_policy_file(_policy_with(tmp_path, "0 working hours"))


class _Holder(BaseModel):
    span: Span


def test_the_json_schema_says_a_string_of_either_kind() -> None:
    schema = _Holder.model_json_schema()["properties"]["span"]
    assert schema["type"] == "string"
    assert "PT4H working" in schema["examples"]


@pytest.mark.parametrize(
    ("policy", "line", "field"),
    [
        ("real_estate_group_purchase", "    remind_before: P1D\n", "remind_before"),
        ("overdue_receivable", "  review_after: P180D\n", "review_after"),
    ],
)
def test_working_time_where_only_calendar_time_counts_is_refused_naming_the_field(
    tmp_path: Path, policy: str, line: str, field: str
) -> None:
    """Never counted silently in calendar time when the file says working time."""
    text = (ROOT / "policies" / f"{policy}.yaml").read_text(encoding="utf-8")
    assert line in text, line
    path = tmp_path / f"{policy}.yaml"
    path.write_text(text.replace(line, line.rstrip("\n") + " working\n"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy_file(path)
    message = str(info.value)
    assert str(path) in message and field in message
    assert "working time is counted for reply, resolve, resubmit and milestone due only" in message


def test_a_working_milestone_due_is_accepted(tmp_path: Path) -> None:
    text = (ROOT / "policies" / "real_estate_group_purchase.yaml").read_text(encoding="utf-8")
    path = tmp_path / "real_estate_group_purchase.yaml"
    path.write_text(text.replace("    due: P7D\n", "    due: P7D working\n"), encoding="utf-8")
    policy = load_policy_file(path)
    assert policy.milestones[0].due == Span.parse("P7D working")


def test_a_working_span_reads_in_chinese_and_english() -> None:
    assert Span.parse("PT4H working").describe("zh-CN") == "4个工作小时"
    assert Span.parse("P3D working").describe("zh") == "3个工作日"
    assert Span.parse("P1D working").describe("en") == "1 working day"
    assert Span.parse("PT4H working").describe() == "4 working hours"
    # A span written back as people read it parses again, so a stored note translates.
    from domain.localize import span_text

    assert span_text("3 working days", "zh-CN") == "3个工作日"
    assert span_text("not a span", "zh-CN") == "not a span"
