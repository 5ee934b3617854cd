"""The SLA report's pure shaping: percentiles as PostgreSQL's ``percentile_disc``, rates,
ISO weeks, rows, and the exports' tables."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from domain.sla import (
    OpenRequest,
    OpenRow,
    ReportRow,
    RequestFigures,
    StepFigures,
    WeekFigures,
    WeekRow,
    hours,
    iso_week,
    open_rows,
    percentile,
    rate,
    report_rows,
    week_rows,
)
from domain.sla_exports import (
    COLUMNS,
    SlaExportTable,
    cell,
    csv_text,
    export_headers,
    export_sheet,
    sheet_name,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([3.0], 0.9, 3.0),
        ([2, 4, 6, 8], 0.5, 4.0),
        ([2, 4, 6, 8], 0.9, 8.0),
        ([2, 4, 6, 8, 10], 0.5, 6.0),
        ([10, 20], 0.9, 20.0),
        ([8, 2, 6, 4], 0.0, 2.0),
        ([8, 2, 6, 4], 1.0, 8.0),
    ],
)
def test_percentile_is_the_nearest_rank_like_percentile_disc(
    values: list[float], q: float, expected: float | None
) -> None:
    got = percentile(values, q)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_percentile_refuses_a_quantile_outside_0_to_1() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)


def test_rates_are_percent_with_one_decimal_and_none_without_a_whole() -> None:
    assert rate(2, 3) == Decimal("66.7")
    assert rate(0, 5) == Decimal("0.0")
    assert rate(1, 0) is None


def test_hours_have_two_decimals() -> None:
    assert hours(26640) == Decimal("7.40")
    assert hours(None) is None


def test_iso_weeks_cross_the_year_as_iso_counts_them() -> None:
    assert iso_week(date(2020, 3, 2)) == "2020-W10"
    assert iso_week(date(2021, 1, 3)) == "2020-W53"
    assert iso_week(date(2024, 12, 30)) == "2025-W01"


def test_rows_put_each_types_total_first_then_its_stages_in_route_order() -> None:
    steps = [
        StepFigures("b", "sign", 1, 1, 1, 3600.0, 3600.0, 1, 1, 0),
        StepFigures("b", "review", 0, 2, 2, 7200.0, 7200.0, 2, 0, 1),
        StepFigures("b", None, None, 3, 3, 3600.0, 7200.0, 3, 1, 1),
    ]
    requests = [RequestFigures("a", 1, 0, 1, 1), RequestFigures("b", 2, 2, 2, 0)]
    rows = report_rows(steps, requests, {"b": "Type B"}, {("b", "sign"): "Sign"}, "All")
    assert [(r.request_type, r.stage_key, r.stage_name) for r in rows] == [
        ("a", None, "All"),
        ("b", None, "All"),
        ("b", "review", "review"),
        ("b", "sign", "Sign"),
    ]
    a, b = rows[0], rows[1]
    assert (a.steps, a.resolve_breach_rate, a.reply_breach_rate) == (0, Decimal(100), None)
    assert (b.type_title, b.reply_breach_rate, b.submitted) == ("Type B", Decimal("33.3"), 2)
    assert rows[2].submitted is None


def test_export_headers_are_chinese_for_zh_cn_only() -> None:
    assert export_headers("zh-CN")[0] == "申请类型"
    assert export_headers("en")[0] == "Request type"


# --- the exports' tables ------------------------------------------------------------

UTC8 = timezone(timedelta(hours=8))
seconds = st.none() | st.floats(min_value=0, max_value=10**8, allow_nan=False)
counts = st.integers(min_value=0, max_value=10**6)
weeks_figures = st.lists(
    st.builds(
        WeekFigures,
        week_start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
        steps=counts,
        decided=counts,
        median_seconds=seconds,
        p90_seconds=seconds,
        reply_breaches=counts,
        escalations=counts,
    ),
    max_size=8,
)


@given(figures=weeks_figures, lang=st.sampled_from(["en", "zh-CN"]))
def test_every_weekly_row_of_the_json_appears_in_the_export_with_the_same_numbers(
    figures: list[WeekFigures], lang: str
) -> None:
    rows = week_rows(figures)
    shown = TypeAdapter(list[WeekRow]).dump_python(rows, mode="json")  # as the API serves them
    sheet = export_sheet(SlaExportTable.WEEKS, rows, lang, UTC8)
    assert len(sheet.rows) == len(shown)
    for cells, week in zip(sheet.rows, shown, strict=True):
        exported = dict(zip([c.field for c in sheet.columns], cells, strict=True))
        assert set(exported) == set(week)  # every field, none more
        assert (
            exported["week"] == week["week"] and str(exported["week_start"]) == week["week_start"]
        )
        for field in ("steps", "decided", "reply_breaches", "escalations"):
            assert isinstance(exported[field], int) and exported[field] == week[field]
        for field in ("median_hours", "p90_hours"):
            value = exported[field]
            assert (value is None and week[field] is None) or (
                isinstance(value, Decimal) and value == Decimal(week[field])
            )
        assert [csv_text(v) for v in cells] == [
            "" if week[c.field] is None else str(week[c.field]) for c in sheet.columns
        ]


@given(
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
    ),
    zone=st.timezones(),
)
def test_an_instant_becomes_the_wall_time_of_the_deployments_zone(
    at: datetime, zone: ZoneInfo
) -> None:
    wall = cell(at, zone)
    assert isinstance(wall, datetime) and wall.tzinfo is None
    # The same instant: in the hour a clock goes back, the later of the two readings.
    local = wall.replace(tzinfo=zone, fold=at.astimezone(zone).fold)
    assert local.astimezone(UTC) == at.astimezone(UTC)


def test_the_slowest_open_requests_table_carries_every_field_in_shanghai_time() -> None:
    submitted = datetime(2020, 3, 9, 4, tzinfo=UTC)
    request = OpenRequest(
        id="r1",
        request_type="contract",
        title="Big deal",
        requester="am_li",
        amount=Decimal("1000.00"),
        stage_key="sign",
        waiting_on=("fh_gao", "bcd_zheng"),
        submitted_at=submitted,
        step_started_at=submitted + timedelta(hours=6),
        reply_due=submitted + timedelta(hours=14),
        resolve_due=None,
    )
    (row,) = open_rows([request], submitted + timedelta(hours=30), {("contract", "sign"): "Sign"})
    assert (row.stage_name, row.open_hours) == ("Sign", Decimal("30.00"))
    sheet = export_sheet(SlaExportTable.OPEN, [row], "zh-CN", ZoneInfo("Asia/Shanghai"))
    assert sheet.name == "最慢的未结申请"
    assert sheet.headers[:4] == ["申请编号", "申请类型", "标题", "申请人"]
    assert sheet.rows == [
        [
            "r1",
            "contract",
            "Big deal",
            "am_li",
            Decimal("1000.00"),
            "sign",
            "Sign",
            "fh_gao, bcd_zheng",
            datetime(2020, 3, 9, 12),
            Decimal("30.00"),
            datetime(2020, 3, 9, 18),
            datetime(2020, 3, 10, 2),
            None,
        ]
    ]
    assert [csv_text(v) for v in sheet.rows[0]][8:] == [
        "2020-03-09 12:00:00",
        "30.00",
        "2020-03-09 18:00:00",
        "2020-03-10 02:00:00",
        "",
    ]
    # A request waiting in no stage (between stages) has no stage name.
    (between,) = open_rows([replace(request, stage_key=None)], submitted, {})
    assert (between.stage_name, between.open_hours) == (None, Decimal("0.00"))


@pytest.mark.parametrize(
    ("table", "row_type"),
    [
        (SlaExportTable.ROWS, ReportRow),
        (SlaExportTable.WEEKS, WeekRow),
        (SlaExportTable.OPEN, OpenRow),
    ],
)
def test_each_table_has_a_column_per_field_of_its_row_and_names_in_both_languages(
    table: SlaExportTable, row_type: type
) -> None:
    assert [c.field for c in COLUMNS[table]] == [f.name for f in fields(row_type)]
    for lang in ("en", "zh-CN"):
        headers = export_headers(lang, table)
        assert len(set(headers)) == len(headers) and all(headers)
        name = sheet_name(table, lang)
        # What Excel allows a sheet's name.
        assert 0 < len(name) <= 31 and not set(name) & set("[]:*?/\\")
    assert export_headers("zh-CN", table) != export_headers("en", table)


def test_a_value_no_cell_can_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="no cell for dict"):
        cell({}, UTC8)
