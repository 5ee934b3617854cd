"""``/v1/reports/sla``: how approvals perform, for managers, admins and auditors.

JSON, CSV and XLSX carry the same report (``domain.sla`` shapes it, its tables for
the exports are ``domain.sla_exports``); the figures are read from the read-model
(``db.sla``).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import (
    CurrentUser,
    LanguageDep,
    PoliciesDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
)
from api.errors import ApiError, field_errors, responses
from common.settings import Settings
from db import sla
from db.directory import DirectoryUser
from db.request_queries import AUDITOR_ROLE
from domain import sla as shaping
from domain import sla_exports as exports
from domain.errors import ErrorCode
from domain.inbound import Id
from domain.localize import stage_name
from domain.policy import Policy
from domain.sla_exports import Kind, SlaExportTable
from domain.text import Language, text_in

router = APIRouter(prefix="/v1/reports", tags=["reports"])

MAX_DAYS = 366
DEFAULT_DAYS = 28
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ALL_STAGES = {"en": "All stages", "zh-CN": "全部环节"}


class SlaParams(BaseModel):
    """The report's filters, as the query string carries them."""

    model_config = {"extra": "forbid"}

    from_: date | None = Field(
        default=None, alias="from", description="First day (inclusive); default 28 days ago."
    )
    to: date | None = Field(
        default=None,
        description=f"Last day (inclusive); default today. At most {MAX_DAYS} days from `from`.",
    )
    department: Id | None = Field(
        default=None,
        description="A department, named by its head's user id: requests of the people "
        "whose manager chain leads to them. Managers may ask only for their own.",
    )
    type: Id | None = Field(default=None, description="One request type.")
    top: int = Field(default=10, ge=1, le=100, description="How many slowest open requests.")


SlaQuery = Annotated[SlaParams, Query()]


class SlaCsvParams(SlaParams):
    """The report's filters and which of its tables the CSV carries."""

    table: SlaExportTable = Field(
        default=SlaExportTable.ROWS,
        description="`rows`: by type and stage; `weeks`: the trend by ISO week; "
        "`open`: the slowest open requests.",
    )


SlaCsvQuery = Annotated[SlaCsvParams, Query()]


# The report's parts are the domain's dataclasses, served through pydantic: one list of
# fields, and the schema keeps the names clients are generated from.


@pydantic_dataclass(frozen=True)
class SlaRowOut(shaping.ReportRow):
    pass


@pydantic_dataclass(frozen=True)
class SlaWeekOut(shaping.WeekRow):
    pass


@pydantic_dataclass(frozen=True)
class SlaOpenOut(shaping.OpenRow):
    pass


class SlaReport(BaseModel):
    start: date
    end: date
    department: str | None
    type: str | None
    generated_at: datetime
    rows: list[SlaRowOut]
    weeks: list[SlaWeekOut]
    slowest_open: list[SlaOpenOut]


def _forbidden(message: str) -> ApiError:
    return ApiError(403, ErrorCode.FORBIDDEN.value, message)


def _sees_all(user: DirectoryUser) -> bool:
    return user.is_admin or AUDITOR_ROLE in user.roles


async def _department_in_scope(
    user: DirectoryUser, session: AsyncSession, asked: str | None
) -> str | None:
    """The department the report covers (None: everyone), or 403 if the caller may not.

    Admins and auditors see any department, or all; a manager (someone in the directory
    has them as manager) their own (the default) or one under it; nobody else any.
    """
    if _sees_all(user):
        return asked
    if not await sla.manages_anyone(session, user.id):
        raise _forbidden("SLA reports are for managers, administrators and auditors")
    department = asked or user.id
    if department not in await sla.department_of(session, user.id):
        raise _forbidden("a manager sees the SLA report of their own department only")
    return department


class ReportAccess(BaseModel):
    """Which reports the caller may see: the web inbox links to them."""

    sla: bool
    department: str | None = Field(
        description="The department a manager's report covers by default (None: all)."
    )
    any_department: bool = Field(description="True for admins and auditors.")


