"""``GET /reports/sla``: the SLA report page for managers, admins and auditors.

The page holds no data (like the inbox): static/reports/sla.js calls
``/v1/reports/sla`` with the tab's token or the company sign-in session; the API
decides who may see what.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.web.router import render_page

router = APIRouter(include_in_schema=False)

SLA_PATH = "/reports/sla"


@router.get(SLA_PATH, response_class=HTMLResponse)
def sla_page() -> HTMLResponse:
    """The SLA report page (a plain ``def``: the file reads run in a thread)."""
    return render_page(
        "reports_sla.html",
        lang="en",
        styles=["inbox.css", "reports.css"],
        scripts=["reports/sla.js"],
    )
