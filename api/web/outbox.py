"""``GET /admin/outbox``: the admin's page of deliveries; ``GET /dev/mails``: caught mails.

The outbox page holds no data (like the inbox): it calls
``/v1/admin/deliveries`` with the admin's token from the tab's storage. The
mails page exists only in development: it lists what the mail catcher caught,
rendered with Jinja2's autoescape (mails carry text that people typed).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, StrictUndefined

from api.deps import SettingsDep
from api.errors import not_found
from api.web.router import content_security_policy
from notify.mailcatcher import caught

router = APIRouter(include_in_schema=False)

OUTBOX_PATH = "/admin/outbox"
MAILS_PATH = "/dev/mails"


def _read(name: str) -> str:
    return resources.files("api.web").joinpath(name).read_text(encoding="utf-8")


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": content_security_policy(html),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
        },
    )


@router.get(OUTBOX_PATH, response_class=HTMLResponse)
def outbox_page() -> HTMLResponse:
    """The deliveries page (a plain ``def``: the file read runs in a thread)."""
    return _page(_read("outbox.html"))


@router.get(MAILS_PATH, response_class=HTMLResponse)
def mails_page(settings: SettingsDep) -> HTMLResponse:
    """The mails the development mail catcher caught; 404 outside development."""
    if settings.environment != "development":
        raise not_found("page")
    directory = settings.data_dir / "mail"
    env = Environment(autoescape=True, undefined=StrictUndefined)
    html = env.from_string(_read("mails.html")).render(
        mails=caught(directory), directory=str(directory)
    )
    return _page(html)