@router.get(
    "",
    response_model=ReportAccess,
    summary="Which reports I may see",
    responses=responses(401),
)
async def my_reports(user: CurrentUser, session: SessionDep) -> ReportAccess:
    if _sees_all(user):
        return ReportAccess(sla=True, department=None, any_department=True)
    manager = await sla.manages_anyone(session, user.id)
    return ReportAccess(sla=manager, department=user.id if manager else None, any_department=False)


@dataclass(frozen=True)
class ReportContext:
    """What every form of the report needs besides its filters: who asks, in which
    language, and where the figures and names come from."""

    user: DirectoryUser
    session: AsyncSession
    sessions: async_sessionmaker[AsyncSession]
    """For the figures, read on connections of their own (``db.sla.read_report``)."""
    settings: Settings
    policies: dict[str, Policy]
    lang: Language


def report_context(
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    lang: LanguageDep,
) -> ReportContext:
    return ReportContext(user, session, sessions, settings, policies, lang)


ContextDep = Annotated[ReportContext, Depends(report_context)]


async def _report(params: SlaParams, ctx: ReportContext) -> SlaReport:
    session, settings, policies, lang = ctx.session, ctx.settings, ctx.policies, ctx.lang
    department = await _department_in_scope(ctx.user, session, params.department)
    requesters = await sla.department_of(session, department) if department else None
    tz = ZoneInfo(settings.default_time_zone)
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    end_day = params.to or today
    start_day = params.from_ or end_day - timedelta(days=DEFAULT_DAYS - 1)
    if start_day > end_day:
        raise field_errors([("from", "must not lie after `to` (default today)")])
    if (end_day - start_day).days >= MAX_DAYS:
        raise field_errors([("from", f"a report covers at most {MAX_DAYS} days")])
    f = sla.SlaFilter(
        start=datetime.combine(start_day, time(), tz),
        end=datetime.combine(end_day + timedelta(days=1), time(), tz),
        now=now,
        request_type=params.type,
        requesters=requesters,
        time_zone=settings.default_time_zone,
    )
    figures = await sla.read_report(ctx.sessions, f, params.top)
    steps, requests, weeks, slow = figures.steps, figures.requests, figures.weeks, figures.slowest
    titles = {t: text_in(p.title, lang) for t, p in policies.items()}
    names = {
        (t, s.key): stage_name(p, s.key, s.key, lang) for t, p in policies.items() for s in p.stages
    }
    rows = shaping.report_rows(steps, requests, titles, names, ALL_STAGES[lang])
    return SlaReport(
        start=start_day,
        end=end_day,
        department=department,
        type=params.type,
        generated_at=now,
        rows=[SlaRowOut(**vars(r)) for r in rows],
        weeks=[SlaWeekOut(**vars(w)) for w in shaping.week_rows(weeks)],
        slowest_open=[SlaOpenOut(**vars(o)) for o in shaping.open_rows(slow, now, names)],
    )


_DESCRIPTION = (
    "Per request type and stage: steps started in the period (`from`..`to`, whole days in "
    "the deployment's time zone), decided, median and p90 hours from a step's start to its "
    "decision, reply breaches (decided after the reply due, or still open past it) and "
    "their rate among steps with a due, escalations; per type (the `All stages` row) also "
    "the requests submitted, resolved and resolve breaches. Dues are instants already "
    "counted in working time where the policy counts it. Also the slowest open requests "
    "and a trend by ISO week. Managers see their department; admins and auditors all."
)


@router.get(
    "/sla",
    response_model=SlaReport,
    summary="SLA report",
    description=_DESCRIPTION,
    responses=responses(401, 403, 422),
)
async def sla_report(params: SlaQuery, ctx: ContextDep) -> SlaReport:
    return await _report(params, ctx)


