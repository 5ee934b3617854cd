"""``/v1/reports/sla``: how approvals perform, for managers, admins and auditors.

JSON, CSV and XLSX carry the same rows (``domain.sla``); the figures are read from
the read-model (``db.sla``).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    CurrentUser,
    LanguageDep,
    PoliciesDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
)
from api.errors import ApiError, field_errors, responses
from db import sla
from db.directory import DirectoryUser
from db.request_queries import AUDITOR_ROLE
from domain import sla as shaping
from domain.errors import ErrorCode
from domain.inbound import Id
from domain.localize import stage_name
from domain.text import text_in

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


class SlaRowOut(BaseModel):
    request_type: str
    type_title: str
    stage_key: str | None
    stage_name: str
    steps: int
    decided: int
    median_hours: Decimal | None
    p90_hours: Decimal | None
    reply_breaches: int
    reply_breach_rate: Decimal | None
    escalations: int
    submitted: int | None
    resolved: int | None
    resolve_breaches: int | None
    resolve_breach_rate: Decimal | None


class SlaWeekOut(BaseModel):
    week: str
    week_start: date
    steps: int
    decided: int
    median_hours: Decimal | None
    p90_hours: Decimal | None
    reply_breaches: int
    escalations: int


class SlaOpenOut(BaseModel):
    id: str
    request_type: str
    title: str
    requester: str
    amount: Decimal | None
    stage_key: str | None
    stage_name: str | None
    waiting_on: list[str]
    submitted_at: datetime
    open_hours: Decimal | None
    step_started_at: datetime | None
    reply_due: datetime | None
    resolve_due: datetime | None


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


async def _report(
    params: SlaParams,
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    lang: str,
) -> SlaReport:
    department = await _department_in_scope(user, session, params.department)
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
    figures = await sla.read_report(sessions, f, params.top)
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
        rows=[SlaRowOut(**r.__dict__) for r in rows],
        weeks=[
            SlaWeekOut(
                week=shaping.iso_week(w.week_start),
                week_start=w.week_start,
                steps=w.steps,
                decided=w.decided,
                median_hours=shaping.hours(w.median_seconds),
                p90_hours=shaping.hours(w.p90_seconds),
                reply_breaches=w.reply_breaches,
                escalations=w.escalations,
            )
            for w in weeks
        ],
        slowest_open=[
            SlaOpenOut(
                id=o.id,
                request_type=o.request_type,
                title=o.title,
                requester=o.requester,
                amount=o.amount,
                stage_key=o.stage_key,
                stage_name=names.get((o.request_type, o.stage_key)) if o.stage_key else None,
                waiting_on=list(o.waiting_on),
                submitted_at=o.submitted_at,
                open_hours=shaping.hours((now - o.submitted_at).total_seconds()),
                step_started_at=o.step_started_at,
                reply_due=o.reply_due,
                resolve_due=o.resolve_due,
            )
            for o in slow
        ],
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
async def sla_report(
    params: SlaQuery,
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    lang: LanguageDep,
) -> SlaReport:
    return await _report(params, user, session, sessions, settings, policies, lang)


def _file_name(report: SlaReport, ext: str) -> str:
    return f"sla-{report.start.isoformat()}-{report.end.isoformat()}.{ext}"


def _table(report: SlaReport, lang: str) -> tuple[list[str], list[list[Any]]]:
    headers = shaping.export_headers(lang)
    fields = [f for f, _, _ in shaping.EXPORT_COLUMNS]
    return headers, [[getattr(r, f) for f in fields] for r in report.rows]


@router.get(
    "/sla.csv",
    summary="SLA report as CSV",
    description="The rows of `GET /v1/reports/sla` as CSV (UTF-8 with a BOM, for Excel); "
    "headers in Chinese when the reader's language is zh-CN.",
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403, 422)},
)
async def sla_report_csv(
    params: SlaQuery,
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    lang: LanguageDep,
) -> Response:
    report = await _report(params, user, session, sessions, settings, policies, lang)
    headers, rows = _table(report, lang)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return Response(
        content="\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_file_name(report, "csv")}"'},
    )


@router.get(
    "/sla.xlsx",
    summary="SLA report as XLSX",
    description="The rows of `GET /v1/reports/sla` as an Excel workbook (numbers as "
    "numbers, hours with two decimals); headers in Chinese when the reader's language "
    "is zh-CN.",
    responses={200: {"content": {XLSX_TYPE: {}}}, **responses(401, 403, 422)},
)
async def sla_report_xlsx(
    params: SlaQuery,
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    policies: PoliciesDep,
    lang: LanguageDep,
) -> Response:
    from openpyxl import Workbook  # only the export needs it

    report = await _report(params, user, session, sessions, settings, policies, lang)
    headers, rows = _table(report, lang)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "SLA"
    sheet.append(headers)
    for row in rows:
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in row])
    for column in sheet.iter_cols():
        header = column[0]
        width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
        sheet.column_dimensions[header.column_letter].width = min(max(width + 2, 10), 40)
        for cell in column[1:]:
            if isinstance(cell.value, float):
                cell.number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    return Response(
        content=out.getvalue(),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{_file_name(report, "xlsx")}"'},
    )
