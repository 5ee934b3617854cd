"""The SLA report's pure shaping: percentiles as PostgreSQL's ``percentile_disc``, rates,
ISO weeks, rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.sla import (
    RequestFigures,
    StepFigures,
    export_headers,
    hours,
    iso_week,
    percentile,
    rate,
    report_rows,
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