def _sheet(report: SlaReport, table: SlaExportTable, ctx: ReportContext) -> exports.Sheet:
    items: dict[SlaExportTable, Sequence[object]] = {
        SlaExportTable.ROWS: report.rows,
        SlaExportTable.WEEKS: report.weeks,
        SlaExportTable.OPEN: report.slowest_open,
    }
    zone = ZoneInfo(ctx.settings.default_time_zone)
    return exports.export_sheet(table, items[table], ctx.lang, zone)


def _download(
    report: SlaReport, content: str | bytes, media_type: str, ext: str, stem: str
) -> Response:
    name = f"{stem}-{report.start.isoformat()}-{report.end.isoformat()}.{ext}"
    return Response(
        content=content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/sla.csv",
    summary="SLA report as CSV",
    description="One table of `GET /v1/reports/sla` as CSV (UTF-8 with a BOM, for Excel): "
    "`table=rows` (default) the rows by type and stage, `weeks` the trend by ISO week, "
    "`open` the slowest open requests; the same columns as the XLSX's sheets, headers in "
    "Chinese when the reader's language is zh-CN, times in the deployment's time zone.",
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403, 422)},
)
async def sla_report_csv(params: SlaCsvQuery, ctx: ContextDep) -> Response:
    report = await _report(params, ctx)
    sheet = _sheet(report, params.table, ctx)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(sheet.headers)
    writer.writerows([exports.csv_text(v) for v in row] for row in sheet.rows)
    name = "sla" if params.table is SlaExportTable.ROWS else f"sla-{params.table.value}"
    return _download(report, "\ufeff" + out.getvalue(), "text/csv; charset=utf-8", "csv", name)


@router.get(
    "/sla.xlsx",
    summary="SLA report as XLSX",
    description="`GET /v1/reports/sla` as an Excel workbook: a sheet each for the rows by "
    "type and stage, the trend by ISO week and the slowest open requests (numbers as "
    "numbers, hours with two decimals, days and times as dates in the deployment's time "
    "zone, the header row frozen); sheet names and headers in Chinese when the reader's "
    "language is zh-CN.",
    responses={200: {"content": {XLSX_TYPE: {}}}, **responses(401, 403, 422)},
)
async def sla_report_xlsx(params: SlaQuery, ctx: ContextDep) -> Response:
    report = await _report(params, ctx)
    sheets = [_sheet(report, table, ctx) for table in SlaExportTable]
    return _download(report, _workbook(sheets), XLSX_TYPE, "xlsx", "sla")


_FORMATS = {
    Kind.COUNT: "0",
    Kind.HOURS: "0.00",
    Kind.PERCENT: "0.0",
    Kind.MONEY: "#,##0.00",
    Kind.DAY: "yyyy-mm-dd",
    Kind.TIME: "yyyy-mm-dd hh:mm",
}
_WIDTHS = {Kind.DAY: 12, Kind.TIME: 17}
"""Characters a date or time shows in its format (the cell holds a number)."""


def _shown_width(value: object) -> int:
    # A Chinese character takes two columns' room.
    text = "" if value is None else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _workbook(sheets: Sequence[exports.Sheet]) -> bytes:
    from openpyxl import Workbook  # only the export needs it
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.worksheets[0])
    for s in sheets:
        sheet = book.create_sheet(s.name)
        sheet.append(s.headers)
        for row in s.rows:
            sheet.append([float(v) if isinstance(v, Decimal) else v for v in row])
        sheet.freeze_panes = "A2"
        for index, column in enumerate(s.columns, start=1):
            letter = get_column_letter(index)
            shown = [_WIDTHS.get(column.kind) or _shown_width(r[index - 1]) for r in s.rows]
            width = max([_shown_width(s.headers[index - 1]), *shown])
            sheet.column_dimensions[letter].width = min(max(width + 2, 8), 50)
            number_format = _FORMATS.get(column.kind)
            if number_format:
                for (c,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    c.number_format = number_format
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
