"""``GET /admin/outbox``: the admin's page of deliveries; ``GET /dev/mails``: caught mails.

The outbox page holds no data (like the inbox): it calls
``/v1/admin/deliveries`` with the admin's token from the tab's storage. The
mails page exists only in development: it lists what the mail catcher caught,
rendered from templates/mails.html with Jinja2's autoescape (mails carry text
that people typed).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import SettingsDep
from api.errors import not_found
from api.web.router import render_page
from notify.mailcatcher import caught

router = APIRouter(include_in_schema=False)

OUTBOX_PATH = "/admin/outbox"
MAILS_PATH = "/dev/mails"


@router.get(OUTBOX_PATH, response_class=HTMLResponse)
def outbox_page() -> HTMLResponse:
    """The deliveries page (a plain ``def``: the file read runs in a thread)."""
    return render_page("outbox.html", lang="en", styles=["outbox.css"], scripts=["outbox.js"])


@router.get(MAILS_PATH, response_class=HTMLResponse)
def mails_page(settings: SettingsDep) -> HTMLResponse:
    """The mails the development mail catcher caught; 404 outside development."""
    if settings.environment != "development":
        raise not_found("page")
    directory = settings.data_dir / "mail"
    return render_page(
        "mails.html",
        lang="en",
        styles=["mails.css"],
        scripts=[],
        mails=caught(directory),
        directory=str(directory),
    )
