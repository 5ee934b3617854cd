"""``GET /inbox``: the web inbox page; ``GET /`` sends browsers there.

The page holds no data, so it is served without auth: everything it shows comes
from the v1 API with the bearer token the user pastes in. It is one static file
with inline CSS and JavaScript (no build step, nothing fetched from elsewhere),
served under a Content-Security-Policy that allows exactly its own inline
script and style and API calls to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

PAGE_FILE = "inbox.html"
INBOX_PATH = "/inbox"

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """The page's HTML and the policy that lets exactly its inline code run."""

    html: str
    csp: str


def _digest(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def content_security_policy(html: str) -> str:
    """A CSP that allows the page's own inline ``<script>``/``<style>`` blocks by hash.

    Hashes rather than ``'unsafe-inline'``: text that ever slipped into the DOM
    as markup still could not run. ``form-action 'none'`` keeps a form that is
    submitted before the script runs from putting the token into a URL.
    """
    scripts = [_digest(code) for tag, code in _INLINE.findall(html) if tag == "script"]
    styles = [_digest(code) for tag, code in _INLINE.findall(html) if tag == "style"]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(scripts) or "'none'"),
            "style-src " + (" ".join(styles) or "'none'"),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def load_page() -> Page:
    """Read the page from the package (on each call: it is small, and edits show at once)."""
    html = resources.files("api.web").joinpath(PAGE_FILE).read_text(encoding="utf-8")
    return Page(html=html, csp=content_security_policy(html))


@router.get("/", summary="Redirect to the web inbox")
async def root() -> RedirectResponse:
    """Send a browser that opens the API's base URL to the inbox."""
    return RedirectResponse(INBOX_PATH)


@router.get(INBOX_PATH, summary="The web inbox", response_class=HTMLResponse)
def inbox_page() -> HTMLResponse:
    """The page, with headers that keep it self-contained and out of frames."""
    # A plain ``def``: FastAPI runs it in a thread, so the file read never blocks the loop.
    page = load_page()
    return HTMLResponse(
        page.html,
        headers={
            "Content-Security-Policy": page.csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
        },
    )
