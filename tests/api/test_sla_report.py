"""GET /v1/reports/sla and its CSV and XLSX exports, on read-model rows whose times
the test sets (a request type of its own, in 2020, so the shared database's other
requests never count), and the step rows a real workflow writes."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import RequestRow, RequestStepRow
from domain.sla import percentile
from domain.sla_exports import COLUMNS, Column, Kind, SlaExportTable
from tests.support.api import submit_contract
from tests.support.workflows import eventually

Auth = Callable[[str], dict[str, str]]
H = timedelta(hours=1)
MON = datetime(2020, 3, 2, 4, tzinfo=UTC)  # 12:00 in Shanghai, ISO week 2020-W10
PERIOD = {"from": "2020-03-02", "to": "2020-03-15"}


def _request(rid: str, rtype: str, requester: str, **cols: Any) -> RequestRow:
    return RequestRow(
        id=rid,
        type=rtype,
        title=f"SLA {rid[:8]}",
        requester=requester,
        customer=None,
        amount=Decimal("1000.00"),
        fields={},
        policy_type=rtype,
        policy_version=1,
        route={"stages": []},
        status=cols.pop("status", "in_review"),
        **cols,
    )


def _step(
    rid: str, rtype: str, requester: str, index: int, key: str, **cols: Any
) -> RequestStepRow:
    return RequestStepRow(
        request_id=rid,
        stage_index=index,
        stage_key=key,
        request_type=rtype,
        requester=requester,
        status=cols.pop("status", "approved"),
        escalations=cols.pop("escalations", 0),
        **cols,
    )


@pytest.fixture(scope="module")
async def sla_type(db_sessions: async_sessionmaker[AsyncSession], demo_org: None) -> str:
    """Four requests of a type of their own (see the module's figures)::

    R1 am_li   review 2h (due 4h)       sign 10h (due 8h: breach), 1 escalation
    R2 am_li   review 4h (due 8h)       sign 20h (due 8h: breach), 2 escalations,
               resolved after its resolve due
    R3 fin_he  review 6h (due 8h)       sign open past its due; open past resolve due
    R4 am_li   review 8h (no due), rejected
    """
    rtype = f"sla_{uuid.uuid4().hex[:10]}"
    r1, r2, r3, r4 = (str(uuid.uuid4()) for _ in range(4))
    w2 = MON + timedelta(days=7)
    async with db_sessions() as s:
        s.add_all(
            [
                _request(r1, rtype, "am_li", status="approved", created_at=MON,
                         closed_at=MON + 12 * H, resolve_due=MON + 24 * H),
                _request(r2, rtype, "am_li", status="approved", created_at=MON + 24 * H,
                         closed_at=MON + 48 * H, resolve_due=MON + 44 * H),
                _request(r3, rtype, "fin_he", created_at=w2, stage_index=1, stage_key="sign",
                         current_approvers=["fh_gao"], resolve_due=w2 + 72 * H),
                _request(r4, rtype, "am_li", status="rejected", created_at=w2 + 24 * H,
                         closed_at=w2 + 32 * H),
            ]
        )  # fmt: skip
        await s.flush()
        d2 = MON + 24 * H
        s.add_all(
            [
                _step(r1, rtype, "am_li", 0, "review", started_at=MON,
                      decided_at=MON + 2 * H, reply_due=MON + 4 * H),
                _step(r1, rtype, "am_li", 1, "sign", started_at=MON + 2 * H,
                      decided_at=MON + 12 * H, reply_due=MON + 10 * H, escalations=1),
                _step(r2, rtype, "am_li", 0, "review", started_at=d2,
                      decided_at=d2 + 4 * H, reply_due=d2 + 8 * H),
                _step(r2, rtype, "am_li", 1, "sign", started_at=d2 + 4 * H,
                      decided_at=d2 + 24 * H, reply_due=d2 + 12 * H, escalations=2),
                _step(r3, rtype, "fin_he", 0, "review", started_at=w2,
                      decided_at=w2 + 6 * H, reply_due=w2 + 8 * H),
                _step(r3, rtype, "fin_he", 1, "sign", status="active",
                      started_at=w2 + 6 * H, reply_due=w2 + 14 * H),
                _step(r4, rtype, "am_li", 0, "review", status="rejected",
                      started_at=w2 + 24 * H, decided_at=w2 + 32 * H),
            ]
        )  # fmt: skip
        await s.commit()
    return rtype


async def _report(api: httpx.AsyncClient, auth: Auth, user: str, **params: str) -> Any:
    resp = await api.get("/v1/reports/sla", params=params, headers=auth(user))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _rows(report: Any) -> dict[str | None, dict[str, Any]]:
    return {r["stage_key"]: r for r in report["rows"]}


async def test_medians_p90_breaches_and_escalations_per_type_and_stage(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    report = await _report(api, auth, "auditor_qin", type=sla_type, **PERIOD)
    rows = _rows(report)
    assert list(rows) == [None, "review", "sign"]
    review, sign, total = rows["review"], rows["sign"], rows[None]
    assert (review["steps"], review["decided"]) == (4, 4)
    # Nearest rank (percentile_disc): each figure is one step's own time, 2, 4, 6, 8 h.
    assert Decimal(review["median_hours"]) == Decimal("4.00")
    assert Decimal(review["p90_hours"]) == Decimal("8.00")
    assert (review["reply_breaches"], Decimal(review["reply_breach_rate"])) == (0, Decimal(0))
    assert (sign["steps"], sign["decided"], sign["escalations"]) == (3, 2, 3)
    assert (Decimal(sign["median_hours"]), Decimal(sign["p90_hours"])) == (10, 20)
    # R1 and R2 decided late, R3 is still open past its due.
    assert (sign["reply_breaches"], Decimal(sign["reply_breach_rate"])) == (3, 100)
    assert (total["steps"], total["decided"], total["escalations"]) == (7, 6, 3)
    # The database's percentile_disc and domain.sla.percentile agree: 6 h and 20 h.
    durations = [2.0, 4.0, 6.0, 8.0, 10.0, 20.0]
    assert float(total["median_hours"]) == percentile(durations, 0.5) == 6
    assert float(total["p90_hours"]) == percentile(durations, 0.9) == 20
    assert (total["reply_breaches"], Decimal(total["reply_breach_rate"])) == (3, 50)
    assert (total["submitted"], total["resolved"]) == (4, 3)
    # R2 resolved late, R3 open past its due; R4 has no due.
    assert (total["resolve_breaches"], Decimal(total["resolve_breach_rate"])) == (
        2,
        Decimal("66.7"),
    )
    assert review["submitted"] is None


async def test_trend_by_iso_week_and_the_slowest_open_request(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    report = await _report(api, auth, "admin", type=sla_type, **PERIOD)
    weeks = {w["week"]: w for w in report["weeks"]}
    assert list(weeks) == ["2020-W10", "2020-W11"]
    w10, w11 = weeks["2020-W10"], weeks["2020-W11"]
    assert (w10["steps"], w10["decided"], w10["reply_breaches"], w10["escalations"]) == (4, 4, 2, 3)
    # 2, 4, 10 and 20 h: the nearest-rank median is the second, 4 h.
    assert Decimal(w10["median_hours"]) == 4
    assert (w11["steps"], w11["decided"], w11["reply_breaches"]) == (3, 2, 1)
    (slow,) = report["slowest_open"]
    assert (slow["requester"], slow["stage_key"], slow["waiting_on"]) == (
        "fin_he",
        "sign",
        ["fh_gao"],
    )
    assert slow["reply_due"].startswith("2020-03-09T18:00")


async def test_a_period_outside_the_steps_counts_nothing(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    report = await _report(
        api, auth, "admin", type=sla_type, **{"from": "2020-04-01"}, to="2020-04-30"
    )
    assert report["rows"] == [] and report["weeks"] == []


async def test_the_department_filter_counts_its_peoples_requests_only(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    # sh_zhou heads am_li; fin_he reports to fh_gao.
    mine = _rows(await _report(api, auth, "sh_zhou", type=sla_type, **PERIOD))
    assert (mine[None]["steps"], mine[None]["submitted"], mine[None]["resolve_breaches"]) == (
        5,
        3,
        1,
    )
    asked = _rows(
        await _report(api, auth, "auditor_qin", type=sla_type, department="fh_gao", **PERIOD)
    )
    assert (asked[None]["steps"], asked[None]["submitted"]) == (2, 1)
    # The department reaches down the chain: sd_chen > dsd_liu > sh_zhou > am_li.
    above = _rows(await _report(api, auth, "sd_chen", type=sla_type, **PERIOD))
    assert above[None]["steps"] == 5


@pytest.mark.parametrize(
    ("user", "params"),
    [
        ("am_li", {}),  # manages no one
        ("sh_zhou", {"department": "fh_gao"}),  # another department
        ("sh_zhou", {"department": "dsd_liu"}),  # their own manager's
    ],
)
async def test_who_may_not_see_it_gets_403_json(
    api: httpx.AsyncClient, auth: Auth, user: str, params: dict[str, str]
) -> None:
    for path in ("/v1/reports/sla", "/v1/reports/sla.csv", "/v1/reports/sla.xlsx"):
        resp = await api.get(path, params=params, headers=auth(user))
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2020-03-10", "to": "2020-03-01"},
        {"from": "2019-01-01", "to": "2020-03-01"},
        {"from": "2019-01-01"},  # to today
        {"from": "2999-01-01"},  # after today
        {"from": "yesterday"},
        {"type": "Bad Type!"},
        {"top": "0"},
        {"unknown": "1"},
    ],
)
async def test_bad_filters_are_422_json(
    api: httpx.AsyncClient, auth: Auth, params: dict[str, str]
) -> None:
    resp = await api.get("/v1/reports/sla", params=params, headers=auth("admin"))
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "validation_error"


async def test_unauthenticated_is_401(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/reports/sla")).status_code == 401


async def test_csv_and_xlsx_carry_the_same_rows_with_chinese_headers_for_zh_cn(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    params = {"type": sla_type, **PERIOD}
    zh = auth("auditor_qin") | {"Accept-Language": "zh-CN"}
    report = await _report(api, auth, "auditor_qin", **params)
    resp = await api.get("/v1/reports/sla.csv", params=params, headers=zh)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="sla-2020-03-02-2020-03-15.csv"' in resp.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["申请类型", "类型名称", "环节代码", "环节"]
    sign_csv = next(r for r in table[1:] if r[2] == "sign")
    sign_json = _rows(report)["sign"]
    assert Decimal(sign_csv[6]) == Decimal(sign_json["median_hours"])
    assert (int(sign_csv[8]), Decimal(sign_csv[9])) == (3, Decimal(100))

    resp = await api.get("/v1/reports/sla.xlsx", params=params, headers=auth("auditor_qin"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="sla-2020-03-02-2020-03-15.xlsx"' in resp.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(resp.content)).active
    assert sheet is not None
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0][:4] == ["Request type", "Type", "Stage key", "Stage"]
    assert len(cells) == len(table)
    total = next(r for r in cells[1:] if r[2] is None)
    assert total[4:8] == [7, 6, 6.0, 20.0]
    assert (total[13], total[14]) == (2, 66.7)
    for xlsx_row, csv_row in zip(cells[1:], table[1:], strict=True):
        assert [("" if v is None else str(v)) for v in xlsx_row[:3]] == csv_row[:3]
        for x, c in zip(xlsx_row[4:], csv_row[4:], strict=True):
            assert (x is None and c == "") or Decimal(str(x)) == Decimal(c)


async def test_a_workflow_writes_its_steps_start_due_and_decision(
    api: httpx.AsyncClient,
    auth: Auth,
    worker: None,
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid = await submit_contract(api, auth, "SLA steps")

    async def steps() -> list[RequestStepRow]:
        async with db_sessions() as s:
            found = await s.execute(
                select(RequestStepRow)
                .where(RequestStepRow.request_id == rid)
                .order_by(RequestStepRow.stage_index)
            )
            return list(found.scalars())

    (first,) = await steps()
    assert (first.stage_key, first.status, first.requester) == (
        "big_customer_dept_sign",
        "active",
        "am_li",
    )
    assert first.decided_at is None and first.reply_due is not None
    resp = await api.post(
        f"/v1/requests/{rid}/decisions",
        json={"action": "approve", "comment": "ok"},
        headers=auth("bcd_zheng"),
    )
    assert resp.status_code == 200, resp.text

    async def second_started() -> bool:
        return len(await steps()) == 2

    await eventually(second_started)
    first, second = await steps()
    assert first.status == "approved" and first.decided_at is not None
    assert first.decided_at >= first.started_at
    assert (second.status, second.decided_at) == ("active", None)
    assert datetime.now(UTC) - first.decided_at < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("admin", {"sla": True, "department": None, "any_department": True}),
        ("auditor_qin", {"sla": True, "department": None, "any_department": True}),
        ("sh_zhou", {"sla": True, "department": "sh_zhou", "any_department": False}),
        ("am_li", {"sla": False, "department": None, "any_department": False}),
    ],
)
async def test_my_reports_says_who_may_see_the_sla_report(
    api: httpx.AsyncClient, auth: Auth, user: str, expected: dict[str, Any]
) -> None:
    resp = await api.get("/v1/reports", headers=auth(user))
    assert resp.status_code == 200, resp.text
    assert resp.json() == expected


# --- the exports: every table of the page, as CSV and as the XLSX's sheets ---------

TABLES = {"rows": "rows", "weeks": "weeks", "open": "slowest_open"}
"""The CSV's ``table`` and the JSON's key of the same part."""


def _same_cell(column: Column, exported: object, shown: Any, zone: ZoneInfo) -> bool:
    """Whether a cell (CSV text, or an XLSX value) says what the JSON says."""
    if shown is None:
        return exported in ("", None)
    if column.kind in (Kind.COUNT, Kind.HOURS, Kind.PERCENT, Kind.MONEY):
        got = Decimal(str(exported))
        if column.field == "open_hours":  # counted at each answer's own `now`
            return abs(got - Decimal(shown)) < Decimal("0.1")
        return got == Decimal(str(shown))
    if column.kind is Kind.DAY:
        day = exported.date() if isinstance(exported, datetime) else exported
        return str(day) == shown
    if column.kind is Kind.TIME:
        wall = datetime.fromisoformat(shown).astimezone(zone).replace(tzinfo=None)
        return exported == wall or exported == wall.isoformat(sep=" ", timespec="seconds")
    if isinstance(shown, list):
        return exported == ", ".join(shown)
    return exported == shown


def _assert_table_matches(
    table: str, headers: list[Any], cells: list[list[Any]], report: Any, lang: str
) -> None:
    columns = COLUMNS[SlaExportTable(table)]
    items = report[TABLES[table]]
    assert items, table  # the fixture's rows fill every table
    # Every field the JSON carries is a column, in the JSON's order.
    assert [c.field for c in columns] == list(items[0])
    assert headers == [c.header(lang) for c in columns]
    assert len(cells) == len(items)
    zone = ZoneInfo("Asia/Shanghai")
    for exported, shown in zip(cells, items, strict=True):
        for column, value in zip(columns, exported, strict=True):
            assert _same_cell(column, value, shown[column.field], zone), (column, value, shown)


@pytest.mark.parametrize("table", ["rows", "weeks", "open"])
async def test_each_csv_table_carries_what_the_json_shows(
    api: httpx.AsyncClient, auth: Auth, sla_type: str, table: str
) -> None:
    params = {"type": sla_type, **PERIOD}
    report = await _report(api, auth, "auditor_qin", **params)
    resp = await api.get(
        "/v1/reports/sla.csv", params={**params, "table": table}, headers=auth("auditor_qin")
    )
    assert resp.status_code == 200, resp.text
    stem = "sla" if table == "rows" else f"sla-{table}"
    assert f'filename="{stem}-2020-03-02-2020-03-15.csv"' in resp.headers["content-disposition"]
    head, *body = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    _assert_table_matches(table, head, body, report, "en")


async def test_the_csv_of_the_slowest_open_request_reads_in_shanghai_time(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    params = {"type": sla_type, "table": "open", **PERIOD}
    resp = await api.get("/v1/reports/sla.csv", params=params, headers=auth("admin"))
    (row,) = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    # The reply due 2020-03-09T18:00Z is 02:00 the next morning in Shanghai.
    assert (row["Reply due"], row["Waiting on"], row["Amount"]) == (
        "2020-03-10 02:00:00",
        "fh_gao",
        "1000.00",
    )


async def test_the_xlsx_has_a_sheet_per_table_with_the_values_of_the_json(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    params = {"type": sla_type, **PERIOD}
    report = await _report(api, auth, "admin", **params)
    resp = await api.get("/v1/reports/sla.xlsx", params=params, headers=auth("admin"))
    assert resp.status_code == 200, resp.text
    book = load_workbook(io.BytesIO(resp.content))
    assert book.sheetnames == ["By type and stage", "Trend by week", "Slowest open requests"]
    for table, sheet in zip(TABLES, book.worksheets, strict=True):
        head, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
        _assert_table_matches(table, head, body, report, "en")
        assert sheet.freeze_panes == "A2"
        # Every column is at least as wide as its header.
        for index, header in enumerate(head, start=1):
            width = sheet.column_dimensions[get_column_letter(index)].width
            assert width >= len(header), (table, header)
    weeks, slow = book.worksheets[1], book.worksheets[2]
    # Numbers and days are typed cells with their formats, not text.
    assert weeks["B2"].value == datetime(2020, 3, 2) and weeks["B2"].number_format == "yyyy-mm-dd"
    assert (weeks["E2"].value, weeks["E2"].number_format) == (4, "0.00")
    assert (slow["E2"].value, slow["E2"].number_format) == (1000.0, "#,##0.00")
    assert slow["L2"].value == datetime(2020, 3, 10, 2, 0)
    assert slow["L2"].number_format == "yyyy-mm-dd hh:mm"


async def test_a_zh_cn_reader_gets_chinese_sheet_names_and_headers(
    api: httpx.AsyncClient, auth: Auth, sla_type: str
) -> None:
    params = {"type": sla_type, **PERIOD}
    zh = auth("auditor_qin") | {"Accept-Language": "zh-CN"}
    report = (await api.get("/v1/reports/sla", params=params, headers=zh)).json()
    resp = await api.get("/v1/reports/sla.xlsx", params=params, headers=zh)
    book = load_workbook(io.BytesIO(resp.content))
    assert book.sheetnames == ["按类型和环节", "按周趋势", "最慢的未结申请"]
    for table, sheet in zip(TABLES, book.worksheets, strict=True):
        head, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
        _assert_table_matches(table, head, body, report, "zh-CN")
    assert [c.value for c in book.worksheets[1][1]][:2] == ["ISO 周", "周起始日（周一）"]
    for table in ("weeks", "open"):
        resp = await api.get("/v1/reports/sla.csv", params={**params, "table": table}, headers=zh)
        head, *body = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
        _assert_table_matches(table, head, body, report, "zh-CN")
    assert head[:4] == ["申请编号", "申请类型", "标题", "申请人"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/reports/sla.csv", {"table": "nope"}),
        ("/v1/reports/sla.csv", {"table": ""}),
        ("/v1/reports/sla.xlsx", {"table": "weeks"}),  # the workbook has them all
        ("/v1/reports/sla", {"table": "rows"}),
    ],
)
async def test_a_table_the_export_does_not_have_is_422_naming_table(
    api: httpx.AsyncClient, auth: Auth, path: str, params: dict[str, str]
) -> None:
    resp = await api.get(path, params=params, headers=auth("admin"))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["details"]["fields"]] == ["table"]
