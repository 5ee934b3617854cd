"""The SLA report's exports: its three tables as the CSV and XLSX carry them (pure).

The report (``domain.sla``) has three parts: the rows by type and stage, the trend by
ISO week and the slowest open requests. Each becomes a table here: its columns (the
report's fields, in the report's order), the headers in the reader's language, the
sheet's name, and the cells. Numbers stay numbers (``int`` or ``Decimal``), days stay
``date``; instants become the wall time of the deployment's time zone (the zone the
report's days are counted in), without an offset, as a spreadsheet holds a time.
The API writes the tables out (``csv``, ``openpyxl``); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum


class SlaExportTable(StrEnum):
    """The report's parts, by the name the CSV's ``table`` parameter takes."""

    ROWS = "rows"
    WEEKS = "weeks"
    OPEN = "open"


class Kind(StrEnum):
    """What a column holds: the XLSX chooses its number format and width from it."""

    TEXT = "text"
    COUNT = "count"
    HOURS = "hours"
    """Hours, two decimals."""
    PERCENT = "percent"
    """Percent, one decimal."""
    MONEY = "money"
    DAY = "day"
    TIME = "time"


@dataclass(frozen=True)
class Column:
    """One column of an export: the report's field, its header in en and zh-CN."""

    field: str
    en: str
    zh: str
    kind: Kind = Kind.TEXT

    def header(self, lang: str) -> str:
        """The header in ``lang`` (Chinese for zh-CN, else English)."""
        return self.zh if lang == "zh-CN" else self.en


Cell = str | int | Decimal | date | datetime | None
"""A cell's value: a ``datetime`` is the deployment's wall time (naive)."""

_TYPE = Column("request_type", "Request type", "申请类型")
_STAGE_KEY = Column("stage_key", "Stage key", "环节代码")
_STAGE = Column("stage_name", "Stage", "环节")
_STEPS = Column("steps", "Steps started", "开始的环节数", Kind.COUNT)
_DECIDED = Column("decided", "Decided", "已决定", Kind.COUNT)
_MEDIAN = Column("median_hours", "Median hours to decide", "决定时长中位数（小时）", Kind.HOURS)
_P90 = Column("p90_hours", "P90 hours to decide", "决定时长P90（小时）", Kind.HOURS)
_REPLY_BREACHES = Column("reply_breaches", "Reply breaches", "回复超时数", Kind.COUNT)
_ESCALATIONS = Column("escalations", "Escalations", "升级次数", Kind.COUNT)

ROW_COLUMNS: tuple[Column, ...] = (
    _TYPE,
    Column("type_title", "Type", "类型名称"),
    _STAGE_KEY,
    _STAGE,
    _STEPS,
    _DECIDED,
    _MEDIAN,
    _P90,
    _REPLY_BREACHES,
    Column("reply_breach_rate", "Reply breach rate %", "回复超时率 %", Kind.PERCENT),
    _ESCALATIONS,
    Column("submitted", "Requests submitted", "提交的申请数", Kind.COUNT),
    Column("resolved", "Requests resolved", "已办结的申请数", Kind.COUNT),
    Column("resolve_breaches", "Resolve breaches", "办结超时数", Kind.COUNT),
    Column("resolve_breach_rate", "Resolve breach rate %", "办结超时率 %", Kind.PERCENT),
)
"""The rows by type and stage (``domain.sla.ReportRow``)."""

WEEK_COLUMNS: tuple[Column, ...] = (
    Column("week", "ISO week", "ISO 周"),
    Column("week_start", "Week starts (Monday)", "周起始日（周一）", Kind.DAY),
    _STEPS,
    _DECIDED,
    _MEDIAN,
    _P90,
    _REPLY_BREACHES,
    _ESCALATIONS,
)
"""The trend by ISO week (``domain.sla.WeekRow``)."""

OPEN_COLUMNS: tuple[Column, ...] = (
    Column("id", "Request id", "申请编号"),
    _TYPE,
    Column("title", "Title", "标题"),
    Column("requester", "Requester", "申请人"),
    Column("amount", "Amount", "金额", Kind.MONEY),
    _STAGE_KEY,
    _STAGE,
    Column("waiting_on", "Waiting on", "等待处理人"),
    Column("submitted_at", "Submitted at", "提交时间", Kind.TIME),
    Column("open_hours", "Open hours", "已开启时长（小时）", Kind.HOURS),
    Column("step_started_at", "Stage started at", "环节开始时间", Kind.TIME),
    Column("reply_due", "Reply due", "回复期限", Kind.TIME),
    Column("resolve_due", "Resolve due", "办结期限", Kind.TIME),
)
"""The slowest open requests (``domain.sla.OpenRow``)."""

COLUMNS: dict[SlaExportTable, tuple[Column, ...]] = {
    SlaExportTable.ROWS: ROW_COLUMNS,
    SlaExportTable.WEEKS: WEEK_COLUMNS,
    SlaExportTable.OPEN: OPEN_COLUMNS,
}

SHEET_NAMES: dict[SlaExportTable, tuple[str, str]] = {
    # (en, zh-CN): the page's section titles; a sheet's name has at most 31 characters.
    SlaExportTable.ROWS: ("By type and stage", "按类型和环节"),
    SlaExportTable.WEEKS: ("Trend by week", "按周趋势"),
    SlaExportTable.OPEN: ("Slowest open requests", "最慢的未结申请"),
}


@dataclass(frozen=True)
class Sheet:
    """One table of the export, ready to be written out."""

    table: SlaExportTable
    name: str
    columns: tuple[Column, ...]
    headers: list[str]
    rows: list[list[Cell]]


def sheet_name(table: SlaExportTable, lang: str) -> str:
    """The table's sheet name in ``lang``."""
    en, zh = SHEET_NAMES[table]
    return zh if lang == "zh-CN" else en


def export_headers(lang: str, table: SlaExportTable = SlaExportTable.ROWS) -> list[str]:
    """A table's column headers in ``lang`` (Chinese for zh-CN, else English)."""
    return [c.header(lang) for c in COLUMNS[table]]


def cell(value: object, zone: tzinfo) -> Cell:
    """A field's value as a cell: instants as ``zone``'s wall time, lists joined."""
    if isinstance(value, datetime):
        return value.astimezone(zone).replace(tzinfo=None)
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if value is None or isinstance(value, str | int | Decimal | date):
        return value
    raise TypeError(f"no cell for {type(value).__name__}")


def export_values(item: object, columns: Sequence[Column], zone: tzinfo) -> list[Cell]:
    """``item``'s cells in ``columns`` order (numbers stay numbers)."""
    return [cell(getattr(item, c.field), zone) for c in columns]


def export_sheet(table: SlaExportTable, items: Sequence[object], lang: str, zone: tzinfo) -> Sheet:
    """The table ``table`` of the report's ``items`` (its rows, weeks or open requests)."""
    columns = COLUMNS[table]
    return Sheet(
        table=table,
        name=sheet_name(table, lang),
        columns=columns,
        headers=[c.header(lang) for c in columns],
        rows=[export_values(item, columns, zone) for item in items],
    )


def csv_text(value: Cell) -> str:
    """A cell as the CSV writes it: empty for none, times to the second, ISO days."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
